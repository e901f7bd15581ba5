using System.Text;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>
/// Per-type behaviour (the apiserver's REST strategies): what a create or update may set, defaults, validation,
/// the known fields of built-in types (unknown ones are dropped as the typed decoder does), and the events.k8s.io/v1 ⇄
/// core/v1 Event conversion (both served from one storage, as in a real apiserver).
/// </summary>
internal static class Strategies
{
    private static readonly HashSet<string> MetaFields =
    [
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
    ];

    private static readonly Dictionary<Strategy, string[]> TopLevelFields = new()
    {
        [Strategy.Secret] = ["apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"],
        [Strategy.Lease] = ["apiVersion", "kind", "metadata", "spec"],
        [Strategy.Namespace] = ["apiVersion", "kind", "metadata", "spec", "status"],
        [Strategy.CoreEvent] =
        [
            "apiVersion", "kind", "metadata", "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp",
            "count", "type", "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance",
        ],
        [Strategy.EventsV1Event] =
        [
            "apiVersion", "kind", "metadata", "eventTime", "series", "reportingController", "reportingInstance", "action", "reason",
            "regarding", "related", "note", "type", "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount",
        ],
        [Strategy.Crd] = ["apiVersion", "kind", "metadata", "spec", "status"],
    };

    private static readonly string[] LeaseSpecFields =
        ["holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions", "strategy", "preferredHolder"];

    /// <summary>Drops fields a typed decoder would not keep; returns their paths (for fieldValidation=Warn/Strict).</summary>
    public static List<string> PruneUnknown(ResourceType type, JsonObject obj)
    {
        var unknown = new List<string>();
        if (obj["metadata"] is JsonObject meta)
        {
            foreach (var key in meta.Select(kv => kv.Key).Where(k => !MetaFields.Contains(k)).ToList())
            {
                meta.Remove(key);
                unknown.Add("metadata." + key);
            }
        }

        if (TopLevelFields.TryGetValue(type.Strategy, out var fields))
        {
            foreach (var key in obj.Select(kv => kv.Key).Where(k => !fields.Contains(k)).ToList())
            {
                obj.Remove(key);
                unknown.Add(key);
            }
        }

        if (type.Strategy == Strategy.Lease && obj["spec"] is JsonObject spec)
        {
            foreach (var key in spec.Select(kv => kv.Key).Where(k => !LeaseSpecFields.Contains(k)).ToList())
            {
                spec.Remove(key);
                unknown.Add("spec." + key);
            }
        }

        if (type.Strategy == Strategy.Custom && type.Schema is { } schema)
        {
            unknown.AddRange(StructuralSchema.Prune(obj, schema));
        }

        return unknown;
    }

    /// <summary>Name rule of a type (namespaces: DNS label; events: path segment; CRDs: plural.group; others: DNS subdomain).</summary>
    public static Func<string, string?> NameRule(ResourceType type) => type.Strategy switch
    {
        Strategy.Namespace => Validation.Dns1123LabelError,
        Strategy.CoreEvent or Strategy.EventsV1Event => Validation.PathSegmentError,
        _ => Validation.Dns1123SubdomainError,
    };

    /// <summary>Defaults and normalisation applied on every write (create and update), after unknown fields are dropped.</summary>
    public static void Normalize(ResourceType type, JsonObject obj)
    {
        switch (type.Strategy)
        {
            case Strategy.Custom when type.Schema is { } schema:
                StructuralSchema.Default(obj, schema);
                break;
            case Strategy.Secret:
                NormalizeSecret(obj);
                break;
            case Strategy.Lease when obj["spec"] is JsonObject spec:
                NormalizeTime(spec, "acquireTime", micro: true);
                NormalizeTime(spec, "renewTime", micro: true);
                break;
            case Strategy.CoreEvent:
                NormalizeCoreEvent(obj);
                break;
            case Strategy.Namespace:
                {
                    obj.Meta().Obj("labels")["kubernetes.io/metadata.name"] = obj.Name();
                    var spec = obj.Obj("spec");
                    spec["finalizers"] ??= new JsonArray("kubernetes");
                    break;
                }

            case Strategy.Crd:
                NormalizeCrd(obj);
                break;
        }
    }

    private static void NormalizeSecret(JsonObject obj)
    {
        if (obj["type"].AsString() is null or "")
        {
            obj["type"] = "Opaque";
        }

        if (obj["data"] is JsonObject data)
        {
            foreach (var (k, v) in data.ToList())
            {
                var s = v.AsString();
                if (s is null || !IsBase64(s))
                {
                    throw KubeException.BadRequest($"Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 (data.{k})");
                }
            }
        }

        if (obj["stringData"] is JsonObject stringData)
        {
            var target = obj.Obj("data");
            foreach (var (k, v) in stringData)
            {
                target[k] = Convert.ToBase64String(Encoding.UTF8.GetBytes(v.AsString() ?? ""));
            }

            obj.Remove("stringData");
        }
    }

    private static bool IsBase64(string s) => s.Length % 4 == 0 && Convert.TryFromBase64String(s, new byte[s.Length], out _);

    private static void NormalizeTime(JsonObject o, string field, bool micro)
    {
        if (o[field] is null)
        {
            return;
        }

        var s = o[field].AsString();
        if (!Json.TryParseRfc3339(s, out var t))
        {
            throw KubeException.BadRequest($"parsing time {Json.Quote(s ?? o[field]!.ToJsonString())} as \"2006-01-02T15:04:05Z07:00\": cannot parse ({field})");
        }

        o[field] = micro ? Json.MicroTime(t) : Json.Time(t);
    }

    private static void NormalizeCoreEvent(JsonObject obj)
    {
        obj["involvedObject"] ??= new JsonObject();
        obj["source"] ??= new JsonObject();
        NormalizeTime(obj, "firstTimestamp", micro: false);
        NormalizeTime(obj, "lastTimestamp", micro: false);
        NormalizeTime(obj, "eventTime", micro: true);
        if (obj["series"] is JsonObject series)
        {
            NormalizeTime(series, "lastObservedTime", micro: true);
        }

        if (!obj.ContainsKey("firstTimestamp"))
        {
            obj["firstTimestamp"] = null;
        }

        if (!obj.ContainsKey("lastTimestamp"))
        {
            obj["lastTimestamp"] = null;
        }

        if (!obj.ContainsKey("eventTime"))
        {
            obj["eventTime"] = null;
        }

        obj["reportingComponent"] ??= "";
        obj["reportingInstance"] ??= "";
    }

    private static void NormalizeCrd(JsonObject obj)
    {
        var spec = obj.Obj("spec");
        spec["conversion"] ??= new JsonObject { ["strategy"] = "None" };
        if (spec["names"] is JsonObject names)
        {
            var kind = names["kind"].AsString() ?? "";
            names["singular"] ??= kind.ToLowerInvariant();
            names["listKind"] ??= kind + "List";
        }

        if (spec["versions"] is JsonArray versions)
        {
            foreach (var v in versions.OfType<JsonObject>())
            {
                if (v["additionalPrinterColumns"] is not JsonArray { Count: > 0 })
                {
                    v.Remove("additionalPrinterColumns");
                }
            }
        }
    }

    /// <summary>Type-specific validation (ObjectMeta is validated separately).</summary>
    public static void Validate(ResourceType type, JsonObject obj, JsonObject? old, List<FieldError> errors)
    {
        switch (type.Strategy)
        {
            case Strategy.Custom when type.Schema is { } schema:
                StructuralSchema.ValidateRoot(obj, schema, errors);
                break;
            case Strategy.Secret:
                if (obj["data"] is JsonObject data)
                {
                    foreach (var (k, _) in data)
                    {
                        if (k.Length == 0 || k.Length > 253 || !k.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                        {
                            errors.Add(FieldError.Invalid("data", JsonValue.Create(k), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
                        }
                    }
                }

                if (old is not null)
                {
                    if (old["type"].AsString() != obj["type"].AsString())
                    {
                        errors.Add(FieldError.Invalid("type", obj["type"]?.DeepClone(), "field is immutable"));
                    }

                    if (old["immutable"].AsBool() == true)
                    {
                        if (!JsonNode.DeepEquals(old["data"], obj["data"]))
                        {
                            errors.Add(FieldError.Forbidden("data", "field is immutable when `immutable` is set"));
                        }

                        if (obj["immutable"].AsBool() != true)
                        {
                            errors.Add(FieldError.Forbidden("immutable", "field is immutable when `immutable` is set"));
                        }
                    }
                }

                break;
            case Strategy.Lease:
                if (obj["spec"]?["leaseDurationSeconds"] is { } duration && !(duration.AsLong() > 0))
                {
                    errors.Add(FieldError.Invalid("spec.leaseDurationSeconds", duration.DeepClone(), "must be greater than 0"));
                }

                if (obj["spec"]?["leaseTransitions"] is { } transitions && !(transitions.AsLong() >= 0))
                {
                    errors.Add(FieldError.Invalid("spec.leaseTransitions", transitions.DeepClone(), "must be greater than or equal to 0"));
                }

                break;
            case Strategy.CoreEvent:
                ValidateEvent(obj, errors, strict: false);
                break;
            case Strategy.Crd:
                ValidateCrd(obj, errors);
                break;
        }
    }

    private static void ValidateEvent(JsonObject core, List<FieldError> errors, bool strict)
    {
        var ns = core.Namespace();
        var involvedNs = core["involvedObject"].Str("namespace");
        if (!string.IsNullOrEmpty(involvedNs) && involvedNs != ns)
        {
            errors.Add(FieldError.Invalid(strict ? "regarding.namespace" : "involvedObject.namespace", JsonValue.Create(involvedNs), "does not match event.namespace"));
        }

        if (core["type"].AsString() is { } type && type is not ("Normal" or "Warning") && (strict || type.Length > 0))
        {
            errors.Add(FieldError.NotSupported("type", JsonValue.Create(type), ["\"Normal\"", "\"Warning\""]));
        }

        if (!strict)
        {
            return;
        }

        if (core["eventTime"] is null)
        {
            errors.Add(FieldError.Required("eventTime"));
        }

        if (string.IsNullOrEmpty(core["type"].AsString()))
        {
            errors.Add(FieldError.Required("type"));
        }

        foreach (var (field, coreField) in new[] { ("reportingController", "reportingComponent"), ("reportingInstance", "reportingInstance"), ("action", "action"), ("reason", "reason") })
        {
            var value = core[coreField].AsString() ?? "";
            if (value.Length == 0)
            {
                errors.Add(FieldError.Required(field));
            }
            else if (value.Length > 128)
            {
                errors.Add(FieldError.TooLong(field, 128));
            }
        }

        if ((core["message"].AsString() ?? "").Length > 1024)
        {
            errors.Add(FieldError.TooLong("note", 1024));
        }
    }

    /// <summary>events.k8s.io/v1 create rules (stricter than core/v1), checked on the converted core object.</summary>
    public static void ValidateEventsV1Create(JsonObject core, List<FieldError> errors) => ValidateEvent(core, errors, strict: true);

    private static void ValidateCrd(JsonObject crd, List<FieldError> errors)
    {
        var spec = crd["spec"] as JsonObject;
        var group = spec.Str("group") ?? "";
        var names = spec?["names"] as JsonObject;
        var plural = names.Str("plural") ?? "";
        var kind = names.Str("kind") ?? "";
        if (group.Length == 0)
        {
            errors.Add(FieldError.Required("spec.group"));
        }
        else if (!group.Contains('.'))
        {
            errors.Add(FieldError.Invalid("spec.group", JsonValue.Create(group), "should be a domain with at least one dot"));
        }

        if (plural.Length == 0)
        {
            errors.Add(FieldError.Required("spec.names.plural"));
        }

        if (kind.Length == 0)
        {
            errors.Add(FieldError.Required("spec.names.kind"));
        }

        if (crd.Name() != $"{plural}.{group}")
        {
            errors.Add(FieldError.Invalid("metadata.name", JsonValue.Create(crd.Name()), $"must be spec.names.plural+\".\"+spec.group"));
        }

        var scope = spec.Str("scope");
        if (scope is not ("Namespaced" or "Cluster"))
        {
            errors.Add(FieldError.NotSupported("spec.scope", JsonValue.Create(scope ?? ""), ["\"Cluster\"", "\"Namespaced\""]));
        }

        if (spec?["versions"] is not JsonArray { Count: > 0 } versions)
        {
            errors.Add(FieldError.Invalid("spec.versions", new JsonArray(), "must have exactly one version marked as storage version"));
            return;
        }

        var storage = versions.Count(v => v?["storage"].AsBool() == true);
        if (storage != 1)
        {
            errors.Add(FieldError.Invalid("spec.versions", JsonValue.Create(storage), "must have exactly one version marked as storage version"));
        }

        for (var i = 0; i < versions.Count; i++)
        {
            var v = versions[i] as JsonObject;
            if (string.IsNullOrEmpty(v.Str("name")))
            {
                errors.Add(FieldError.Required($"spec.versions[{i}].name"));
            }

            if (v?["schema"]?["openAPIV3Schema"] is not JsonObject schema)
            {
                errors.Add(FieldError.Required($"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"));
            }
            else if (v["selectableFields"] is JsonArray selectable)
            {
                ValidateSelectableFields(selectable, schema, $"spec.versions[{i}].selectableFields", errors);
            }
        }
    }

    /// <summary>
    /// CRD <c>selectableFields</c> (apiextensions.k8s.io/v1, Kubernetes 1.31+): at most 8, no duplicates, each a simple
    /// JSON path (<c>.a.b</c>) to a field of type string, integer or boolean outside metadata and outside arrays.
    /// </summary>
    private static void ValidateSelectableFields(JsonArray fields, JsonObject schema, string path, List<FieldError> errors)
    {
        if (fields.Count > 8)
        {
            errors.Add(FieldError.TooMany(path, fields.Count, 8));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var j = 0; j < fields.Count; j++)
        {
            var fieldPath = $"{path}[{j}].jsonPath";
            var jsonPath = fields[j]?["jsonPath"].AsString() ?? "";
            if (jsonPath.Length == 0)
            {
                errors.Add(FieldError.Required(fieldPath));
                continue;
            }

            var value = JsonValue.Create(jsonPath);
            var parts = jsonPath.Split('.');
            if (parts[0].Length != 0 || parts.Skip(1).Any(p => p.Length == 0 || p.Any(c => c is '[' or ']' or '*' or '@' or '$' or ' ')))
            {
                errors.Add(FieldError.Invalid(fieldPath, value, "must be a simple json path"));
                continue;
            }

            if (!seen.Add(jsonPath))
            {
                errors.Add(FieldError.Duplicate(fieldPath, value));
                continue;
            }

            if (parts[1] == "metadata")
            {
                errors.Add(FieldError.Forbidden(fieldPath, "must not point to metadata"));
                continue;
            }

            JsonObject? node = schema;
            foreach (var part in parts.Skip(1))
            {
                node = node?["properties"]?[part] as JsonObject;
            }

            if (node is null)
            {
                errors.Add(FieldError.Invalid(fieldPath, value, "is an invalid path: the schema does not declare this field"));
            }
            else if (node.Str("type") is not ("string" or "integer" or "boolean"))
            {
                errors.Add(FieldError.Invalid(fieldPath, value, "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."));
            }
        }
    }

    /// <summary>The served resource types of a CRD (one per served version).</summary>
    public static IReadOnlyList<ResourceType> TypesOfCrd(JsonObject crd)
    {
        var spec = (JsonObject)crd["spec"]!;
        var names = (JsonObject)spec["names"]!;
        var group = spec.Str("group")!;
        var plural = names.Str("plural")!;
        var kind = names.Str("kind")!;
        var result = new List<ResourceType>();
        foreach (var v in ((JsonArray)spec["versions"]!).OfType<JsonObject>())
        {
            if (v["served"].AsBool() != true)
            {
                continue;
            }

            var columns = new List<PrinterColumn>();
            if (v["additionalPrinterColumns"] is JsonArray printerColumns)
            {
                foreach (var c in printerColumns.OfType<JsonObject>())
                {
                    columns.Add(new PrinterColumn(
                        c.Str("name") ?? "", c.Str("type") ?? "string", c.Str("format") ?? "",
                        c.Str("description") ?? $"Custom resource definition column (in JSONPath format): {c.Str("jsonPath")}",
                        (int)(c["priority"].AsLong() ?? 0), c.Str("jsonPath") ?? ""));
                }
            }
            else
            {
                columns.Add(new PrinterColumn("Age", "date", "", "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp", 0, ".metadata.creationTimestamp"));
            }

            var selectable = new Dictionary<string, string>();
            if (v["selectableFields"] is JsonArray fields)
            {
                foreach (var f in fields.OfType<JsonObject>())
                {
                    var path = f.Str("jsonPath") ?? "";
                    selectable[path.TrimStart('.')] = path;
                }
            }

            result.Add(new ResourceType
            {
                Group = group,
                Version = v.Str("name")!,
                Plural = plural,
                Singular = names.Str("singular") ?? kind.ToLowerInvariant(),
                Kind = kind,
                Namespaced = spec.Str("scope") == "Namespaced",
                Strategy = Strategy.Custom,
                StorageKey = $"{group}/{plural}",
                ShortNames = (names["shortNames"] as JsonArray)?.Select(s => s.AsString()).OfType<string>().ToList() ?? [],
                Categories = (names["categories"] as JsonArray)?.Select(s => s.AsString()).OfType<string>().ToList() ?? [],
                HasStatus = v["subresources"]?["status"] is JsonObject,
                TracksGeneration = true,
                AllowUnconditionalUpdate = false,
                Schema = v["schema"]?["openAPIV3Schema"]?.DeepClone() as JsonObject,
                Columns = columns,
                SelectableFields = selectable,
                CrdName = crd.Name(),
            });
        }

        return result;
    }

    /// <summary>Sets the CRD status the apiextensions controllers would (names accepted, established, stored versions).</summary>
    public static void SetCrdStatus(JsonObject crd, JsonObject? old, DateTimeOffset now)
    {
        var spec = (JsonObject)crd["spec"]!;
        var status = new JsonObject
        {
            ["acceptedNames"] = spec["names"]!.DeepClone(),
        };
        var oldConditions = old?["status"]?["conditions"] as JsonArray;
        string TransitionTime(string type) =>
            oldConditions?.OfType<JsonObject>().FirstOrDefault(c => c.Str("type") == type && c.Str("status") == "True").Str("lastTransitionTime") ?? Json.Time(now);
        status["conditions"] = new JsonArray(
            new JsonObject
            {
                ["type"] = "NamesAccepted", ["status"] = "True", ["lastTransitionTime"] = TransitionTime("NamesAccepted"),
                ["reason"] = "NoConflicts", ["message"] = "no conflicts found",
            },
            new JsonObject
            {
                ["type"] = "Established", ["status"] = "True", ["lastTransitionTime"] = TransitionTime("Established"),
                ["reason"] = "InitialNamesAccepted", ["message"] = "the initial names have been accepted",
            });
        var stored = (old?["status"]?["storedVersions"] as JsonArray)?.Select(s => s.AsString()).OfType<string>().ToList() ?? [];
        var storage = (spec["versions"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(v => v["storage"].AsBool() == true).Str("name");
        if (storage is not null && !stored.Contains(storage))
        {
            stored.Add(storage);
        }

        status["storedVersions"] = new JsonArray([.. stored.Select(s => (JsonNode)JsonValue.Create(s))]);
        crd["status"] = status;
    }

    /// <summary>events.k8s.io/v1 Event → stored core/v1 Event (Convert_v1_Event_To_core_Event).</summary>
    public static JsonObject EventsV1ToCore(JsonObject v1)
    {
        var core = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Event",
            ["metadata"] = v1["metadata"]?.DeepClone(),
            ["involvedObject"] = v1["regarding"]?.DeepClone() ?? new JsonObject(),
        };
        Copy(v1, "reason", core, "reason");
        Copy(v1, "note", core, "message");
        Copy(v1, "deprecatedSource", core, "source");
        Copy(v1, "deprecatedFirstTimestamp", core, "firstTimestamp");
        Copy(v1, "deprecatedLastTimestamp", core, "lastTimestamp");
        Copy(v1, "deprecatedCount", core, "count");
        Copy(v1, "type", core, "type");
        Copy(v1, "eventTime", core, "eventTime");
        Copy(v1, "series", core, "series");
        Copy(v1, "action", core, "action");
        Copy(v1, "related", core, "related");
        Copy(v1, "reportingController", core, "reportingComponent");
        Copy(v1, "reportingInstance", core, "reportingInstance");
        return core;
    }

    /// <summary>Stored core/v1 Event → events.k8s.io/v1 Event (Convert_core_Event_To_v1_Event).</summary>
    public static JsonObject CoreToEventsV1(JsonObject core)
    {
        var v1 = new JsonObject
        {
            ["apiVersion"] = "events.k8s.io/v1",
            ["kind"] = "Event",
            ["metadata"] = core["metadata"]?.DeepClone(),
            ["eventTime"] = core["eventTime"]?.DeepClone(),
        };
        Copy(core, "series", v1, "series");
        Copy(core, "reportingComponent", v1, "reportingController", omitEmpty: true);
        Copy(core, "reportingInstance", v1, "reportingInstance", omitEmpty: true);
        Copy(core, "action", v1, "action", omitEmpty: true);
        Copy(core, "reason", v1, "reason", omitEmpty: true);
        v1["regarding"] = core["involvedObject"]?.DeepClone() ?? new JsonObject();
        Copy(core, "related", v1, "related");
        Copy(core, "message", v1, "note", omitEmpty: true);
        Copy(core, "type", v1, "type", omitEmpty: true);
        if (core["source"] is JsonObject { Count: > 0 } source)
        {
            v1["deprecatedSource"] = source.DeepClone();
        }

        Copy(core, "firstTimestamp", v1, "deprecatedFirstTimestamp", omitEmpty: true);
        Copy(core, "lastTimestamp", v1, "deprecatedLastTimestamp", omitEmpty: true);
        Copy(core, "count", v1, "deprecatedCount", omitEmpty: true);
        return v1;
    }

    private static void Copy(JsonObject from, string fromKey, JsonObject to, string toKey, bool omitEmpty = false)
    {
        if (from.TryGetPropertyValue(fromKey, out var value))
        {
            if (omitEmpty && (value is null || value.AsString() == "" || value.AsLong() == 0))
            {
                return;
            }

            to[toKey] = value?.DeepClone();
        }
    }

    /// <summary>Field-selector labels a type supports (besides metadata.name / metadata.namespace).</summary>
    public static string? FieldValue(ResourceType type, JsonObject obj, string field)
    {
        switch (field)
        {
            case "metadata.name":
                return obj.Name();
            case "metadata.namespace":
                return obj.Namespace();
        }

        switch (type.Strategy)
        {
            case Strategy.CoreEvent or Strategy.EventsV1Event:
                {
                    // Objects are passed in stored (core/v1) form; events.k8s.io field names map onto it.
                    var mapped = field switch
                    {
                        _ when field.StartsWith("regarding.", StringComparison.Ordinal) => "involvedObject." + field["regarding.".Length..],
                        "reportingController" => "reportingComponent",
                        "deprecatedSource" => "source",
                        _ => field,
                    };
                    return mapped switch
                    {
                        "involvedObject.kind" or "involvedObject.namespace" or "involvedObject.name" or "involvedObject.uid" or
                        "involvedObject.apiVersion" or "involvedObject.resourceVersion" or "involvedObject.fieldPath" =>
                            obj["involvedObject"].Str(mapped["involvedObject.".Length..]) ?? "",
                        "reason" or "type" or "reportingComponent" => obj[mapped].AsString() ?? "",
                        "source" => obj["source"].Str("component") ?? "",
                        _ => throw FieldNotSupported(field),
                    };
                }

            case Strategy.Secret when field == "type":
                return obj["type"].AsString() ?? "";
            case Strategy.Namespace when field == "status.phase":
                return obj["status"].Str("phase") ?? "";
            case Strategy.Custom when type.SelectableFields.TryGetValue(field, out var path):
                return Json.PrintForColumn(obj.At(path));
            default:
                throw FieldNotSupported(field);
        }
    }

    private static KubeException FieldNotSupported(string field) => KubeException.BadRequest($"field label not supported: {field}");
}
