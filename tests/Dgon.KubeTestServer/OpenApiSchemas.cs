using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>
/// The <c>components.schemas</c> of the OpenAPI v3 documents, built as kube-apiserver builds them: per custom resource
/// version the kind (its CRD's openAPIV3Schema, with the standard apiVersion/kind descriptions and metadata as a
/// reference to ObjectMeta) and its list kind, named by the reversed group (<c>io.dgon.v1alpha1.DgonNode</c>); plus the
/// referenced meta/v1 schemas (ObjectMeta, ListMeta, OwnerReference, ManagedFieldsEntry, Time, FieldsV1), abridged to
/// their fields and one-line descriptions. What <c>kubectl explain</c> reads (source: apiextensions-apiserver
/// pkg/controller/openapi/builder).
/// </summary>
internal static class OpenApiSchemas
{
    private const string Conventions = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md";
    private const string Meta = "io.k8s.apimachinery.pkg.apis.meta.v1.";

    /// <summary>Schema name of a kind: reversed group, version, kind (<c>io.dgon.v1alpha1.DgonNode</c>).</summary>
    public static string Name(string group, string version, string kind) =>
        string.Join('.', group.Split('.').Reverse()) + "." + version + "." + kind;

    /// <summary>Adds the kind and list-kind schemas of a custom resource version and the meta/v1 schemas they reference.</summary>
    public static void AddCustomResource(JsonObject schemas, ResourceType t)
    {
        var name = Name(t.Group, t.Version, t.Kind);
        var kind = t.Schema?.DeepClone() as JsonObject ?? new JsonObject { ["type"] = "object" };
        var properties = kind["properties"] as JsonObject ?? [];
        kind.Remove("properties");
        var ordered = new JsonObject
        {
            ["apiVersion"] = ApiVersionProperty(),
            ["kind"] = KindProperty(),
            ["metadata"] = Ref("ObjectMeta", $"Standard object's metadata. More info: {Conventions}#metadata"),
        };
        foreach (var (key, value) in properties.ToList())
        {
            if (key is not ("apiVersion" or "kind" or "metadata"))
            {
                properties.Remove(key);
                ordered[key] = value;
            }
        }

        kind["properties"] = ordered;
        kind["x-kubernetes-group-version-kind"] = Gvk(t.Group, t.Version, t.Kind);
        schemas[name] = kind;
        schemas[name + "List"] = new JsonObject
        {
            ["description"] = $"{t.Kind}List is a list of {t.Kind}",
            ["type"] = "object",
            ["required"] = new JsonArray("items"),
            ["properties"] = new JsonObject
            {
                ["apiVersion"] = ApiVersionProperty(),
                ["items"] = new JsonObject
                {
                    ["description"] = $"List of {t.Plural}. More info: {Conventions}",
                    ["type"] = "array",
                    ["items"] = new JsonObject { ["allOf"] = new JsonArray(new JsonObject { ["$ref"] = "#/components/schemas/" + name }) },
                },
                ["kind"] = KindProperty(),
                ["metadata"] = Ref("ListMeta", $"Standard list metadata. More info: {Conventions}#types-kinds"),
            },
            ["x-kubernetes-group-version-kind"] = Gvk(t.Group, t.Version, t.ListKind),
        };
        AddMeta(schemas);
    }

    /// <summary>Adds the meta/v1 schemas every kind references (idempotent).</summary>
    public static void AddMeta(JsonObject schemas)
    {
        if (schemas.ContainsKey(Meta + "ObjectMeta"))
        {
            return;
        }

        schemas[Meta + "ObjectMeta"] = Object(
            "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
            ("annotations", StringMap("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata.")),
            ("creationTimestamp", Ref("Time", "CreationTimestamp is a timestamp representing the server time when this object was created. Populated by the system. Read-only.")),
            ("deletionGracePeriodSeconds", Scalar("integer", "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Read-only.", "int64")),
            ("deletionTimestamp", Ref("Time", "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. Populated by the system when a graceful deletion is requested. Read-only.")),
            ("finalizers", new JsonObject
            {
                ["description"] = "Must be empty before the object is deleted from the registry.",
                ["type"] = "array",
                ["items"] = new JsonObject { ["type"] = "string", ["default"] = "" },
                ["x-kubernetes-list-type"] = "set",
                ["x-kubernetes-patch-strategy"] = "merge",
            }),
            ("generateName", Scalar("string", "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided.")),
            ("generation", Scalar("integer", "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.", "int64")),
            ("labels", StringMap("Map of string keys and values that can be used to organize and categorize (scope and select) objects.")),
            ("managedFields", Array("ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.", "ManagedFieldsEntry")),
            ("name", Scalar("string", "Name must be unique within a namespace. Cannot be updated.")),
            ("namespace", Scalar("string", "Namespace defines the space within which each name must be unique. Cannot be updated.")),
            ("ownerReferences", Array("List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected.", "OwnerReference")),
            ("resourceVersion", Scalar("string", "An opaque value that represents the internal version of this object, used for optimistic concurrency and watch. Read-only.")),
            ("selfLink", Scalar("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system.")),
            ("uid", Scalar("string", "UID is the unique in time and space value for this object. Populated by the system. Read-only.")));
        schemas[Meta + "ListMeta"] = Object(
            "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
            ("continue", Scalar("string", "continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available.")),
            ("remainingItemCount", Scalar("integer", "remainingItemCount is the number of subsequent items in the list which are not included in this list response.", "int64")),
            ("resourceVersion", Scalar("string", "String that identifies the server's internal version of this object that can be used by clients to determine when objects have changed.")),
            ("selfLink", Scalar("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system.")));
        var owner = Object(
            "OwnerReference contains enough information to let you identify an owning object.",
            ("apiVersion", Scalar("string", "API version of the referent.")),
            ("blockOwnerDeletion", Scalar("boolean", "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed.")),
            ("controller", Scalar("boolean", "If true, this reference points to the managing controller.")),
            ("kind", Scalar("string", "Kind of the referent.")),
            ("name", Scalar("string", "Name of the referent.")),
            ("uid", Scalar("string", "UID of the referent.")));
        owner["required"] = new JsonArray("apiVersion", "kind", "name", "uid");
        owner["x-kubernetes-map-type"] = "atomic";
        schemas[Meta + "OwnerReference"] = owner;
        schemas[Meta + "ManagedFieldsEntry"] = Object(
            "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.",
            ("apiVersion", Scalar("string", "APIVersion defines the version of this resource that this field set applies to.")),
            ("fieldsType", Scalar("string", "FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\"")),
            ("fieldsV1", Ref("FieldsV1", "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type.")),
            ("manager", Scalar("string", "Manager is an identifier of the workflow managing these fields.")),
            ("operation", Scalar("string", "Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'.")),
            ("subresource", Scalar("string", "Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource.")),
            ("time", Ref("Time", "Time is the timestamp of when the ManagedFields entry was added.")));
        schemas[Meta + "Time"] = new JsonObject
        {
            ["description"] = "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON. Wrappers are provided for many of the factory methods that the time package offers.",
            ["type"] = "string",
            ["format"] = "date-time",
        };
        schemas[Meta + "FieldsV1"] = new JsonObject
        {
            ["description"] = "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
            ["type"] = "object",
        };
    }

    private static JsonArray Gvk(string group, string version, string kind) =>
        new(new JsonObject { ["group"] = group, ["kind"] = kind, ["version"] = version });

    private static JsonObject ApiVersionProperty() => Scalar("string",
        $"APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: {Conventions}#resources");

    private static JsonObject KindProperty() => Scalar("string",
        $"Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: {Conventions}#types-kinds");

    private static JsonObject Ref(string metaType, string description) => new()
    {
        ["description"] = description,
        ["allOf"] = new JsonArray(new JsonObject { ["$ref"] = "#/components/schemas/" + Meta + metaType }),
    };

    private static JsonObject Scalar(string type, string description, string? format = null)
    {
        var o = new JsonObject { ["description"] = description, ["type"] = type };
        if (format is not null)
        {
            o["format"] = format;
        }

        return o;
    }

    private static JsonObject StringMap(string description) => new()
    {
        ["description"] = description,
        ["type"] = "object",
        ["additionalProperties"] = new JsonObject { ["type"] = "string", ["default"] = "" },
    };

    private static JsonObject Array(string description, string metaType) => new()
    {
        ["description"] = description,
        ["type"] = "array",
        ["items"] = new JsonObject { ["default"] = new JsonObject(), ["allOf"] = new JsonArray(new JsonObject { ["$ref"] = "#/components/schemas/" + Meta + metaType }) },
        ["x-kubernetes-list-type"] = "atomic",
    };

    private static JsonObject Object(string description, params (string Name, JsonObject Schema)[] properties)
    {
        var props = new JsonObject();
        foreach (var (name, schema) in properties)
        {
            props[name] = schema;
        }

        return new JsonObject { ["description"] = description, ["type"] = "object", ["properties"] = props };
    }
}
