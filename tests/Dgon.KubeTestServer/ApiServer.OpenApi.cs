using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Dgon.KubeTestServer;

/// <summary>
/// A minimal OpenAPI v3 surface: the <c>/openapi/v3</c> discovery document and, per group-version, operations for every
/// served resource with <c>x-kubernetes-group-version-kind</c> and the query parameters (<c>fieldValidation</c>,
/// <c>dryRun</c>, <c>fieldManager</c>) — what kubectl reads to decide on server-side field validation — and, for custom
/// resources, the component schemas of <see cref="OpenApiSchemas"/> (what <c>kubectl explain</c> reads). Built-in
/// types have no component schemas (kubectl explain of them is not supported).
/// </summary>
internal sealed partial class ApiServer
{
    private async Task<bool> TryServeOpenApiAsync(HttpContext ctx, string path)
    {
        if (path == "/openapi/v3")
        {
            var paths = new JsonObject();
            foreach (var gv in GroupVersions())
            {
                var doc = OpenApiDocument(gv.Group, gv.Version);
                paths[gv.Path] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{gv.Path}?hash={Hash(doc)}" };
            }

            await WriteJsonAsync(ctx, 200, new JsonObject { ["paths"] = paths });
            return true;
        }

        if (path.StartsWith("/openapi/v3/", StringComparison.Ordinal))
        {
            var rest = path["/openapi/v3/".Length..];
            var match = GroupVersions().FirstOrDefault(gv => gv.Path == rest);
            if (match.Path is null)
            {
                return false;
            }

            await WriteJsonAsync(ctx, 200, OpenApiDocument(match.Group, match.Version));
            return true;
        }

        return false;
    }

    private List<(string Group, string Version, string Path)> GroupVersions() =>
        [.. Registry.All().Select(t => (t.Group, t.Version)).Distinct().Select(gv => (gv.Group, gv.Version, gv.Group.Length == 0 ? $"api/{gv.Version}" : $"apis/{gv.Group}/{gv.Version}"))];

    private static string Hash(JsonNode doc) =>
        Convert.ToHexString(SHA512.HashData(Encoding.UTF8.GetBytes(Json.Serialize(doc)))).ToUpperInvariant();

    private JsonObject OpenApiDocument(string group, string version)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (var t in Registry.All().Where(t => t.Group == group && t.Version == version))
        {
            if (t.IsCustom)
            {
                OpenApiSchemas.AddCustomResource(schemas, t);
            }

            var prefix = group.Length == 0 ? $"/api/{version}" : $"/apis/{group}/{version}";
            var scope = t.Namespaced ? "/namespaces/{namespace}" : "";
            paths[$"{prefix}{scope}/{t.Plural}/{{name}}"] = ItemPath(t, "");
            paths[$"{prefix}{scope}/{t.Plural}"] = CollectionPath(t);
            if (t.HasStatus)
            {
                paths[$"{prefix}{scope}/{t.Plural}/{{name}}/status"] = ItemPath(t, "Status");
            }
        }

        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    private static JsonObject Gvk(ResourceType t) => new() { ["group"] = t.Group, ["kind"] = t.Kind, ["version"] = t.Version };

    private static JsonObject Operation(ResourceType t, string action, string suffix, params string[] queryParameters) => new()
    {
        ["operationId"] = $"{action}{t.Kind}{suffix}",
        ["parameters"] = new JsonArray([.. queryParameters.Select(p => (JsonNode)new JsonObject
        {
            ["name"] = p,
            ["in"] = "query",
            ["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true },
        })]),
        ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "OK" } },
        ["x-kubernetes-action"] = action,
        ["x-kubernetes-group-version-kind"] = Gvk(t),
    };

    private static JsonObject PathParameters(ResourceType t, bool withName)
    {
        var parameters = new JsonArray();
        if (withName)
        {
            parameters.Add(new JsonObject { ["name"] = "name", ["in"] = "path", ["required"] = true, ["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true } });
        }

        if (t.Namespaced)
        {
            parameters.Add(new JsonObject { ["name"] = "namespace", ["in"] = "path", ["required"] = true, ["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true } });
        }

        return new JsonObject { ["parameters"] = parameters };
    }

    private static JsonObject ItemPath(ResourceType t, string suffix)
    {
        var item = PathParameters(t, withName: true);
        item["get"] = Operation(t, "get", suffix);
        item["put"] = Operation(t, "put", suffix, "dryRun", "fieldManager", "fieldValidation");
        item["patch"] = Operation(t, "patch", suffix, "dryRun", "fieldManager", "fieldValidation", "force");
        if (suffix.Length == 0)
        {
            item["delete"] = Operation(t, "delete", suffix, "dryRun", "gracePeriodSeconds", "propagationPolicy");
        }

        return item;
    }

    private static JsonObject CollectionPath(ResourceType t)
    {
        var collection = PathParameters(t, withName: false);
        collection["get"] = Operation(t, "list", "List", "allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch");
        collection["post"] = Operation(t, "post", "", "dryRun", "fieldManager", "fieldValidation");
        return collection;
    }
}
