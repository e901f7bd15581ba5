using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Dgon.KubeTestServer;

/// <summary>
/// Structural-schema handling of custom resources, in the order the apiextensions apiserver applies it:
/// prune unknown fields (unless <c>x-kubernetes-preserve-unknown-fields</c>), drop non-nullable nulls, apply
/// <c>default</c>s, then validate (type, enum, pattern, lengths, bounds, items, required, formats, list-type map/set
/// uniqueness, allOf/anyOf/oneOf/not). CEL rules (<c>x-kubernetes-validations</c>) are not evaluated.
/// </summary>
internal static class StructuralSchema
{
    private static readonly HashSet<string> RootKeep = ["apiVersion", "kind", "metadata"];

    /// <summary>Prunes fields the schema does not declare; returns their paths (for fieldValidation warnings).</summary>
    public static List<string> Prune(JsonObject root, JsonObject schema)
    {
        var unknown = new List<string>();
        PruneObject(root, schema, "", unknown, isRoot: true);
        return unknown;
    }

    private static void PruneNode(JsonNode? node, JsonObject? schema, string path, List<string> unknown)
    {
        if (schema is null)
        {
            return;
        }

        switch (node)
        {
            case JsonObject o:
                PruneObject(o, schema, path, unknown, isRoot: false);
                break;
            case JsonArray a when schema["items"] is JsonObject items:
                for (var i = 0; i < a.Count; i++)
                {
                    PruneNode(a[i], items, $"{path}[{i}]", unknown);
                }

                break;
        }
    }

    private static void PruneObject(JsonObject o, JsonObject schema, string path, List<string> unknown, bool isRoot)
    {
        var preserve = schema["x-kubernetes-preserve-unknown-fields"].AsBool() == true;
        var embedded = schema["x-kubernetes-embedded-resource"].AsBool() == true;
        var properties = schema["properties"] as JsonObject;
        var additional = schema["additionalProperties"] as JsonObject;
        foreach (var key in o.Select(kv => kv.Key).ToList())
        {
            var child = Child(path, key);
            if ((isRoot || embedded) && RootKeep.Contains(key))
            {
                if (key == "metadata" && o[key] is JsonObject meta && !isRoot)
                {
                    PruneNode(meta, properties?["metadata"] as JsonObject, child, unknown);
                }

                continue;
            }

            if (properties?[key] is JsonObject propSchema)
            {
                PruneNode(o[key], propSchema, child, unknown);
            }
            else if (additional is not null)
            {
                PruneNode(o[key], additional, child, unknown);
            }
            else if (!preserve && schema["additionalProperties"].AsBool() != true)
            {
                o.Remove(key);
                unknown.Add(child);
            }
        }
    }

    /// <summary>Applies <c>default</c> values (after pruning) and drops nulls of non-nullable properties first.</summary>
    public static void Default(JsonNode? node, JsonObject schema)
    {
        switch (node)
        {
            case JsonObject o:
                if (schema["properties"] is JsonObject properties)
                {
                    foreach (var (prop, propNode) in properties)
                    {
                        if (propNode is not JsonObject propSchema)
                        {
                            continue;
                        }

                        if (o.TryGetPropertyValue(prop, out var value) && value is null && propSchema["nullable"].AsBool() != true)
                        {
                            o.Remove(prop);
                        }

                        if (!o.ContainsKey(prop) && propSchema["default"] is { } def)
                        {
                            o[prop] = def.DeepClone();
                        }

                        if (o[prop] is { } present)
                        {
                            Default(present, propSchema);
                        }
                    }
                }

                if (schema["additionalProperties"] is JsonObject additional)
                {
                    foreach (var (_, value) in o.ToList())
                    {
                        Default(value, additional);
                    }
                }

                break;
            case JsonArray a when schema["items"] is JsonObject items:
                foreach (var item in a)
                {
                    Default(item, items);
                }

                break;
        }
    }

    /// <summary>Validates a whole custom resource (apiVersion/kind/metadata at the root are validated elsewhere).</summary>
    public static void ValidateRoot(JsonObject root, JsonObject schema, List<FieldError> errors)
    {
        if (schema["required"] is JsonArray required)
        {
            foreach (var r in required.Select(r => r.AsString()).OfType<string>())
            {
                if (!RootKeep.Contains(r) && !root.ContainsKey(r))
                {
                    errors.Add(FieldError.Required(r));
                }
            }
        }

        if (schema["properties"] is JsonObject properties)
        {
            foreach (var (key, value) in root)
            {
                if (!RootKeep.Contains(key) && properties[key] is JsonObject propSchema)
                {
                    Validate(value, propSchema, key, errors);
                }
            }
        }
    }

    public static void Validate(JsonNode? node, JsonObject schema, string path, List<FieldError> errors)
    {
        if (node is null)
        {
            if (schema["nullable"].AsBool() != true && schema["type"].AsString() is { } t)
            {
                errors.Add(FieldError.TypeInvalid(path, JsonValue.Create("null"), $"{path} in body must be of type {t}: \"null\""));
            }

            return;
        }

        var type = schema["type"].AsString();
        var intOrString = schema["x-kubernetes-int-or-string"].AsBool() == true;
        var actual = Json.TypeName(node);
        if (intOrString)
        {
            if (actual is not ("integer" or "string"))
            {
                errors.Add(FieldError.TypeInvalid(path, JsonValue.Create(actual), $"{path} in body must be of type integer,string: \"{actual}\""));
                return;
            }
        }
        else if (type is not null && !(type == actual || (type == "number" && actual == "integer")))
        {
            errors.Add(FieldError.TypeInvalid(path, JsonValue.Create(actual), $"{path} in body must be of type {type}: \"{actual}\""));
            return;
        }

        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, node)))
        {
            errors.Add(FieldError.NotSupported(path, node.DeepClone(), allowed.Select(Json.FormatValue)));
        }

        switch (node.GetValueKind())
        {
            case JsonValueKind.String:
                ValidateString(node.GetValue<string>(), schema, path, errors);
                break;
            case JsonValueKind.Number:
                ValidateNumber(node, schema, path, errors);
                break;
            case JsonValueKind.Array:
                ValidateArray((JsonArray)node, schema, path, errors);
                break;
            case JsonValueKind.Object:
                ValidateObject((JsonObject)node, schema, path, errors);
                break;
        }

        ValidateCombinators(node, schema, path, errors);
    }

    private static void ValidateString(string value, JsonObject schema, string path, List<FieldError> errors)
    {
        var length = value.EnumerateRunes().Count();
        var node = JsonValue.Create(value);
        if (schema["maxLength"].AsLong() is { } max && length > max)
        {
            errors.Add(FieldError.TooLong(path, max));
        }

        if (schema["minLength"].AsLong() is { } min && length < min)
        {
            errors.Add(FieldError.Invalid(path, node, $"{path} in body should be at least {min} chars long"));
        }

        if (schema["pattern"].AsString() is { } pattern)
        {
            bool matches;
            try
            {
                matches = Regex.IsMatch(value, pattern, RegexOptions.None, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException)
            {
                matches = true;
            }

            if (!matches)
            {
                errors.Add(FieldError.Invalid(path, node, $"{path} in body should match '{pattern}'"));
            }
        }

        if (schema["format"].AsString() is { } format && !FormatOk(format, value))
        {
            errors.Add(FieldError.TypeInvalid(path, node, $"{path} in body must be of type {format}: {Json.Quote(value)}"));
        }
    }

    private static bool FormatOk(string format, string value) => format switch
    {
        "date-time" or "datetime" => Json.TryParseRfc3339(value, out _),
        "date" => DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
        "byte" => value.Length % 4 == 0 && Convert.TryFromBase64String(value, new byte[value.Length], out _),
        "uuid" => Guid.TryParseExact(value, "D", out _),
        "ipv4" => IPAddress.TryParse(value, out var ip4) && ip4.AddressFamily == AddressFamily.InterNetwork && value.Count(c => c == '.') == 3,
        "ipv6" => IPAddress.TryParse(value, out var ip6) && ip6.AddressFamily == AddressFamily.InterNetworkV6,
        "hostname" => value.Length <= 255 && value.Split('.').All(p => p.Length is > 0 and <= 63),
        _ => true,
    };

    private static void ValidateNumber(JsonNode node, JsonObject schema, string path, List<FieldError> errors)
    {
        var value = node.AsDouble()!.Value;
        var shown = node.DeepClone();
        var exclusiveMin = schema["exclusiveMinimum"].AsBool() == true;
        var exclusiveMax = schema["exclusiveMaximum"].AsBool() == true;
        if (schema["minimum"].AsDouble() is { } min && (exclusiveMin ? value <= min : value < min))
        {
            errors.Add(FieldError.Invalid(path, shown, $"{path} in body should be greater than {(exclusiveMin ? "" : "or equal to ")}{Num(min)}"));
        }

        if (schema["maximum"].AsDouble() is { } max && (exclusiveMax ? value >= max : value > max))
        {
            errors.Add(FieldError.Invalid(path, shown, $"{path} in body should be less than {(exclusiveMax ? "" : "or equal to ")}{Num(max)}"));
        }

        if (schema["multipleOf"].AsDouble() is { } factor && factor > 0 && Math.Abs(Math.IEEERemainder(value, factor)) > 1e-9)
        {
            errors.Add(FieldError.Invalid(path, shown, $"{path} in body should be a multiple of {Num(factor)}"));
        }

        var format = schema["format"].AsString();
        if (schema["type"].AsString() == "integer" && format is "int32" && value is < int.MinValue or > int.MaxValue)
        {
            errors.Add(FieldError.TypeInvalid(path, shown, $"{path} in body must be of type int32: \"{Num(value)}\""));
        }
    }

    private static string Num(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    private static void ValidateArray(JsonArray array, JsonObject schema, string path, List<FieldError> errors)
    {
        if (schema["maxItems"].AsLong() is { } max && array.Count > max)
        {
            errors.Add(FieldError.TooMany(path, array.Count, max));
        }

        if (schema["minItems"].AsLong() is { } min && array.Count < min)
        {
            errors.Add(FieldError.Invalid(path, JsonValue.Create(array.Count), $"{path} in body should have at least {min} items"));
        }

        if (schema["items"] is JsonObject items)
        {
            for (var i = 0; i < array.Count; i++)
            {
                Validate(array[i], items, $"{path}[{i}]", errors);
            }
        }

        switch (schema["x-kubernetes-list-type"].AsString())
        {
            case "map":
                {
                    var keys = (schema["x-kubernetes-list-map-keys"] as JsonArray)?.Select(k => k.AsString()).OfType<string>().ToList() ?? [];
                    var seen = new HashSet<string>();
                    for (var i = 0; i < array.Count; i++)
                    {
                        if (array[i] is not JsonObject item)
                        {
                            continue;
                        }

                        var keyObject = new JsonObject(keys.Where(item.ContainsKey).Select(k => KeyValuePair.Create(k, item[k]?.DeepClone())));
                        if (!seen.Add(keyObject.ToJsonString()))
                        {
                            errors.Add(FieldError.Duplicate($"{path}[{i}]", keyObject));
                        }
                    }

                    break;
                }

            case "set":
                {
                    var seen = new HashSet<string>();
                    for (var i = 0; i < array.Count; i++)
                    {
                        if (!seen.Add(Json.Serialize(array[i])))
                        {
                            errors.Add(FieldError.Duplicate($"{path}[{i}]", array[i]?.DeepClone()));
                        }
                    }

                    break;
                }
        }
    }

    private static void ValidateObject(JsonObject o, JsonObject schema, string path, List<FieldError> errors)
    {
        if (schema["required"] is JsonArray required)
        {
            foreach (var r in required.Select(r => r.AsString()).OfType<string>())
            {
                if (!o.ContainsKey(r))
                {
                    errors.Add(FieldError.Required(Child(path, r)));
                }
            }
        }

        if (schema["maxProperties"].AsLong() is { } maxProps && o.Count > maxProps)
        {
            errors.Add(FieldError.TooMany(path, o.Count, maxProps));
        }

        if (schema["minProperties"].AsLong() is { } minProps && o.Count < minProps)
        {
            errors.Add(FieldError.Invalid(path, JsonValue.Create(o.Count), $"{path} in body should have at least {minProps} properties"));
        }

        var properties = schema["properties"] as JsonObject;
        var additional = schema["additionalProperties"] as JsonObject;
        foreach (var (key, value) in o)
        {
            if (properties?[key] is JsonObject propSchema)
            {
                Validate(value, propSchema, Child(path, key), errors);
            }
            else if (additional is not null)
            {
                Validate(value, additional, Child(path, key), errors);
            }
        }
    }

    private static void ValidateCombinators(JsonNode node, JsonObject schema, string path, List<FieldError> errors)
    {
        if (schema["allOf"] is JsonArray allOf)
        {
            foreach (var s in allOf.OfType<JsonObject>())
            {
                Validate(node, s, path, errors);
            }
        }

        if (schema["anyOf"] is JsonArray anyOf && anyOf.Count > 0 && !anyOf.OfType<JsonObject>().Any(s => Passes(node, s, path)))
        {
            errors.Add(FieldError.Invalid(path, node.DeepClone(), $"{path} in body must validate at least one schema (anyOf)"));
        }

        if (schema["oneOf"] is JsonArray oneOf && oneOf.Count > 0 && oneOf.OfType<JsonObject>().Count(s => Passes(node, s, path)) != 1)
        {
            errors.Add(FieldError.Invalid(path, node.DeepClone(), $"{path} in body must validate one and only one schema (oneOf)"));
        }

        if (schema["not"] is JsonObject not && Passes(node, not, path))
        {
            errors.Add(FieldError.Invalid(path, node.DeepClone(), $"{path} in body should not validate the schema (not)"));
        }
    }

    private static bool Passes(JsonNode node, JsonObject schema, string path)
    {
        var errors = new List<FieldError>();
        Validate(node, schema, path, errors);
        return errors.Count == 0;
    }

    private static string Child(string path, string key) => path.Length == 0 ? key : new StringBuilder(path).Append('.').Append(key).ToString();
}
