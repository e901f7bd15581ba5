using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Dgon.KubeTestServer;

/// <summary>How a response body is rendered (content negotiation on the Accept header).</summary>
internal enum OutputMode
{
    Json,
    Table,
    PartialObjectMetadata,
}

/// <summary>HTTP endpoints of <see cref="ApiServer"/>: discovery, CRUD, list with paging, watch streams.</summary>
internal sealed partial class ApiServer
{
    public const string JsonContentType = "application/json";

    private static readonly string[] PatchTypesForCustomResources = [Patches.JsonPatch, Patches.MergePatch, Patches.ApplyPatch];

    /// <summary>Serves one request; <paramref name="onStreamStarted"/> is called when a watch stream's headers are sent.</summary>
    public async Task HandleAsync(HttpContext ctx, RequestTarget target, Action onStreamStarted)
    {
        try
        {
            if (!target.IsResource)
            {
                await HandleNonResourceAsync(ctx, target);
            }
            else
            {
                await HandleResourceAsync(ctx, target, onStreamStarted);
            }
        }
        catch (KubeException e) when (!ctx.Response.HasStarted)
        {
            await WriteStatusAsync(ctx, e);
        }
    }

    public static async Task WriteStatusAsync(HttpContext ctx, KubeException e)
    {
        if (e.Code == 429 || e.RetryAfterSeconds is not null)
        {
            ctx.Response.Headers.RetryAfter = (e.RetryAfterSeconds ?? 1).ToString(CultureInfo.InvariantCulture);
        }

        await WriteJsonAsync(ctx, e.Code, e.ToStatus());
    }

    public static async Task WriteJsonAsync(HttpContext ctx, int code, JsonNode body, string contentType = JsonContentType)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = contentType;
        var bytes = Encoding.UTF8.GetBytes(Json.Serialize(body) + "\n");
        ctx.Response.ContentLength = bytes.Length;
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted);
    }

    // ---------------------------------------------------------------- discovery

    private async Task HandleNonResourceAsync(HttpContext ctx, RequestTarget target)
    {
        var path = "/" + string.Join('/', target.Segments);
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
        {
            throw path is "/version" or "/api" or "/apis" || target.Version is not null ? KubeException.MethodNotAllowed() : KubeException.NotFoundPath();
        }

        if (await TryServeOpenApiAsync(ctx, path))
        {
            return;
        }

        switch (path)
        {
            case "/healthz" or "/livez" or "/readyz":
                ctx.Response.ContentType = "text/plain; charset=utf-8";
                await ctx.Response.WriteAsync("ok");
                return;
            case "/version":
                await WriteJsonAsync(ctx, 200, new JsonObject
                {
                    ["major"] = "1",
                    ["minor"] = "32",
                    ["gitVersion"] = "v1.32.0",
                    ["gitCommit"] = "dgon-kube-test-server",
                    ["gitTreeState"] = "clean",
                    ["buildDate"] = "2024-12-11T00:00:00Z",
                    ["goVersion"] = "go1.23.3",
                    ["compiler"] = "gc",
                    ["platform"] = "linux/amd64",
                });
                return;
            case "/":
                await WriteJsonAsync(ctx, 200, new JsonObject
                {
                    ["paths"] = new JsonArray([.. new[] { "/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version" }
                        .Concat(Registry.Groups().SelectMany(g => g.Versions.Select(v => $"/apis/{g.Group}/{v}")))
                        .Concat(Registry.Groups().Select(g => $"/apis/{g.Group}"))
                        .Order(StringComparer.Ordinal).Select(p => (JsonNode)JsonValue.Create(p))]),
                });
                return;
            case "/api":
                await WriteJsonAsync(ctx, 200, new JsonObject
                {
                    ["kind"] = "APIVersions",
                    ["versions"] = new JsonArray("v1"),
                    ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = ServerAddress }),
                });
                return;
            case "/apis":
                await WriteJsonAsync(ctx, 200, new JsonObject
                {
                    ["kind"] = "APIGroupList",
                    ["apiVersion"] = "v1",
                    ["groups"] = new JsonArray([.. Registry.Groups().Select(g => (JsonNode)GroupDocument(g.Group, g.Versions, withTypeMeta: false))]),
                });
                return;
        }

        if (target.Segments.Length == 2 && target.Segments[0] == "apis")
        {
            var group = Registry.Groups().FirstOrDefault(g => g.Group == target.Segments[1]);
            if (group.Group is null)
            {
                throw KubeException.NotFoundPath();
            }

            await WriteJsonAsync(ctx, 200, GroupDocument(group.Group, group.Versions, withTypeMeta: true));
            return;
        }

        if (target.Group is not null && target.Segments.Length == (target.Group.Length == 0 ? 2 : 3))
        {
            var types = Registry.All().Where(t => t.Group == target.Group && t.Version == target.Version).ToList();
            if (types.Count == 0)
            {
                throw KubeException.NotFoundPath();
            }

            await WriteJsonAsync(ctx, 200, ResourceListDocument(target.Group, target.Version!, types));
            return;
        }

        throw KubeException.NotFoundPath();
    }

    private static JsonObject GroupDocument(string group, IReadOnlyList<string> versions, bool withTypeMeta)
    {
        var doc = new JsonObject();
        if (withTypeMeta)
        {
            doc["kind"] = "APIGroup";
            doc["apiVersion"] = "v1";
        }

        doc["name"] = group;
        doc["versions"] = new JsonArray([.. versions.Select(v => (JsonNode)new JsonObject { ["groupVersion"] = $"{group}/{v}", ["version"] = v })]);
        doc["preferredVersion"] = new JsonObject { ["groupVersion"] = $"{group}/{versions[0]}", ["version"] = versions[0] };
        return doc;
    }

    private static JsonObject ResourceListDocument(string group, string version, List<ResourceType> types)
    {
        var resources = new JsonArray();
        foreach (var t in types.OrderBy(t => t.Plural, StringComparer.Ordinal))
        {
            var r = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = new JsonArray([.. t.Verbs.Select(v => (JsonNode)JsonValue.Create(v))]),
            };
            if (t.ShortNames.Count > 0)
            {
                r["shortNames"] = new JsonArray([.. t.ShortNames.Select(v => (JsonNode)JsonValue.Create(v))]);
            }

            if (t.Categories.Count > 0)
            {
                r["categories"] = new JsonArray([.. t.Categories.Select(v => (JsonNode)JsonValue.Create(v))]);
            }

            r["storageVersionHash"] = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{t.Group}/{t.Version}/{t.Kind}")).AsSpan(0, 8));
            resources.Add(r);
            if (t.HasStatus)
            {
                resources.Add(new JsonObject
                {
                    ["name"] = t.Plural + "/status",
                    ["singularName"] = "",
                    ["namespaced"] = t.Namespaced,
                    ["kind"] = t.Kind,
                    ["verbs"] = new JsonArray("get", "patch", "update"),
                });
            }
        }

        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = resources,
        };
    }

    // ---------------------------------------------------------------- resources

    private async Task HandleResourceAsync(HttpContext ctx, RequestTarget target, Action onStreamStarted)
    {
        var type = Registry.Find(target.Group!, target.Version!, target.Resource!) ?? throw KubeException.NotFoundPath();
        if (type.Namespaced && target.Namespace is null && target.Name is not null)
        {
            throw KubeException.NotFoundPath();
        }

        if (!type.Namespaced && target.Namespace is not null)
        {
            throw KubeException.NotFoundPath();
        }

        var statusWrite = false;
        if (target.Subresource is not null)
        {
            if (target.Subresource != "status" || !type.HasStatus)
            {
                throw KubeException.NotFoundPath();
            }

            statusWrite = true;
        }

        var method = ctx.Request.Method;
        var q = ctx.Request.Query;
        var isWatch = target.WatchPath || q["watch"] is var w && (w == "true" || w == "1");
        var ns = type.Namespaced ? target.Namespace : null;

        if (HttpMethods.IsGet(method) && (isWatch))
        {
            if (statusWrite)
            {
                throw KubeException.MethodNotAllowed();
            }

            await WatchAsync(ctx, type, ns, target.Name, onStreamStarted);
            return;
        }

        if (target.Name is null)
        {
            switch (method)
            {
                case "GET":
                    await ListAsync(ctx, type, ns);
                    return;
                case "POST":
                    await CreateAsync(ctx, type, ns);
                    return;
                case "DELETE":
                    await DeleteCollectionAsync(ctx, type, ns);
                    return;
                default:
                    throw KubeException.MethodNotAllowed();
            }
        }

        switch (method)
        {
            case "GET":
                await GetAsync(ctx, type, ns, target.Name);
                return;
            case "PUT":
                await UpdateAsync(ctx, type, ns, target.Name, statusWrite);
                return;
            case "PATCH":
                await PatchAsync(ctx, type, ns, target.Name, statusWrite);
                return;
            case "DELETE" when !statusWrite:
                await DeleteAsync(ctx, type, ns, target.Name);
                return;
            default:
                throw KubeException.MethodNotAllowed();
        }
    }

    /// <summary>Accept negotiation: the first acceptable media range wins (Table, PartialObjectMetadata or plain JSON).</summary>
    private static (OutputMode Mode, string MetaVersion) Negotiate(HttpRequest request)
    {
        var accept = request.Headers.Accept.ToString();
        if (string.IsNullOrWhiteSpace(accept))
        {
            return (OutputMode.Json, "v1");
        }

        foreach (var range in accept.Split(','))
        {
            var parts = range.Split(';').Select(p => p.Trim()).ToArray();
            var mediaType = parts[0].ToLowerInvariant();
            var parameters = parts.Skip(1).Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0].Trim(), p => p[1].Trim());
            if (mediaType is not ("application/json" or "*/*" or "application/*" or "application/yaml"))
            {
                continue;
            }

            if (!parameters.TryGetValue("as", out var asKind))
            {
                return (OutputMode.Json, "v1");
            }

            if (parameters.GetValueOrDefault("g") != "meta.k8s.io")
            {
                continue;
            }

            var version = parameters.GetValueOrDefault("v") ?? "v1";
            if (version is not ("v1" or "v1beta1"))
            {
                continue;
            }

            switch (asKind)
            {
                case "Table":
                    return (OutputMode.Table, version);
                case "PartialObjectMetadata" or "PartialObjectMetadataList":
                    return (OutputMode.PartialObjectMetadata, version);
            }
        }

        throw new KubeException(406, "NotAcceptable", $"only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io");
    }

    private static string ContentTypeFor(OutputMode mode, string metaVersion, bool list) => mode switch
    {
        OutputMode.Table => $"application/json;as=Table;v={metaVersion};g=meta.k8s.io",
        OutputMode.PartialObjectMetadata => $"application/json;as={(list ? "PartialObjectMetadataList" : "PartialObjectMetadata")};v={metaVersion};g=meta.k8s.io",
        _ => JsonContentType,
    };

    private static string IncludeObject(HttpRequest request) =>
        request.Query["includeObject"].ToString() is { Length: > 0 } v ? v : "Metadata";

    private static async Task<JsonObject> ReadObjectBodyAsync(HttpContext ctx, ResourceType type)
    {
        var contentType = (ctx.Request.ContentType ?? JsonContentType).Split(';')[0].Trim().ToLowerInvariant();
        if (contentType == Protobuf.ContentType && !type.IsCustom)
        {
            using var buffer = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted);
            return Protobuf.Decode(buffer.ToArray(), type);
        }

        var body = await ReadBodyAsync(ctx);
        switch (contentType)
        {
            case "application/json" or "":
                return Json.ParseObject(body);
            case "application/yaml" or "application/x-yaml" or "text/yaml":
                return Yaml.ParseDocuments(body).FirstOrDefault() as JsonObject ?? throw KubeException.BadRequest("the request body must be an object");
            default:
                throw KubeException.UnsupportedMediaType(type.IsCustom ? ["application/json", "application/yaml"] : ["application/json", "application/yaml", Protobuf.ContentType]);
        }
    }

    private static async Task<string> ReadBodyAsync(HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        return await reader.ReadToEndAsync(ctx.RequestAborted);
    }

    private static bool IsDryRun(HttpRequest request) => request.Query["dryRun"].Any(v => v == "All");

    private static string FieldValidationOf(HttpRequest request)
    {
        var v = request.Query["fieldValidation"].ToString();
        return v switch
        {
            "" => "Warn",
            "Ignore" or "Warn" or "Strict" => v,
            _ => throw KubeException.BadRequest($"fieldValidation parameter unsupported: \"{v}\". Expected one of: Ignore, Warn, Strict"),
        };
    }

    private static void AddWarnings(HttpContext ctx, List<string> warnings)
    {
        foreach (var w in warnings)
        {
            ctx.Response.Headers.Append("Warning", $"299 - {Json.Quote(w)}");
        }
    }

    private async Task GetAsync(HttpContext ctx, ResourceType type, string? ns, string name)
    {
        var (mode, metaVersion) = Negotiate(ctx.Request);
        var storageType = StorageType(type, Registry);
        JsonObject stored;
        lock (Store.Lock)
        {
            stored = (Store.Get(storageType.StorageKey, Store.KeyOf(ns ?? "", name)) ?? throw KubeException.NotFound(type, name)).Parse();
        }

        var output = ToOutput(type, (JsonObject)stored.DeepClone());
        JsonNode body = mode switch
        {
            OutputMode.Table => Tables.Table(type, [(stored, output)], new JsonObject { ["resourceVersion"] = stored["metadata"].Str("resourceVersion") }, IncludeObject(ctx.Request), true, metaVersion, Now),
            OutputMode.PartialObjectMetadata => Tables.PartialMetadata(output, metaVersion),
            _ => output,
        };
        await WriteJsonAsync(ctx, 200, body, ContentTypeFor(mode, metaVersion, list: false));
    }

    private async Task CreateAsync(HttpContext ctx, ResourceType type, string? ns)
    {
        var body = await ReadObjectBodyAsync(ctx, type);
        var warnings = new List<string>();
        var dryRun = IsDryRun(ctx.Request);
        var fieldValidation = FieldValidationOf(ctx.Request);
        JsonObject created;
        lock (Store.Lock)
        {
            created = CreateLocked(type, ns, body, dryRun, fieldValidation, warnings);
        }

        AddWarnings(ctx, warnings);
        await WriteJsonAsync(ctx, 201, created);
    }

    private async Task UpdateAsync(HttpContext ctx, ResourceType type, string? ns, string name, bool statusWrite)
    {
        var body = await ReadObjectBodyAsync(ctx, type);
        var warnings = new List<string>();
        var dryRun = IsDryRun(ctx.Request);
        var fieldValidation = FieldValidationOf(ctx.Request);
        JsonObject updated;
        lock (Store.Lock)
        {
            updated = UpdateLocked(type, ns, name, body, statusWrite, isPatch: false, dryRun, fieldValidation, warnings);
        }

        AddWarnings(ctx, warnings);
        await WriteJsonAsync(ctx, 200, updated);
    }

    private async Task PatchAsync(HttpContext ctx, ResourceType type, string? ns, string name, bool statusWrite)
    {
        var contentType = (ctx.Request.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        var builtIn = !type.IsCustom;
        if (contentType == Patches.ApplyPatch)
        {
            throw new KubeException(415, "UnsupportedMediaType", "server-side apply (application/apply-patch+yaml) is not supported by this test server; use application/merge-patch+json or application/json-patch+json");
        }

        if (contentType is not (Patches.MergePatch or Patches.JsonPatch or Patches.StrategicMergePatch) || (contentType == Patches.StrategicMergePatch && !builtIn))
        {
            var accepted = builtIn ? [Patches.JsonPatch, Patches.MergePatch, Patches.StrategicMergePatch, Patches.ApplyPatch] : PatchTypesForCustomResources;
            throw KubeException.UnsupportedMediaType(accepted);
        }

        var patch = Patches.ParseBody(await ReadBodyAsync(ctx));
        var warnings = new List<string>();
        var dryRun = IsDryRun(ctx.Request);
        var fieldValidation = FieldValidationOf(ctx.Request);
        JsonObject updated;
        lock (Store.Lock)
        {
            var current = GetForPatchLocked(type, ns, name);
            var patched = contentType switch
            {
                Patches.MergePatch => Patches.ApplyMergePatch(current, patch),
                Patches.StrategicMergePatch => Patches.ApplyStrategicMergePatch(current, patch),
                _ => Patches.ApplyJsonPatch(current, patch),
            };
            if (patched is not JsonObject patchedObject)
            {
                throw KubeException.BadRequest("the patched object is not a JSON object");
            }

            updated = UpdateLocked(type, ns, name, patchedObject, statusWrite, isPatch: true, dryRun, fieldValidation, warnings);
        }

        AddWarnings(ctx, warnings);
        await WriteJsonAsync(ctx, 200, updated);
    }

    private static async Task<DeleteOptions> ReadDeleteOptionsAsync(HttpContext ctx)
    {
        var q = ctx.Request.Query;
        string? policy = q["propagationPolicy"].ToString() is { Length: > 0 } p ? p : null;
        var dryRun = IsDryRun(ctx.Request);
        string? uid = null;
        string? rv = null;
        if (q["orphanDependents"].ToString() is { Length: > 0 } orphanQuery)
        {
            policy ??= orphanQuery == "true" ? "Orphan" : "Background";
        }

        var body = await ReadBodyAsync(ctx);
        if (!string.IsNullOrWhiteSpace(body))
        {
            var o = Json.ParseObject(body);
            policy = o["propagationPolicy"].AsString() ?? policy;
            if (o["orphanDependents"].AsBool() is { } orphan)
            {
                policy ??= orphan ? "Orphan" : "Background";
            }

            uid = o["preconditions"].Str("uid");
            rv = o["preconditions"].Str("resourceVersion");
            dryRun |= (o["dryRun"] as JsonArray)?.Any(v => v.AsString() == "All") == true;
        }

        return new DeleteOptions(policy, uid, rv, dryRun);
    }

    private async Task DeleteAsync(HttpContext ctx, ResourceType type, string? ns, string name)
    {
        var options = await ReadDeleteOptionsAsync(ctx);
        JsonObject obj;
        bool deleted;
        lock (Store.Lock)
        {
            (obj, deleted) = DeleteLocked(type, ns, name, options);
        }

        if (deleted && type.Strategy is not (Strategy.Namespace or Strategy.Crd))
        {
            await WriteJsonAsync(ctx, 200, new JsonObject
            {
                ["kind"] = "Status",
                ["apiVersion"] = "v1",
                ["metadata"] = new JsonObject(),
                ["status"] = "Success",
                ["details"] = new JsonObject
                {
                    ["name"] = name,
                    ["group"] = type.Group,
                    ["kind"] = type.Plural,
                    ["uid"] = obj["metadata"].Str("uid"),
                },
            });
            return;
        }

        await WriteJsonAsync(ctx, 200, obj);
    }

    private async Task DeleteCollectionAsync(HttpContext ctx, ResourceType type, string? ns)
    {
        if (!type.Verbs.Contains("deletecollection"))
        {
            throw KubeException.MethodNotAllowed();
        }

        var options = await ReadDeleteOptionsAsync(ctx);
        var labels = LabelSelector.Parse(ctx.Request.Query["labelSelector"]);
        var fields = FieldSelector.Parse(ctx.Request.Query["fieldSelector"]);
        var storageType = StorageType(type, Registry);
        CheckFieldSelector(storageType, fields);
        var items = new JsonArray();
        long rv;
        lock (Store.Lock)
        {
            foreach (var o in Store.List(storageType.StorageKey))
            {
                var obj = o.Parse();
                if (Store.Get(storageType.StorageKey, o.Key) is not null && Matches(storageType, obj, ns, labels, fields))
                {
                    items.Add(DeleteLocked(type, obj.Namespace() is { Length: > 0 } objNs ? objNs : null, obj.Name(), options).Object);
                }
            }

            rv = Store.CurrentRv;
        }

        await WriteJsonAsync(ctx, 200, new JsonObject
        {
            ["kind"] = type.ListKind,
            ["apiVersion"] = type.ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = FormatRv(rv) },
            ["items"] = items,
        });
    }

    private static bool Matches(ResourceType storageType, JsonObject stored, string? ns, LabelSelector labels, FieldSelector fields) =>
        (ns is null || stored.Namespace() == ns)
        && labels.Matches(stored.Labels())
        && fields.Matches(f => Strategies.FieldValue(storageType, stored, f));

    private static void CheckFieldSelector(ResourceType type, FieldSelector fields)
    {
        var probe = new JsonObject { ["metadata"] = new JsonObject() };
        foreach (var (field, _, _) in fields.Requirements)
        {
            Strategies.FieldValue(type, probe, field);
        }
    }
}
