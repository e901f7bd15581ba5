using System.Text;
using System.Text.RegularExpressions;

namespace Dgon.Deployment.Tests.Images;

/// <summary>
/// The build-context filter of a <c>.dockerignore</c> file, with Docker's rules: one pattern per line, '#' lines are
/// comments, patterns are cleaned and relative to the context root (a leading '/' is dropped); '*' and '?' do not
/// cross '/', '**' matches any number of directories (zero included), '[…]' is a character class; a pattern that
/// matches a directory matches everything below it; '!' re-includes; the last matching pattern decides.
/// </summary>
public sealed class DockerIgnore
{
    private readonly List<(bool Include, Regex Pattern, string Text)> _patterns;

    private DockerIgnore(List<(bool, Regex, string)> patterns) => _patterns = patterns;

    public IReadOnlyList<string> Patterns => _patterns.Select(p => (p.Include ? "!" : "") + p.Text).ToList();

    public static DockerIgnore Load(string path) => Parse(File.ReadAllText(path));

    public static DockerIgnore Parse(string text)
    {
        var patterns = new List<(bool, Regex, string)>();
        foreach (var raw in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var include = line.StartsWith('!');
            if (include)
            {
                line = line[1..].Trim();
            }

            var cleaned = Clean(line);
            patterns.Add((include, new Regex(ToRegex(cleaned), RegexOptions.CultureInvariant), cleaned));
        }

        return new DockerIgnore(patterns);
    }

    /// <summary>True when <paramref name="relativePath"/> (a file or directory, '/'-separated) is left out of the context.</summary>
    public bool IsExcluded(string relativePath)
    {
        var path = Clean(relativePath);
        var parts = path.Split('/');
        var excluded = false;
        foreach (var (include, pattern, _) in _patterns)
        {
            var matches = pattern.IsMatch(path);
            for (var i = 1; !matches && i < parts.Length; i++)
            {
                matches = pattern.IsMatch(string.Join('/', parts[..i]));
            }

            if (matches)
            {
                excluded = !include;
            }
        }

        return excluded;
    }

    /// <summary>Lexical clean-up like Go's path.Clean: no "." segments, no duplicate or trailing '/', no leading '/'.</summary>
    private static string Clean(string path)
    {
        var segments = new List<string>();
        foreach (var segment in path.Split('/'))
        {
            if (segment is "" or ".")
            {
                continue;
            }

            if (segment == ".." && segments.Count > 0 && segments[^1] != "..")
            {
                segments.RemoveAt(segments.Count - 1);
            }
            else
            {
                segments.Add(segment);
            }
        }

        return segments.Count == 0 ? "." : string.Join('/', segments);
    }

    private static string ToRegex(string pattern)
    {
        var rx = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    i++;
                    if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                    {
                        i++;
                    }

                    rx.Append(i + 1 == pattern.Length ? ".*" : "(.*/)?");
                    break;
                case '*':
                    rx.Append("[^/]*");
                    break;
                case '?':
                    rx.Append("[^/]");
                    break;
                case '[':
                    var close = pattern.IndexOf(']', i + 1);
                    if (close < 0)
                    {
                        throw new FormatException($"unterminated character class in .dockerignore pattern {pattern}");
                    }

                    var set = pattern[(i + 1)..close];
                    rx.Append('[').Append(set.StartsWith('^') || set.StartsWith('!') ? "^" + set[1..] : set).Append(']');
                    i = close;
                    break;
                case '\\' when i + 1 < pattern.Length:
                    rx.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                default:
                    rx.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return rx.Append('$').ToString();
    }
}
