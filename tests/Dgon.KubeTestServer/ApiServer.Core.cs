using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>DeleteOptions (body or query): propagationPolicy, preconditions, dryRun.</summary>
internal sealed record DeleteOptions(string? PropagationPolicy, string? PreconditionUid, string? PreconditionRv, bool DryRun);

/// <summary>
/// The API semantics, independent of HTTP: create/update/patch/delete with resourceVersion concurrency, generation,
/// status subresource, finalizers, garbage collection by ownerReferences (background, foreground, orphan), namespaces and CRDs.
/// Methods named *Locked must be called with <see cref="Store.Lock"/> held.
/// </summary>
internal sealed partial class ApiServer
{
    private const string GenerateNameAlphabet = "bcdfghjklmnpqrstvwxz2456789";
    private static readonly string[] ProtectedNamespaces = ["default", "kube-system", "kube-public"];
    private readonly KubeApiTestServerOptions _options;

    public ApiServer(KubeApiTestServerOptions options)
    {
        _options = options;
        Store = new Store(options.WatchHistoryLimit);
        Registry = new ResourceRegistry();
    }

    public Store Store { get; }

    public ResourceRegistry Registry { get; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public string ServerAddress { get; set; } = "127.0.0.1:0";

    private DateTimeOffset Now => Time.GetUtcNow();

    /// <summary>Creates the namespaces every cluster has and loads the CRD manifests.</summary>
    public void Bootstrap(IEnumerable<string> crdFiles)
    {
        lock (Store.Lock)
        {
            var namespaceType = Registry.Find("", "v1", "namespaces")!;
            foreach (var ns in new[] { _options.DefaultNamespace, "default", "kube-system", "kube-public", "kube-node-lease" }.Distinct())
            {
                CreateLocked(namespaceType, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } }, false, "Ignore", []);
            }

            var crdType = Registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
            foreach (var file in crdFiles)
            {
                foreach (var doc in Yaml.ParseDocuments(File.ReadAllText(file)).OfType<JsonObject>())
                {
                    var items = doc.Str("kind") == "List" && doc["items"] is JsonArray list ? list.OfType<JsonObject>().ToList() : [doc];
                    foreach (var item in items.Where(i => i.Str("kind") == "CustomResourceDefinition"))
                    {
                        try
                        {
                            CreateLocked(crdType, null, (JsonObject)item.DeepClone(), false, "Ignore", []);
                        }
                        catch (KubeException e)
                        {
                            throw new InvalidOperationException($"CRD in {file} was rejected: {e.Message}", e);
                        }
                    }
                }
            }
        }
    }

    private static void CheckTypeMeta(ResourceType type, JsonObject obj)
    {
        var apiVersion = obj["apiVersion"].AsString();
        var kind = obj["kind"].AsString();
        if (!string.IsNullOrEmpty(apiVersion) && apiVersion != type.ApiVersion)
        {
            throw KubeException.BadRequest($"the API version in the data ({apiVersion}) does not match the expected API version ({type.ApiVersion})");
        }

        if (!string.IsNullOrEmpty(kind) && kind != type.Kind)
        {
            throw KubeException.BadRequest($"the kind in the data ({kind}) does not match the expected kind ({type.Kind})");
        }

        obj["apiVersion"] = type.ApiVersion;
        obj["kind"] = type.Kind;
    }

    /// <summary>Request body (in the request's version) → storage form (events.k8s.io Events are stored as core/v1 Events).</summary>
    private static JsonObject ToStorage(ResourceType type, JsonObject obj)
    {
        CheckTypeMeta(type, obj);
        return type.Strategy == Strategy.EventsV1Event ? Strategies.EventsV1ToCore(obj) : obj;
    }

    private static ResourceType StorageType(ResourceType type, ResourceRegistry registry) =>
        type.Strategy == Strategy.EventsV1Event ? registry.Find("", "v1", "events")! : type;

    /// <summary>Storage form → the request's version.</summary>
    public static JsonObject ToOutput(ResourceType type, JsonObject stored)
    {
        if (type.Strategy == Strategy.EventsV1Event)
        {
            return Strategies.CoreToEventsV1(stored);
        }

        if (type.IsCustom)
        {
            stored["apiVersion"] = type.ApiVersion;
        }

        return stored;
    }

    private static void HandleUnknownFields(ResourceType type, JsonObject obj, string fieldValidation, List<string> warnings)
    {
        var unknown = Strategies.PruneUnknown(type, obj);
        if (unknown.Count == 0 || fieldValidation == "Ignore")
        {
            return;
        }

        if (fieldValidation == "Strict")
        {
            throw KubeException.BadRequest($"{type.Kind} in version \"{type.Version}\" cannot be handled as a {type.Kind}: strict decoding error: {string.Join(", ", unknown.Select(u => $"unknown field \"{u}\""))}");
        }

        warnings.AddRange(unknown.Select(u => $"unknown field \"{u}\""));
    }

    private void RequireNamespaceLocked(string ns)
    {
        if (Store.Get("namespaces", Store.KeyOf("", ns)) is null)
        {
            throw new KubeException(404, "NotFound", $"namespaces \"{ns}\" not found") { DetailName = ns, DetailKind = "namespaces" };
        }
    }

    private static string? ResolveNamespace(ResourceType type, string? urlNamespace, JsonObject obj)
    {
        var meta = obj.Meta();
        if (!type.Namespaced)
        {
            meta.Remove("namespace");
            return null;
        }

        var bodyNs = meta.Str("namespace");
        if (!string.IsNullOrEmpty(bodyNs) && urlNamespace is not null && bodyNs != urlNamespace)
        {
            throw KubeException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
        }

        var ns = urlNamespace ?? bodyNs;
        if (string.IsNullOrEmpty(ns))
        {
            throw KubeException.BadRequest("the server could not find the requested resource: a namespace is required");
        }

        meta["namespace"] = ns;
        return ns;
    }

    /// <summary>POST: create (generateName, uid, creationTimestamp, generation, resourceVersion; status dropped for status-subresource types).</summary>
    public JsonObject CreateLocked(ResourceType requestType, string? urlNamespace, JsonObject body, bool dryRun, string fieldValidation, List<string> warnings)
    {
        var obj = ToStorage(requestType, body);
        var type = StorageType(requestType, Registry);
        var ns = ResolveNamespace(type, urlNamespace, obj);
        if (ns is not null)
        {
            RequireNamespaceLocked(ns);
        }

        HandleUnknownFields(type, obj, fieldValidation, warnings);
        var meta = obj.Meta();
        if (string.IsNullOrEmpty(meta.Str("name")) && meta.Str("generateName") is { Length: > 0 } prefix)
        {
            string candidate;
            do
            {
                candidate = (prefix.Length > 58 ? prefix[..58] : prefix) + string.Concat(Enumerable.Range(0, 5).Select(_ => GenerateNameAlphabet[RandomNumberGenerator.GetInt32(GenerateNameAlphabet.Length)]));
            }
            while (Store.Get(type.StorageKey, Store.KeyOf(ns ?? "", candidate)) is not null);
            meta["name"] = candidate;
        }

        foreach (var system in new[] { "resourceVersion", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields" })
        {
            meta.Remove(system);
        }

        meta["uid"] = Guid.NewGuid().ToString();
        meta["creationTimestamp"] = Json.Time(Now);
        if (type.TracksGeneration)
        {
            meta["generation"] = 1;
        }

        if (type.HasStatus)
        {
            obj.Remove("status");
        }

        Strategies.Normalize(type, obj);
        switch (type.Strategy)
        {
            case Strategy.Namespace:
                obj["status"] = new JsonObject { ["phase"] = "Active" };
                break;
            case Strategy.Crd:
                Strategies.SetCrdStatus(obj, null, Now);
                break;
        }

        ReorderMetadata(obj);
        var errors = new List<FieldError>();
        Validation.ValidateObjectMeta(obj, Strategies.NameRule(type), errors);
        Strategies.Validate(type, obj, null, errors);
        if (requestType.Strategy == Strategy.EventsV1Event)
        {
            Strategies.ValidateEventsV1Create(obj, errors);
        }

        if (errors.Count > 0)
        {
            throw KubeException.Invalid(requestType, obj.Name(), errors);
        }

        if (Store.Get(type.StorageKey, Store.KeyOf(ns ?? "", obj.Name())) is not null)
        {
            throw KubeException.AlreadyExists(requestType, obj.Name());
        }

        if (dryRun)
        {
            return ToOutput(requestType, obj);
        }

        var stored = Store.Put(type.StorageKey, obj);
        AfterWriteLocked(type, stored);
        return ToOutput(requestType, stored.Parse());
    }

    private static void ReorderMetadata(JsonObject obj)
    {
        // apiVersion, kind, metadata first (cosmetic, as Go's typed encoding prints them).
        var entries = obj.ToList();
        obj.Clear();
        foreach (var key in new[] { "apiVersion", "kind", "metadata" })
        {
            var entry = entries.FirstOrDefault(e => e.Key == key);
            if (entry.Key is not null)
            {
                obj[key] = entry.Value;
            }
        }

        foreach (var (key, value) in entries.Where(e => e.Key is not ("apiVersion" or "kind" or "metadata")))
        {
            obj[key] = value;
        }
    }

    private void AfterWriteLocked(ResourceType type, StoredObject stored)
    {
        if (type.Strategy == Strategy.Crd)
        {
            Registry.SetCrd(stored.Node.Name(), Strategies.TypesOfCrd(stored.Node));
        }
    }

    /// <summary>
    /// PUT (and the write step of PATCH): optimistic concurrency on metadata.resourceVersion, status-subresource split,
    /// generation bump on spec change, no-op detection (an unchanged object is not written and keeps its resourceVersion),
    /// finalizer completion.
    /// </summary>
    public JsonObject UpdateLocked(ResourceType requestType, string? ns, string name, JsonObject body, bool statusWrite, bool isPatch, bool dryRun, string fieldValidation, List<string> warnings)
    {
        var type = StorageType(requestType, Registry);
        var key = Store.KeyOf(ns ?? "", name);
        var current = Store.Get(type.StorageKey, key) ?? throw KubeException.NotFound(requestType, name);
        var incoming = ToStorage(requestType, body);
        var meta = incoming.Meta();
        var bodyName = meta.Str("name");
        if (!string.IsNullOrEmpty(bodyName) && bodyName != name)
        {
            throw KubeException.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
        }

        meta["name"] = name;
        ResolveNamespace(type, ns, incoming);
        HandleUnknownFields(type, incoming, fieldValidation, warnings);

        var old = current.Parse();
        var oldMeta = old.Meta();
        if (meta.Str("uid") is { Length: > 0 } uid && uid != oldMeta.Str("uid"))
        {
            throw KubeException.Conflict(requestType, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {oldMeta.Str("uid")}");
        }

        var rv = meta.Str("resourceVersion");
        if (string.IsNullOrEmpty(rv))
        {
            if (!isPatch && !type.AllowUnconditionalUpdate)
            {
                throw KubeException.Invalid(requestType, name, [FieldError.Invalid("metadata.resourceVersion", JsonValue.Create("0x0"), "must be specified for an update")]);
            }
        }
        else if (rv != oldMeta.Str("resourceVersion"))
        {
            throw KubeException.StaleConflict(requestType, name);
        }

        JsonObject next;
        if (statusWrite)
        {
            next = (JsonObject)old.DeepClone();
            if (incoming["status"] is { } status)
            {
                next["status"] = status.DeepClone();
            }
            else
            {
                next.Remove("status");
            }
        }
        else
        {
            next = incoming;
            if (type.HasStatus)
            {
                if (old["status"] is { } oldStatus)
                {
                    next["status"] = oldStatus.DeepClone();
                }
                else
                {
                    next.Remove("status");
                }
            }

            var nextMeta = next.Meta();
            foreach (var system in new[] { "uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds" })
            {
                if (oldMeta[system] is { } value)
                {
                    nextMeta[system] = value.DeepClone();
                }
                else
                {
                    nextMeta.Remove(system);
                }
            }

            nextMeta.Remove("managedFields");
            nextMeta.Remove("selfLink");
        }

        next.Meta()["resourceVersion"] = oldMeta.Str("resourceVersion");
        Strategies.Normalize(type, next);
        if (type.Strategy == Strategy.Crd && !statusWrite)
        {
            Strategies.SetCrdStatus(next, old, Now);
        }

        if (type.Strategy == Strategy.Crd && next["spec"]?["names"]?.ToJsonString() != old["spec"]?["names"]?.ToJsonString())
        {
            var errs = new List<FieldError>();
            if (next["spec"]?["group"]?.ToJsonString() != old["spec"]?["group"]?.ToJsonString())
            {
                errs.Add(FieldError.Invalid("spec.group", next["spec"]?["group"]?.DeepClone(), "field is immutable"));
            }

            if (errs.Count > 0)
            {
                throw KubeException.Invalid(requestType, name, errs);
            }
        }

        ReorderMetadata(next);
        var errors = new List<FieldError>();
        Validation.ValidateObjectMeta(next, Strategies.NameRule(type), errors);
        Strategies.Validate(type, next, old, errors);
        if (oldMeta["deletionTimestamp"] is not null)
        {
            var oldFinalizers = Finalizers(old);
            var added = Finalizers(next).Where(f => !oldFinalizers.Contains(f)).ToList();
            if (added.Count > 0)
            {
                errors.Add(FieldError.Forbidden("metadata.finalizers", $"no new finalizers can be added if the object is being deleted, found new finalizers []string{{{string.Join(", ", added.Select(Json.Quote))}}}"));
            }
        }

        if (errors.Count > 0)
        {
            throw KubeException.Invalid(requestType, name, errors);
        }

        if (type.TracksGeneration && !JsonNode.DeepEquals(SpecPart(old, type.HasStatus), SpecPart(next, type.HasStatus)))
        {
            next.Meta()["generation"] = (oldMeta["generation"].AsLong() ?? 0) + 1;
        }

        if (JsonNode.DeepEquals(next, old))
        {
            return ToOutput(requestType, old);
        }

        if (dryRun)
        {
            return ToOutput(requestType, next);
        }

        if (next["metadata"]?["deletionTimestamp"] is not null && Finalizers(next).Count == 0)
        {
            var removed = RemoveLocked(type.StorageKey, key, next);
            return ToOutput(requestType, removed);
        }

        var stored = Store.Put(type.StorageKey, next);
        AfterWriteLocked(type, stored);
        FinalizeForegroundOwnersLocked();
        return ToOutput(requestType, stored.Parse());
    }

    private static JsonObject SpecPart(JsonObject obj, bool hasStatus)
    {
        var copy = (JsonObject)obj.DeepClone();
        copy.Remove("metadata");
        copy.Remove("apiVersion");
        copy.Remove("kind");
        if (hasStatus)
        {
            copy.Remove("status");
        }

        return copy;
    }

    private static List<string> Finalizers(JsonObject obj) =>
        (obj["metadata"]?["finalizers"] as JsonArray)?.Select(f => f.AsString()).OfType<string>().ToList() ?? [];

    /// <summary>The object in the request's version, for patching.</summary>
    public JsonObject GetForPatchLocked(ResourceType requestType, string? ns, string name)
    {
        var type = StorageType(requestType, Registry);
        var current = Store.Get(type.StorageKey, Store.KeyOf(ns ?? "", name)) ?? throw KubeException.NotFound(requestType, name);
        return ToOutput(requestType, current.Parse());
    }

    /// <summary>
    /// DELETE: preconditions; finalizers keep the object (deletionTimestamp set) until they are removed; propagation
    /// Background (default: dependents are deleted right after the owner), Foreground (owner waits with the
    /// foregroundDeletion finalizer until dependents are gone), Orphan (dependents lose the ownerReference).
    /// Returns the object's last state and whether it is gone.
    /// </summary>
    public (JsonObject Object, bool Deleted) DeleteLocked(ResourceType requestType, string? ns, string name, DeleteOptions options)
    {
        var type = StorageType(requestType, Registry);
        var key = Store.KeyOf(ns ?? "", name);
        var current = Store.Get(type.StorageKey, key) ?? throw KubeException.NotFound(requestType, name);
        var obj = current.Parse();
        var meta = obj.Meta();
        if (options.PreconditionUid is { Length: > 0 } uid && uid != meta.Str("uid"))
        {
            throw KubeException.Conflict(requestType, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.Str("uid")}");
        }

        if (options.PreconditionRv is { Length: > 0 } rv && rv != meta.Str("resourceVersion"))
        {
            throw KubeException.Conflict(requestType, name, $"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {meta.Str("resourceVersion")}");
        }

        if (type.Strategy == Strategy.Namespace && ProtectedNamespaces.Contains(name))
        {
            throw new KubeException(403, "Forbidden", $"namespaces \"{name}\" is forbidden: this namespace may not be deleted") { DetailName = name, DetailKind = "namespaces" };
        }

        if (options.DryRun)
        {
            return (ToOutput(requestType, obj), false);
        }

        var policy = options.PropagationPolicy ?? "Background";
        if (policy is not ("Background" or "Foreground" or "Orphan"))
        {
            throw KubeException.Invalid(requestType, name, [FieldError.NotSupported("propagationPolicy", JsonValue.Create(policy), ["\"Foreground\"", "\"Background\"", "\"Orphan\""])]);
        }

        var ownerUid = meta.Str("uid")!;
        if (policy == "Orphan")
        {
            OrphanDependentsLocked(ownerUid);
        }

        var finalizers = Finalizers(obj);
        var hasDependents = policy == "Foreground" && DependentsLocked(ownerUid).Any();
        if (hasDependents && !finalizers.Contains("foregroundDeletion"))
        {
            finalizers.Add("foregroundDeletion");
        }

        if (finalizers.Count > 0)
        {
            if (meta["deletionTimestamp"] is null || hasDependents)
            {
                meta["deletionTimestamp"] ??= Json.Time(Now);
                meta["deletionGracePeriodSeconds"] ??= 0;
                meta["finalizers"] = new JsonArray([.. finalizers.Select(f => (JsonNode)JsonValue.Create(f))]);
                if (type.Strategy == Strategy.Namespace)
                {
                    obj.Obj("status")["phase"] = "Terminating";
                }

                var stored = Store.Put(type.StorageKey, obj);
                obj = stored.Parse();
            }

            if (hasDependents)
            {
                foreach (var (depKey, dep) in DependentsLocked(ownerUid).ToList())
                {
                    if (Store.Get(depKey, dep.Key) is not null)
                    {
                        DeleteDependentLocked(depKey, dep, ownerUid, "Foreground");
                    }
                }

                FinalizeForegroundOwnersLocked();
                if (Store.Get(type.StorageKey, key) is null)
                {
                    return (ToOutput(requestType, obj), true);
                }

                obj = Store.Get(type.StorageKey, key)!.Parse();
            }

            return (ToOutput(requestType, obj), false);
        }

        if (type.Strategy == Strategy.Namespace)
        {
            obj.Obj("status")["phase"] = "Terminating";
            meta["deletionTimestamp"] = Json.Time(Now);
        }

        var removed = RemoveLocked(type.StorageKey, key);
        if (type.Strategy == Strategy.Namespace)
        {
            removed = obj;
        }

        return (ToOutput(requestType, removed), true);
    }

    /// <summary>Removes an object for good and runs the cascading effects (GC of dependents, namespace content, CRD instances).</summary>
    private JsonObject RemoveLocked(string storageKey, string key, JsonObject? finalState = null)
    {
        var current = Store.Get(storageKey, key)!;
        var uid = current.Node["metadata"].Str("uid") ?? "";
        var isCrd = storageKey == "apiextensions.k8s.io/customresourcedefinitions";
        var isNamespace = storageKey == "namespaces";
        JsonObject? crdTypesOf = isCrd ? current.Parse() : null;
        var removed = Store.Remove(storageKey, key, finalState);
        if (isCrd)
        {
            var crdName = crdTypesOf!.Name();
            var instancesKey = Registry.OfCrd(crdName).FirstOrDefault()?.StorageKey;
            Registry.RemoveCrd(crdName);
            if (instancesKey is not null)
            {
                foreach (var instance in Store.List(instancesKey))
                {
                    RemoveLocked(instancesKey, instance.Key);
                }

                Store.CloseWatches(instancesKey);
            }
        }

        if (isNamespace)
        {
            var ns = key.TrimStart('/');
            foreach (var (sk, o) in Store.Everything().Where(e => e.Object.Node.Namespace() == ns).ToList())
            {
                if (Store.Get(sk, o.Key) is not null)
                {
                    RemoveLocked(sk, o.Key);
                }
            }
        }

        foreach (var (depKey, dep) in DependentsLocked(uid).ToList())
        {
            if (Store.Get(depKey, dep.Key) is not null)
            {
                DeleteDependentLocked(depKey, dep, uid, "Background");
            }
        }

        FinalizeForegroundOwnersLocked();
        return removed;
    }

    private IEnumerable<(string StorageKey, StoredObject Object)> DependentsLocked(string ownerUid) =>
        Store.Everything().Where(e => e.Object.Node["metadata"]?["ownerReferences"] is JsonArray refs && refs.Any(r => r.Str("uid") == ownerUid));

    private bool UidExistsLocked(string uid) => Store.Everything().Any(e => e.Object.Node["metadata"].Str("uid") == uid);

    /// <summary>The garbage collector's action on one dependent of a deleted owner.</summary>
    private void DeleteDependentLocked(string storageKey, StoredObject dependent, string ownerUid, string policy)
    {
        var obj = dependent.Parse();
        var refs = (JsonArray)obj["metadata"]!["ownerReferences"]!;
        var otherOwnersAlive = refs.Any(r => r.Str("uid") != ownerUid && UidExistsLocked(r.Str("uid") ?? ""));
        if (otherOwnersAlive)
        {
            StripOwnerLocked(storageKey, obj, ownerUid);
            return;
        }

        var type = Registry.ForStorage(storageKey);
        if (type is null)
        {
            RemoveLocked(storageKey, dependent.Key);
            return;
        }

        var ns = type.Namespaced ? obj.Namespace() : null;
        DeleteLocked(type, ns, obj.Name(), new DeleteOptions(policy, null, null, false));
    }

    private void StripOwnerLocked(string storageKey, JsonObject obj, string ownerUid)
    {
        var refs = (JsonArray)obj["metadata"]!["ownerReferences"]!;
        var kept = refs.Where(r => r.Str("uid") != ownerUid).Select(r => r?.DeepClone()).ToArray();
        if (kept.Length == 0)
        {
            obj.Meta().Remove("ownerReferences");
        }
        else
        {
            obj.Meta()["ownerReferences"] = new JsonArray(kept);
        }

        Store.Put(storageKey, obj);
    }

    private void OrphanDependentsLocked(string ownerUid)
    {
        foreach (var (key, dep) in DependentsLocked(ownerUid).ToList())
        {
            StripOwnerLocked(key, dep.Parse(), ownerUid);
        }
    }

    /// <summary>Owners waiting in foreground deletion lose the foregroundDeletion finalizer once no dependent blocks them.</summary>
    private void FinalizeForegroundOwnersLocked()
    {
        bool changed;
        do
        {
            changed = false;
            foreach (var (storageKey, owner) in Store.Everything().Where(e => e.Object.Node["metadata"]?["deletionTimestamp"] is not null).ToList())
            {
                var obj = owner.Parse();
                var finalizers = Finalizers(obj);
                if (!finalizers.Contains("foregroundDeletion"))
                {
                    continue;
                }

                var uid = obj["metadata"].Str("uid") ?? "";
                var blocked = DependentsLocked(uid).Any(d => ((JsonArray)d.Object.Node["metadata"]!["ownerReferences"]!)
                    .Any(r => r.Str("uid") == uid && r?["blockOwnerDeletion"].AsBool() == true));
                if (blocked)
                {
                    continue;
                }

                finalizers.Remove("foregroundDeletion");
                if (finalizers.Count == 0)
                {
                    obj.Meta().Remove("finalizers");
                    RemoveLocked(storageKey, owner.Key, obj);
                }
                else
                {
                    obj.Meta()["finalizers"] = new JsonArray([.. finalizers.Select(f => (JsonNode)JsonValue.Create(f))]);
                    Store.Put(storageKey, obj);
                }

                changed = true;
                break;
            }
        }
        while (changed);
    }

    public static string FormatRv(long rv) => rv.ToString(CultureInfo.InvariantCulture);
}
