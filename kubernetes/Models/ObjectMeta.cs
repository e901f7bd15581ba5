using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Kubernetes;

/// <summary>
/// Standard object metadata (meta/v1 ObjectMeta; Kubernetes API conventions, "Metadata"). A small stand-in for
/// KubernetesClient's <c>V1ObjectMeta</c>, which cannot be restored here. Timestamps are metav1.Time: RFC 3339 UTC,
/// whole seconds on the wire (<c>2026-11-21T10:00:00Z</c>).
/// </summary>
public sealed class ObjectMeta
{
    /// <summary>Name, unique within the namespace and resource; a DNS subdomain for most resources.</summary>
    public string? Name { get; set; }

    /// <summary>Prefix the server uses to generate a unique name when <see cref="Name"/> is empty on create.</summary>
    public string? GenerateName { get; set; }

    /// <summary>Namespace; null or empty for cluster-scoped objects.</summary>
    public string? Namespace { get; set; }

    /// <summary>Server-assigned unique id for the lifetime of the object.</summary>
    public string? Uid { get; set; }

    /// <summary>Opaque version for optimistic concurrency; a PUT carrying a stale value is rejected with 409 Conflict.</summary>
    public string? ResourceVersion { get; set; }

    /// <summary>Sequence number of spec changes, incremented by the server (not on status-only changes when the status subresource is enabled).</summary>
    public long? Generation { get; set; }

    /// <summary>When the server created the object (UTC).</summary>
    public DateTimeOffset? CreationTimestamp { get; set; }

    /// <summary>When graceful deletion was requested; set by the server while finalizers are pending.</summary>
    public DateTimeOffset? DeletionTimestamp { get; set; }

    /// <summary>Labels (selectable key/value pairs).</summary>
    public Dictionary<string, string>? Labels { get; set; }

    /// <summary>Annotations (non-identifying key/value pairs).</summary>
    public Dictionary<string, string>? Annotations { get; set; }

    /// <summary>Objects this one depends on (garbage collection).</summary>
    public List<OwnerReference>? OwnerReferences { get; set; }

    /// <summary>Finalizers that must be removed before the object is deleted from storage.</summary>
    public List<string>? Finalizers { get; set; }

    /// <summary>Metadata fields this model does not know (e.g. managedFields), kept across read-modify-PUT.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>A reference to an owning object (meta/v1 OwnerReference). Stand-in for KubernetesClient's <c>V1OwnerReference</c>.</summary>
public sealed class OwnerReference
{
    /// <summary>API version of the owner, e.g. <c>dgon.io/v1alpha1</c>.</summary>
    public string ApiVersion { get; set; } = "";

    /// <summary>Kind of the owner.</summary>
    public string Kind { get; set; } = "";

    /// <summary>Name of the owner (same namespace as the dependent).</summary>
    public string Name { get; set; } = "";

    /// <summary>UID of the owner.</summary>
    public string Uid { get; set; } = "";

    /// <summary>True when the owner is the managing controller (at most one per object).</summary>
    public bool? Controller { get; set; }

    /// <summary>True when foreground deletion of the owner must wait for this dependent.</summary>
    public bool? BlockOwnerDeletion { get; set; }
}

/// <summary>List metadata (meta/v1 ListMeta). Stand-in for KubernetesClient's <c>V1ListMeta</c>.</summary>
public sealed class ListMeta
{
    /// <summary>The resourceVersion of the list snapshot; start a watch from it to see every later change.</summary>
    public string? ResourceVersion { get; set; }

    /// <summary>Continue token for the next page (empty/null on the last page). Expires: using a stale token yields 410 Gone.</summary>
    public string? Continue { get; set; }

    /// <summary>Number of items after this page, when the server knows it.</summary>
    public long? RemainingItemCount { get; set; }
}

/// <summary>A list of objects (<c>{Kind}List</c>) as returned by a LIST call. Stand-in for KubernetesClient's <c>V1*List</c> types.</summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class KubeList<T>
    where T : KubeObject
{
    /// <summary>API version of the list.</summary>
    public string? ApiVersion { get; set; }

    /// <summary>List kind, e.g. <c>DgonNodeList</c>.</summary>
    public string? Kind { get; set; }

    /// <summary>List metadata: resourceVersion and continue token.</summary>
    public ListMeta Metadata { get; set; } = new();

    /// <summary>The items; never null (empty when the server sends <c>null</c> or omits it).</summary>
    public List<T> Items { get; set; } = [];
}

/// <summary>
/// One event of a watch stream (meta/v1 WatchEvent). <see cref="Type"/> is <c>ADDED</c>, <c>MODIFIED</c>,
/// <c>DELETED</c>, <c>BOOKMARK</c> (only <c>metadata.resourceVersion</c> of <see cref="Object"/> is meaningful) or
/// <c>ERROR</c> (then <see cref="Status"/> holds the Status object and <see cref="Object"/> is null). Stand-in for
/// KubernetesClient's <c>WatchEventType</c>/object pair.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class WatchEvent<T>
    where T : KubeObject
{
    /// <summary>The event type constant <c>ADDED</c>.</summary>
    public const string Added = "ADDED";

    /// <summary>The event type constant <c>MODIFIED</c>.</summary>
    public const string Modified = "MODIFIED";

    /// <summary>The event type constant <c>DELETED</c>.</summary>
    public const string Deleted = "DELETED";

    /// <summary>The event type constant <c>BOOKMARK</c>.</summary>
    public const string Bookmark = "BOOKMARK";

    /// <summary>The event type constant <c>ERROR</c>.</summary>
    public const string Error = "ERROR";

    /// <summary>ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.</summary>
    public string Type { get; set; } = "";

    /// <summary>The object (its state after the change; for DELETED the last state). Null for ERROR.</summary>
    public T? Object { get; set; }

    /// <summary>The Status of an ERROR event; null otherwise.</summary>
    public KubeStatus? Status { get; set; }
}
