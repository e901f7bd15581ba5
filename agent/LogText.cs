using System.Globalization;
using System.Text;

namespace Dgon.Agent;

/// <summary>
/// Makes server-provided text safe to log (problem type, title, detail, field errors, a redirect's Location): a
/// hostile or broken server must not be able to forge log lines (CR/LF), drive the terminal (ESC sequences) or
/// reorder what is shown (Unicode bidirectional controls, CVE-2021-42574 "Trojan Source"). OWASP Logging Cheat Sheet:
/// encode untrusted data before logging it.
/// </summary>
public static class LogText
{
    /// <summary>Longest text kept from one server-provided field: 1,000 characters (then "…").</summary>
    public const int MaxLength = 1000;

    /// <summary>
    /// Replaces every control character (Unicode category Cc: C0, DEL, C1), line and paragraph separator (U+2028,
    /// U+2029) and bidirectional formatting character (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) by a
    /// visible <c>\uXXXX</c> escape, and cuts the result to <paramref name="maxLength"/> characters followed by "…".
    /// </summary>
    /// <param name="text">Untrusted text, or null.</param>
    /// <param name="maxLength">Longest result before the ellipsis.</param>
    /// <returns>The cleaned text; null for null.</returns>
    public static string? Clean(string? text, int maxLength = MaxLength)
    {
        if (text is null)
        {
            return null;
        }

        var clean = !NeedsEscaping(text) ? text : Escape(text);
        return clean.Length > maxLength ? string.Concat(clean.AsSpan(0, maxLength), "…") : clean;
    }

    /// <summary>Whether <paramref name="c"/> is replaced by <see cref="Clean"/>.</summary>
    public static bool IsUnsafe(char c) =>
        char.IsControl(c)
        || c is '\u2028' or '\u2029' or '\u061C' or '\u200E' or '\u200F'
        || c is >= '\u202A' and <= '\u202E'
        || c is >= '\u2066' and <= '\u2069';

    private static bool NeedsEscaping(string text)
    {
        foreach (var c in text)
        {
            if (IsUnsafe(c))
            {
                return true;
            }
        }

        return false;
    }

    private static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (IsUnsafe(c))
            {
                sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }
}
