using System.Globalization;
using System.Text;

namespace Dgon.KubeTestServer;

/// <summary>
/// A label selector as <c>k8s.io/apimachinery/pkg/labels.Parse</c> accepts it: comma-separated requirements
/// <c>k=v</c>, <c>k==v</c>, <c>k!=v</c>, <c>k in (a,b)</c>, <c>k notin (a,b)</c>, <c>k</c>, <c>!k</c>, <c>k&gt;n</c>, <c>k&lt;n</c>.
/// <c>!=</c> and <c>notin</c> also match objects without the label.
/// </summary>
internal sealed class LabelSelector
{
    private readonly List<(string Key, string Op, string[] Values)> _requirements = [];

    public static LabelSelector Everything { get; } = new();

    public bool IsEmpty => _requirements.Count == 0;

    public static LabelSelector Parse(string? text)
    {
        var selector = new LabelSelector();
        if (string.IsNullOrWhiteSpace(text))
        {
            return selector;
        }

        var pos = 0;
        while (true)
        {
            SkipSpace(text, ref pos);
            if (pos >= text.Length)
            {
                throw Bad(text, "found '', expected: identifier");
            }

            if (text[pos] == '!')
            {
                pos++;
                SkipSpace(text, ref pos);
                var key = ReadIdentifier(text, ref pos);
                ValidateKey(text, key);
                selector._requirements.Add((key, "!", []));
            }
            else
            {
                var key = ReadIdentifier(text, ref pos);
                ValidateKey(text, key);
                SkipSpace(text, ref pos);
                if (pos >= text.Length || text[pos] == ',')
                {
                    selector._requirements.Add((key, "exists", []));
                }
                else if (text[pos] == '=')
                {
                    pos += pos + 1 < text.Length && text[pos + 1] == '=' ? 2 : 1;
                    selector._requirements.Add((key, "=", [ReadValue(text, ref pos)]));
                }
                else if (text[pos] == '!' && pos + 1 < text.Length && text[pos + 1] == '=')
                {
                    pos += 2;
                    selector._requirements.Add((key, "!=", [ReadValue(text, ref pos)]));
                }
                else if (text[pos] is '>' or '<')
                {
                    var op = text[pos].ToString();
                    pos++;
                    var value = ReadValue(text, ref pos);
                    if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
                    {
                        throw Bad(text, $"for 'Gt', 'Lt' operators, the value must be an integer");
                    }

                    selector._requirements.Add((key, op, [value]));
                }
                else
                {
                    var word = ReadIdentifier(text, ref pos);
                    if (word is not ("in" or "notin"))
                    {
                        throw Bad(text, $"found '{word}', expected: in, notin, =, ==, !=, gt, lt");
                    }

                    SkipSpace(text, ref pos);
                    if (pos >= text.Length || text[pos] != '(')
                    {
                        throw Bad(text, "found '', expected: '('");
                    }

                    pos++;
                    var values = new List<string>();
                    while (true)
                    {
                        values.Add(ReadValue(text, ref pos));
                        SkipSpace(text, ref pos);
                        if (pos < text.Length && text[pos] == ',')
                        {
                            pos++;
                            continue;
                        }

                        if (pos < text.Length && text[pos] == ')')
                        {
                            pos++;
                            break;
                        }

                        throw Bad(text, "found '', expected: ',', ')'");
                    }

                    selector._requirements.Add((key, word, [.. values.Where(v => v.Length > 0 || values.Count == 1)]));
                }
            }

            SkipSpace(text, ref pos);
            if (pos >= text.Length)
            {
                break;
            }

            if (text[pos] != ',')
            {
                throw Bad(text, $"found '{text[pos]}', expected: ',' or 'end of string'");
            }

            pos++;
        }

        return selector;
    }

    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, op, values) in _requirements)
        {
            var has = labels.TryGetValue(key, out var actual);
            var ok = op switch
            {
                "exists" => has,
                "!" => !has,
                "=" => has && actual == values[0],
                "!=" => !has || actual != values[0],
                "in" => has && values.Contains(actual),
                "notin" => !has || !values.Contains(actual),
                ">" => has && long.TryParse(actual, CultureInfo.InvariantCulture, out var g) && g > long.Parse(values[0], CultureInfo.InvariantCulture),
                "<" => has && long.TryParse(actual, CultureInfo.InvariantCulture, out var l) && l < long.Parse(values[0], CultureInfo.InvariantCulture),
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static void ValidateKey(string text, string key)
    {
        if (Validation.QualifiedNameError(key) is { } error)
        {
            throw Bad(text, $"key: Invalid value: \"{key}\": {error}");
        }
    }

    private static KubeException Bad(string text, string detail) =>
        KubeException.BadRequest($"unable to parse requirement: {detail} (selector \"{text}\")");

    private static void SkipSpace(string s, ref int pos)
    {
        while (pos < s.Length && char.IsWhiteSpace(s[pos]))
        {
            pos++;
        }
    }

    private static string ReadIdentifier(string s, ref int pos)
    {
        SkipSpace(s, ref pos);
        var start = pos;
        while (pos < s.Length && !char.IsWhiteSpace(s[pos]) && s[pos] is not (',' or '=' or '!' or '(' or ')' or '<' or '>'))
        {
            pos++;
        }

        return s[start..pos];
    }

    private static string ReadValue(string s, ref int pos)
    {
        SkipSpace(s, ref pos);
        var start = pos;
        while (pos < s.Length && !char.IsWhiteSpace(s[pos]) && s[pos] is not (',' or ')' or '('))
        {
            pos++;
        }

        return s[start..pos];
    }
}

/// <summary>
/// A field selector as <c>k8s.io/apimachinery/pkg/fields.ParseSelector</c> accepts it: <c>f=v</c>, <c>f==v</c>, <c>f!=v</c>
/// joined by commas, with <c>\,</c> <c>\=</c> <c>\\</c> escapes. Which field labels exist depends on the resource.
/// </summary>
internal sealed class FieldSelector
{
    public IReadOnlyList<(string Field, bool Equal, string Value)> Requirements { get; }

    private FieldSelector(List<(string, bool, string)> requirements) => Requirements = requirements;

    public static FieldSelector Everything { get; } = new([]);

    public bool IsEmpty => Requirements.Count == 0;

    public static FieldSelector Parse(string? text)
    {
        var list = new List<(string, bool, string)>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return new FieldSelector(list);
        }

        foreach (var term in SplitUnescaped(text, ','))
        {
            if (term.Length == 0)
            {
                continue;
            }

            var (field, op, value) = SplitTerm(term) ?? throw KubeException.BadRequest($"invalid selector: '{text}'; can't understand '{term}'");
            list.Add((field, op != "!=", Unescape(value)));
        }

        return new FieldSelector(list);
    }

    /// <summary>Whether an object matches, with <paramref name="fieldValue"/> resolving a field label (throws for unsupported labels).</summary>
    public bool Matches(Func<string, string?> fieldValue)
    {
        foreach (var (field, equal, value) in Requirements)
        {
            var actual = fieldValue(field) ?? "";
            if ((actual == value) != equal)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The value required by an equality term on <paramref name="field"/>, if any.</summary>
    public string? RequiredValue(string field) => Requirements.FirstOrDefault(r => r.Field == field && r.Equal).Value;

    private static (string, string, string)? SplitTerm(string term)
    {
        for (var i = 0; i < term.Length; i++)
        {
            if (term[i] == '\\')
            {
                i++;
                continue;
            }

            if (term[i] == '!' && i + 1 < term.Length && term[i + 1] == '=')
            {
                return (term[..i].Trim(), "!=", term[(i + 2)..]);
            }

            if (term[i] == '=')
            {
                var skip = i + 1 < term.Length && term[i + 1] == '=' ? 2 : 1;
                return (term[..i].Trim(), "=", term[(i + skip)..]);
            }
        }

        return null;
    }

    private static IEnumerable<string> SplitUnescaped(string s, char separator)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 1 < s.Length)
            {
                sb.Append(s[i]).Append(s[i + 1]);
                i++;
            }
            else if (s[i] == separator)
            {
                yield return sb.ToString();
                sb.Clear();
            }
            else
            {
                sb.Append(s[i]);
            }
        }

        yield return sb.ToString();
    }

    private static string Unescape(string s)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 1 < s.Length)
            {
                i++;
            }

            sb.Append(s[i]);
        }

        return sb.ToString();
    }
}
