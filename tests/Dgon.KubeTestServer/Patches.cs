using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a strategic-merge subset for built-in types.</summary>
internal static class Patches
{
    public const string MergePatch = "application/merge-patch+json";
    public const string JsonPatch = "application/json-patch+json";
    public const string StrategicMergePatch = "application/strategic-merge-patch+json";
    public const string ApplyPatch = "application/apply-patch+yaml";

    /// <summary>RFC 7386: objects merge recursively, null removes a member, anything else replaces.</summary>
    public static JsonNode? ApplyMergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject t ? (JsonObject)t.DeepClone() : new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                var merged = ApplyMergePatch(result[key], value);
                result[key] = merged;
            }
        }

        return result;
    }

    /// <summary>
    /// Strategic merge patch, the subset our built-in types need: maps merge like a merge patch; <c>$patch: delete|replace</c>
    /// on maps; lists with a known merge key (<c>metadata.ownerReferences</c> by uid, <c>conditions</c> by type) merge by key;
    /// <c>metadata.finalizers</c> merges as a set (with <c>$deleteFromPrimitiveList/finalizers</c>); other lists replace;
    /// <c>$setElementOrder/…</c> and <c>$retainKeys</c> directives are accepted and ignored.
    /// </summary>
    public static JsonNode? ApplyStrategicMergePatch(JsonNode? target, JsonNode? patch, string path = "")
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        if (patchObject["$patch"].AsString() is { } directive)
        {
            if (directive == "delete")
            {
                return null;
            }

            if (directive == "replace")
            {
                var replaced = (JsonObject)patchObject.DeepClone();
                replaced.Remove("$patch");
                return replaced;
            }
        }

        var result = target is JsonObject t ? (JsonObject)t.DeepClone() : new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (key is "$patch" or "$retainKeys" || key.StartsWith("$setElementOrder/", StringComparison.Ordinal))
            {
                continue;
            }

            if (key.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal))
            {
                var listKey = key["$deleteFromPrimitiveList/".Length..];
                if (result[listKey] is JsonArray list && value is JsonArray remove)
                {
                    var kept = list.Where(i => !remove.Any(r => JsonNode.DeepEquals(r, i))).Select(i => i?.DeepClone()).ToArray();
                    result[listKey] = new JsonArray(kept);
                }

                continue;
            }

            var childPath = path.Length == 0 ? key : path + "." + key;
            if (value is null)
            {
                result.Remove(key);
            }
            else if (value is JsonArray patchList && MergeKeyFor(childPath) is { } mergeKey)
            {
                result[key] = MergeList(result[key] as JsonArray, patchList, mergeKey, childPath);
            }
            else if (value is JsonArray primitives && childPath == "metadata.finalizers")
            {
                var merged = result[key] is JsonArray existing ? (JsonArray)existing.DeepClone() : [];
                foreach (var item in primitives)
                {
                    if (!merged.Any(m => JsonNode.DeepEquals(m, item)))
                    {
                        merged.Add(item?.DeepClone());
                    }
                }

                result[key] = merged;
            }
            else
            {
                var merged = ApplyStrategicMergePatch(result[key], value, childPath);
                if (merged is null && value is JsonObject)
                {
                    result.Remove(key);
                }
                else
                {
                    result[key] = merged;
                }
            }
        }

        return result;
    }

    private static string? MergeKeyFor(string path) => path switch
    {
        "metadata.ownerReferences" => "uid",
        _ when path.EndsWith("conditions", StringComparison.Ordinal) => "type",
        _ => null,
    };

    private static JsonArray MergeList(JsonArray? current, JsonArray patch, string mergeKey, string path)
    {
        var result = current is null ? [] : (JsonArray)current.DeepClone();
        foreach (var item in patch)
        {
            if (item is not JsonObject patchItem)
            {
                continue;
            }

            var key = patchItem[mergeKey]?.ToJsonString();
            var index = -1;
            for (var i = 0; i < result.Count; i++)
            {
                if (result[i]?[mergeKey]?.ToJsonString() == key)
                {
                    index = i;
                    break;
                }
            }

            if (patchItem["$patch"].AsString() == "delete")
            {
                if (index >= 0)
                {
                    result.RemoveAt(index);
                }

                continue;
            }

            if (index >= 0)
            {
                result[index] = ApplyStrategicMergePatch(result[index], patchItem, path);
            }
            else
            {
                result.Add(ApplyStrategicMergePatch(null, patchItem, path));
            }
        }

        return result;
    }

    /// <summary>RFC 6902 JSON patch (add, remove, replace, move, copy, test).</summary>
    public static JsonNode ApplyJsonPatch(JsonNode target, JsonNode? patch)
    {
        if (patch is not JsonArray ops)
        {
            throw KubeException.BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
        }

        var doc = target.DeepClone();
        foreach (var opNode in ops)
        {
            if (opNode is not JsonObject op)
            {
                throw KubeException.BadRequest("invalid JSON patch operation");
            }

            var kind = op["op"].AsString() ?? throw KubeException.BadRequest("missing 'op' in JSON patch operation");
            var path = op["path"].AsString() ?? throw KubeException.BadRequest("missing 'path' in JSON patch operation");
            switch (kind)
            {
                case "add":
                    doc = Add(doc, path, op["value"]?.DeepClone());
                    break;
                case "remove":
                    doc = Remove(doc, path, out _);
                    break;
                case "replace":
                    doc = Remove(doc, path, out _);
                    doc = Add(doc, path, op["value"]?.DeepClone());
                    break;
                case "move":
                    {
                        var from = op["from"].AsString() ?? throw KubeException.BadRequest("missing 'from' in JSON patch move");
                        doc = Remove(doc, from, out var moved);
                        doc = Add(doc, path, moved);
                        break;
                    }

                case "copy":
                    {
                        var from = op["from"].AsString() ?? throw KubeException.BadRequest("missing 'from' in JSON patch copy");
                        doc = Add(doc, path, Get(doc, from)?.DeepClone());
                        break;
                    }

                case "test":
                    if (!JsonNode.DeepEquals(Get(doc, path), op["value"]))
                    {
                        throw new KubeException(422, "Invalid", $"the server rejected our request due to an error in our request: testing value {path} failed");
                    }

                    break;
                default:
                    throw KubeException.BadRequest($"Unexpected kind: {kind}");
            }
        }

        return doc;
    }

    private static List<string> Pointer(string path)
    {
        if (path.Length == 0)
        {
            return [];
        }

        if (path[0] != '/')
        {
            throw KubeException.BadRequest($"invalid JSON pointer {path}");
        }

        return [.. path[1..].Split('/').Select(p => p.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))];
    }

    private static JsonNode? Get(JsonNode doc, string path)
    {
        JsonNode? node = doc;
        foreach (var part in Pointer(path))
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(part, out var child) => child,
                JsonArray a when int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count => a[i],
                _ => throw PatchFailed(path),
            };
        }

        return node;
    }

    private static KubeException PatchFailed(string path) =>
        new(422, "Invalid", $"the server rejected our request due to an error in our request: doc is missing path: \"{path}\": missing value");

    private static JsonNode Add(JsonNode doc, string path, JsonNode? value)
    {
        var parts = Pointer(path);
        if (parts.Count == 0)
        {
            return value ?? throw KubeException.BadRequest("cannot replace the document with null");
        }

        var parent = Get(doc, "/" + string.Join('/', parts.SkipLast(1).Select(p => p.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));
        if (parts.Count == 1)
        {
            parent = doc;
        }

        var last = parts[^1];
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw PatchFailed(path);
        }

        return doc;
    }

    private static JsonNode Remove(JsonNode doc, string path, out JsonNode? removed)
    {
        var parts = Pointer(path);
        if (parts.Count == 0)
        {
            throw KubeException.BadRequest("cannot remove the whole document");
        }

        var parent = parts.Count == 1 ? doc : Get(doc, "/" + string.Join('/', parts.SkipLast(1).Select(p => p.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));
        var last = parts[^1];
        switch (parent)
        {
            case JsonObject o when o.TryGetPropertyValue(last, out var child):
                o.Remove(last);
                removed = child;
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count:
                removed = a[i];
                a.RemoveAt(i);
                break;
            default:
                throw PatchFailed(path);
        }

        return doc;
    }

    /// <summary>Parses a patch body; JSON is required for every patch type we support.</summary>
    public static JsonNode? ParseBody(string body)
    {
        try
        {
            return JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            throw KubeException.BadRequest($"error decoding patch: {e.Message}");
        }
    }
}
