using System.Text;
using System.Text.Json;

namespace Dgon.Deployment.Tests.Images;

/// <summary>One Dockerfile instruction after comments are dropped and continuation lines are joined.</summary>
/// <param name="Keyword">The instruction in upper case (FROM, RUN, COPY, …).</param>
/// <param name="Arguments">Everything after the keyword, continuation lines joined with a space.</param>
/// <param name="Line">1-based line number where the instruction starts.</param>
public sealed record Instruction(string Keyword, string Arguments, int Line)
{
    /// <summary>The exec (JSON array) form, e.g. ENTRYPOINT ["dotnet", "x.dll"]; null for the shell form.</summary>
    public IReadOnlyList<string>? ExecForm =>
        Arguments.StartsWith('[') ? JsonSerializer.Deserialize<string[]>(Arguments) : null;

    /// <summary>Leading <c>--name=value</c> flags (COPY --from=build, FROM --platform=…).</summary>
    public IReadOnlyDictionary<string, string> Flags => Split().Flags;

    /// <summary>The words after the flags, split like a shell would (quotes kept together, then removed).</summary>
    public IReadOnlyList<string> Words => Split().Words;

    /// <summary>
    /// KEY=value pairs of ENV and LABEL (quotes removed). The legacy <c>ENV KEY value</c> form gives one pair.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> Pairs
    {
        get
        {
            var words = ShellWords(Arguments);
            if (words.Count > 0 && !words[0].Contains('=', StringComparison.Ordinal))
            {
                var rest = Arguments.TrimStart()[words[0].Length..].Trim();
                return [new(words[0], rest)];
            }

            return words.Select(w => w.Split('=', 2)).Select(kv => new KeyValuePair<string, string>(kv[0], kv.Length > 1 ? kv[1] : "")).ToList();
        }
    }

    /// <summary>COPY/ADD sources and destination (exec form or shell form).</summary>
    public (IReadOnlyList<string> Sources, string Destination) CopyPaths
    {
        get
        {
            var paths = ExecForm ?? Words;
            if (paths.Count < 2)
            {
                throw new FormatException($"line {Line}: {Keyword} needs at least one source and a destination");
            }

            return (paths.Take(paths.Count - 1).ToList(), paths[^1]);
        }
    }

    private (Dictionary<string, string> Flags, List<string> Words) Split()
    {
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        var words = ShellWords(Arguments);
        var i = 0;
        for (; i < words.Count && words[i].StartsWith("--", StringComparison.Ordinal); i++)
        {
            var kv = words[i][2..].Split('=', 2);
            flags[kv[0]] = kv.Length > 1 ? kv[1] : "true";
        }

        return (flags, words.Skip(i).ToList());
    }

    /// <summary>Splits on unquoted white space; double and single quotes group, backslash escapes one character.</summary>
    internal static List<string> ShellWords(string text)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }

                continue;
            }

            inWord = true;
            if (c == '\\' && i + 1 < text.Length)
            {
                word.Append(text[++i]);
            }
            else if (c is '"' or '\'')
            {
                var close = text.IndexOf(c, i + 1);
                if (close < 0)
                {
                    throw new FormatException($"unterminated {c} quote in: {text}");
                }

                var quoted = text[(i + 1)..close];
                word.Append(c == '"' ? quoted.Replace("\\\"", "\"", StringComparison.Ordinal) : quoted);
                i = close;
            }
            else
            {
                word.Append(c);
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }
}

/// <summary>A build stage: its FROM line and the instructions up to the next FROM.</summary>
/// <param name="From">The FROM instruction.</param>
/// <param name="Instructions">The instructions of the stage, FROM excluded.</param>
public sealed record Stage(Instruction From, IReadOnlyList<Instruction> Instructions)
{
    /// <summary>The base image reference, e.g. mcr.microsoft.com/dotnet/sdk:10.0.</summary>
    public string BaseImage => From.Words[0];

    /// <summary>The stage name given with AS, or null.</summary>
    public string? Name =>
        From.Words.Count == 3 && From.Words[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? From.Words[2] : null;

    /// <summary>The tag of <see cref="BaseImage"/> (after the last ':' of the last path segment), or null.</summary>
    public string? BaseImageTag
    {
        get
        {
            var image = BaseImage.Split('@')[0];
            var lastSegment = image[(image.LastIndexOf('/') + 1)..];
            var colon = lastSegment.LastIndexOf(':');
            return colon < 0 ? null : lastSegment[(colon + 1)..];
        }
    }

    /// <summary>The base image without its tag or digest.</summary>
    public string BaseImageRepository
    {
        get
        {
            var image = BaseImage.Split('@')[0];
            var tag = BaseImageTag;
            return tag is null ? image : image[..^(tag.Length + 1)];
        }
    }

    public IEnumerable<Instruction> All(string keyword) =>
        Instructions.Where(i => i.Keyword.Equals(keyword, StringComparison.OrdinalIgnoreCase));

    /// <summary>The value of an ENV variable as the stage leaves it (last assignment wins), or null.</summary>
    public string? Env(string name) =>
        All("ENV").SelectMany(i => i.Pairs).LastOrDefault(p => p.Key == name) is { Key: not null } pair ? pair.Value : null;
}

/// <summary>
/// A small Dockerfile reader for tests: comment lines, parser
/// directives and empty lines are dropped, lines ending in the escape character '\' are joined with the next one
/// (comment and empty lines inside a continuation are skipped, as BuildKit does), then instructions are grouped
/// into stages at each FROM. Heredocs (<c>RUN &lt;&lt;EOF</c>) and a custom <c># escape=</c> are not supported and
/// are rejected rather than misread.
/// </summary>
public sealed class Dockerfile
{
    private Dockerfile(string path, IReadOnlyList<Instruction> instructions)
    {
        Path = path;
        Instructions = instructions;
        var stages = new List<Stage>();
        Instruction? from = null;
        var body = new List<Instruction>();
        foreach (var instruction in instructions)
        {
            if (instruction.Keyword == "FROM")
            {
                if (from is not null)
                {
                    stages.Add(new Stage(from, body));
                }

                from = instruction;
                body = [];
            }
            else if (from is not null)
            {
                body.Add(instruction);
            }
            else if (instruction.Keyword != "ARG")
            {
                throw new FormatException($"{path}:{instruction.Line}: only ARG may come before the first FROM");
            }
        }

        if (from is not null)
        {
            stages.Add(new Stage(from, body));
        }

        Stages = stages;
    }

    public string Path { get; }

    public IReadOnlyList<Instruction> Instructions { get; }

    public IReadOnlyList<Stage> Stages { get; }

    /// <summary>The last stage: what `docker build` produces without --target.</summary>
    public Stage Final => Stages[^1];

    public Stage StageNamed(string name) =>
        Stages.SingleOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal))
        ?? throw new InvalidOperationException($"{Path}: no stage named {name}");

    public static Dockerfile Load(string path) => Parse(File.ReadAllText(path), path);

    public static Dockerfile Parse(string text, string path = "Dockerfile")
    {
        var instructions = new List<Instruction>();
        var pending = new StringBuilder();
        var start = 0;
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var n = 0; n < lines.Length; n++)
        {
            var line = lines[n];
            var trimmed = line.Trim();
            var continuing = pending.Length > 0;
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                if (!continuing && trimmed.StartsWith("# escape=", StringComparison.OrdinalIgnoreCase) && instructions.Count == 0)
                {
                    throw new NotSupportedException($"{path}:{n + 1}: custom escape characters are not supported by this reader");
                }

                continue;
            }

            if (!continuing)
            {
                start = n + 1;
            }

            var content = line.TrimEnd();
            if (content.EndsWith('\\'))
            {
                pending.Append(content[..^1]).Append(' ');
                continue;
            }

            pending.Append(content);
            instructions.Add(ToInstruction(pending.ToString(), start, path));
            pending.Clear();
        }

        if (pending.Length > 0)
        {
            instructions.Add(ToInstruction(pending.ToString(), start, path));
        }

        return new Dockerfile(path, instructions);
    }

    private static Instruction ToInstruction(string logicalLine, int line, string path)
    {
        var text = logicalLine.Trim();
        var space = text.IndexOfAny([' ', '\t']);
        var keyword = (space < 0 ? text : text[..space]).ToUpperInvariant();
        var arguments = space < 0 ? "" : text[(space + 1)..].Trim();
        if (arguments.Contains("<<", StringComparison.Ordinal) && keyword is "RUN" or "COPY" or "ADD"
            && System.Text.RegularExpressions.Regex.IsMatch(arguments, @"(^|\s)<<-?[""']?[A-Za-z_]"))
        {
            throw new NotSupportedException($"{path}:{line}: heredocs are not supported by this reader");
        }

        return new Instruction(keyword, arguments, line);
    }
}
