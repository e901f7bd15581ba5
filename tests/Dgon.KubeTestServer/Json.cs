using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>JSON helpers over <see cref="JsonNode"/>: paths, Kubernetes time formats, value formatting as Go prints it.</summary>
internal static class Json
{
    public static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    public static JsonObject ParseObject(string json)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw KubeException.BadRequest($"error decoding JSON: {e.Message}");
        }

        return node as JsonObject ?? throw KubeException.BadRequest("the request body must be a JSON object");
    }

    public static string Serialize(JsonNode? node) => node is null ? "null" : node.ToJsonString(Compact);

    public static JsonObject Obj(this JsonObject o, string key)
    {
        if (o[key] is JsonObject existing)
        {
            return existing;
        }

        var created = new JsonObject();
        o[key] = created;
        return created;
    }

    public static string? Str(this JsonNode? node, string key) =>
        node is JsonObject o && o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static string? AsString(this JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    public static long? AsLong(this JsonNode? node)
    {
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number)
        {
            return null;
        }

        if (v.TryGetValue<long>(out var l))
        {
            return l;
        }

        if (v.TryGetValue<int>(out var i))
        {
            return i;
        }

        var d = v.AsDouble()!.Value;
        return Math.Abs(d % 1) < double.Epsilon && d is >= long.MinValue and <= long.MaxValue ? (long)d : null;
    }

    /// <summary>A JSON number as double, whatever CLR type backs the node (parsed element, long, int, decimal, double).</summary>
    public static double? AsDouble(this JsonNode? node)
    {
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number)
        {
            return null;
        }

        if (v.TryGetValue<double>(out var d))
        {
            return d;
        }

        if (v.TryGetValue<long>(out var l))
        {
            return l;
        }

        if (v.TryGetValue<int>(out var i))
        {
            return i;
        }

        if (v.TryGetValue<decimal>(out var m))
        {
            return (double)m;
        }

        if (v.TryGetValue<float>(out var f))
        {
            return f;
        }

        return double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static bool? AsBool(this JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : null;

    public static JsonValueKind Kind(this JsonNode? node) => node is null ? JsonValueKind.Null : node.GetValueKind();

    /// <summary>Follows a dotted path (<c>.status.phase</c> or <c>status.phase</c>) of object keys.</summary>
    public static JsonNode? At(this JsonNode? node, string path)
    {
        foreach (var part in path.TrimStart('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(part, out node))
            {
                return null;
            }
        }

        return node;
    }

    public static JsonObject Meta(this JsonObject o) => o.Obj("metadata");

    public static string Name(this JsonObject o) => o["metadata"].Str("name") ?? "";

    public static string Namespace(this JsonObject o) => o["metadata"].Str("namespace") ?? "";

    public static IReadOnlyDictionary<string, string> Labels(this JsonObject o)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (o["metadata"]?["labels"] is JsonObject labels)
        {
            foreach (var (k, v) in labels)
            {
                result[k] = v.AsString() ?? v?.ToJsonString() ?? "";
            }
        }

        return result;
    }

    /// <summary>metav1.Time wire format: RFC 3339, whole seconds, UTC.</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>metav1.MicroTime wire format: RFC 3339 with exactly six fractional digits, UTC.</summary>
    public static string MicroTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Parses an RFC 3339 date-time (as Go's time.RFC3339 / RFC3339Nano accept it).</summary>
    public static bool TryParseRfc3339(string? s, out DateTimeOffset value)
    {
        value = default;
        if (s is null || s.Length < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        {
            return false;
        }

        return DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out value)
            && (s.EndsWith('Z') || s.EndsWith('z') || s[^3] == ':');
    }

    /// <summary>Formats a value the way apimachinery field errors print it (%q for strings, %v otherwise).</summary>
    public static string FormatValue(JsonNode? value) => value switch
    {
        null => "null",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => Quote(v.GetValue<string>()),
        JsonValue v => v.ToJsonString(),
        JsonObject o => "map[string]interface {}{" + string.Join(", ", o.Select(kv => Quote(kv.Key) + ":" + FormatValue(kv.Value))) + "}",
        JsonArray a => "[]interface {}{" + string.Join(", ", a.Select(FormatValue)) + "}",
        _ => value.ToJsonString(),
    };

    /// <summary>Go's %q for a string.</summary>
    public static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>JSON value as printed by a JSONPath string column (strings bare, others as JSON).</summary>
    public static string PrintForColumn(JsonNode? value) => value switch
    {
        null => "",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => value.ToJsonString(),
    };

    /// <summary>Type name as Go's JSON decoding reports it in validation errors.</summary>
    public static string TypeName(JsonNode? node) => node.Kind() switch
    {
        JsonValueKind.String => "string",
        JsonValueKind.Number => node.AsLong() is not null ? "integer" : "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        _ => "null",
    };
}
