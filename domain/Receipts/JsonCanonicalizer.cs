using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Dgon.Domain.Receipts;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS): object members sorted by the UTF-16 code units of their names, no
/// white space, strings escaped as ECMAScript's <c>JSON.stringify</c> does, numbers in ECMAScript's shortest
/// round-trip form. The smallest honest stand-in: no canonicalization library is served on this feed. It accepts
/// any JSON value; duplicate member names are an error (RFC 8785 §3.1 requires I-JSON, RFC 7493).
/// </summary>
public static class JsonCanonicalizer
{
    /// <summary>The canonical UTF-8 bytes of <paramref name="value"/>.</summary>
    /// <exception cref="FormatException">A duplicate member name, or a number outside IEEE 754 double range.</exception>
    public static byte[] Canonicalize(JsonElement value)
    {
        var builder = new StringBuilder();
        Write(value, builder);
        return Encoding.UTF8.GetBytes(builder.ToString());
    }

    /// <summary>The canonical form of <paramref name="value"/> as a string.</summary>
    /// <exception cref="FormatException">As <see cref="Canonicalize"/>.</exception>
    public static string CanonicalString(JsonElement value)
    {
        var builder = new StringBuilder();
        Write(value, builder);
        return builder.ToString();
    }

    private static void Write(JsonElement value, StringBuilder output)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                var members = new List<(string Name, JsonElement Value)>();
                foreach (var property in value.EnumerateObject())
                {
                    members.Add((property.Name, property.Value));
                }

                members.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                for (var i = 1; i < members.Count; i++)
                {
                    if (members[i].Name == members[i - 1].Name)
                    {
                        throw new FormatException($"duplicate member name '{members[i].Name}'");
                    }
                }

                output.Append('{');
                for (var i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                    {
                        output.Append(',');
                    }

                    WriteString(members[i].Name, output);
                    output.Append(':');
                    Write(members[i].Value, output);
                }

                output.Append('}');
                break;
            case JsonValueKind.Array:
                output.Append('[');
                var first = true;
                foreach (var item in value.EnumerateArray())
                {
                    if (!first)
                    {
                        output.Append(',');
                    }

                    first = false;
                    Write(item, output);
                }

                output.Append(']');
                break;
            case JsonValueKind.String:
                WriteString(value.GetString()!, output);
                break;
            case JsonValueKind.Number:
                output.Append(Number(value));
                break;
            case JsonValueKind.True:
                output.Append("true");
                break;
            case JsonValueKind.False:
                output.Append("false");
                break;
            default:
                output.Append("null");
                break;
        }
    }

    // ECMAScript Number::toString (RFC 8785 §3.2.2.3): the shortest digits that round-trip, plain notation for
    // exponents -7 < e < 21, else d.ddde±x.
    private static string Number(JsonElement value)
    {
        var d = value.GetDouble();
        if (double.IsNaN(d) || double.IsInfinity(d))
        {
            throw new FormatException("a number outside IEEE 754 double range");
        }

        if (d == 0)
        {
            return "0";
        }

        var r = d.ToString("R", CultureInfo.InvariantCulture); // shortest round-trip, e.g. "1E+21", "1.5E-07", "123.45"
        var negative = r[0] == '-';
        if (negative)
        {
            r = r[1..];
        }

        string digits;
        int exponent; // value = 0.digits × 10^exponent
        var e = r.IndexOfAny(['E', 'e']);
        var mantissa = e < 0 ? r : r[..e];
        var power = e < 0 ? 0 : int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var intPart = dot < 0 ? mantissa : mantissa[..dot];
        var fracPart = dot < 0 ? "" : mantissa[(dot + 1)..];
        digits = (intPart + fracPart).TrimStart('0');
        var leadingZeros = (intPart + fracPart).Length - digits.Length;
        exponent = intPart.Length - leadingZeros + power;
        digits = digits.TrimEnd('0');
        var k = digits.Length;
        var n = exponent;
        string text;
        if (k <= n && n <= 21)
        {
            text = digits + new string('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            text = digits[..n] + "." + digits[n..];
        }
        else if (-6 < n && n <= 0)
        {
            text = "0." + new string('0', -n) + digits;
        }
        else
        {
            var exp = n - 1;
            var sign = exp < 0 ? "-" : "+";
            text = (k == 1 ? digits : digits[..1] + "." + digits[1..]) + "e" + sign + Math.Abs(exp).ToString(CultureInfo.InvariantCulture);
        }

        return negative ? "-" + text : text;
    }

    private static void WriteString(string text, StringBuilder output)
    {
        output.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': output.Append("\\\""); break;
                case '\\': output.Append("\\\\"); break;
                case '\b': output.Append("\\b"); break;
                case '\f': output.Append("\\f"); break;
                case '\n': output.Append("\\n"); break;
                case '\r': output.Append("\\r"); break;
                case '\t': output.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        output.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        output.Append(c);
                    }

                    break;
            }
        }

        output.Append('"');
    }
}
