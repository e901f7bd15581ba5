using System.Text;
using System.Text.Json.Serialization.Metadata;
using Dgon.Kubernetes.Json;

namespace Dgon.Kubernetes;

/// <summary>
/// Identifies a REST resource (group, version, plural, kind, scope) and how to (de)serialize it with source-generated
/// JSON metadata, and builds its REST paths following the Kubernetes API path rules: the core group is served at
/// <c>/api/v1/namespaces/{ns}/{plural}/{name}[/{subresource}]</c>, named groups at
/// <c>/apis/{group}/{version}/namespaces/{ns}/{plural}/...</c>; cluster-scoped resources drop the namespace
/// segment. A small stand-in for KubernetesClient's generic resource metadata (which cannot be restored here).
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class ResourceType<T>
    where T : KubeObject
{
    /// <summary>Describes a resource.</summary>
    /// <param name="group">API group; empty for the core group.</param>
    /// <param name="version">API version, e.g. <c>v1</c>.</param>
    /// <param name="plural">Lower-case plural resource name, e.g. <c>dgonnodes</c>.</param>
    /// <param name="kind">Kind, e.g. <c>DgonNode</c>.</param>
    /// <param name="namespaced">True for namespaced resources.</param>
    /// <param name="typeInfo">Source-generated metadata for <typeparamref name="T"/>.</param>
    /// <param name="listTypeInfo">Source-generated metadata for <see cref="KubeList{T}"/>.</param>
    /// <param name="watchEventTypeInfo">Source-generated metadata for <see cref="WatchEvent{T}"/>.</param>
    /// <exception cref="ArgumentException">version, plural or kind is empty.</exception>
    public ResourceType(string group, string version, string plural, string kind, bool namespaced,
        JsonTypeInfo<T> typeInfo, JsonTypeInfo<KubeList<T>> listTypeInfo, JsonTypeInfo<WatchEvent<T>> watchEventTypeInfo)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentException.ThrowIfNullOrEmpty(version);
        ArgumentException.ThrowIfNullOrEmpty(plural);
        ArgumentException.ThrowIfNullOrEmpty(kind);
        Group = group;
        Version = version;
        Plural = plural;
        Kind = kind;
        Namespaced = namespaced;
        TypeInfo = typeInfo ?? throw new ArgumentNullException(nameof(typeInfo));
        ListTypeInfo = listTypeInfo ?? throw new ArgumentNullException(nameof(listTypeInfo));
        WatchEventTypeInfo = watchEventTypeInfo ?? throw new ArgumentNullException(nameof(watchEventTypeInfo));
    }

    /// <summary>API group; empty for the core group.</summary>
    public string Group { get; }

    /// <summary>API version, e.g. <c>v1alpha1</c>.</summary>
    public string Version { get; }

    /// <summary>Lower-case plural resource name.</summary>
    public string Plural { get; }

    /// <summary>Kind of the objects.</summary>
    public string Kind { get; }

    /// <summary>True for namespaced resources.</summary>
    public bool Namespaced { get; }

    /// <summary><c>{group}/{version}</c>, or just <c>{version}</c> for the core group.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    /// <summary>Source-generated JSON metadata for one object.</summary>
    public JsonTypeInfo<T> TypeInfo { get; }

    /// <summary>Source-generated JSON metadata for a list.</summary>
    public JsonTypeInfo<KubeList<T>> ListTypeInfo { get; }

    /// <summary>Source-generated JSON metadata for a watch event.</summary>
    public JsonTypeInfo<WatchEvent<T>> WatchEventTypeInfo { get; }

    /// <summary>
    /// The collection path: <c>/api/v1[/namespaces/{ns}]/{plural}</c> or <c>/apis/{group}/{version}[/namespaces/{ns}]/{plural}</c>.
    /// For a namespaced resource a null/empty <paramref name="ns"/> gives the all-namespaces path (valid for LIST and WATCH).
    /// </summary>
    public string CollectionPath(string? ns)
    {
        var sb = new StringBuilder(Group.Length == 0 ? "/api/" + Version : "/apis/" + Group + "/" + Version);
        if (Namespaced && !string.IsNullOrEmpty(ns))
        {
            sb.Append("/namespaces/").Append(Uri.EscapeDataString(ns));
        }

        return sb.Append('/').Append(Plural).ToString();
    }

    /// <summary>The path of one object, optionally of a subresource (e.g. <c>status</c>).</summary>
    /// <exception cref="ArgumentException">name is empty, or the resource is namespaced and ns is empty.</exception>
    public string ItemPath(string? ns, string name, string? subresource = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Namespaced && string.IsNullOrEmpty(ns))
        {
            throw new ArgumentException($"{Plural} is namespaced: a namespace is required", nameof(ns));
        }

        var path = CollectionPath(ns) + "/" + Uri.EscapeDataString(name);
        return string.IsNullOrEmpty(subresource) ? path : path + "/" + subresource;
    }

    /// <inheritdoc />
    public override string ToString() => Group.Length == 0 ? Plural : Plural + "." + Group;
}

/// <summary>The well-known resources DGON uses, with source-generated JSON metadata from <see cref="KubeJsonContext"/>.</summary>
public static class KubeResources
{
    /// <summary><c>dgon.io/v1alpha1</c> <c>dgonnodes</c> (namespaced; status subresource).</summary>
    public static ResourceType<DgonNode> DgonNodes { get; } = new("dgon.io", "v1alpha1", "dgonnodes", DgonNode.KindValue, true,
        KubeJsonContext.Default.DgonNode, KubeJsonContext.Default.KubeListDgonNode, KubeJsonContext.Default.WatchEventDgonNode);

    /// <summary>Core <c>v1</c> <c>secrets</c> (namespaced).</summary>
    public static ResourceType<Secret> Secrets { get; } = new("", "v1", "secrets", "Secret", true,
        KubeJsonContext.Default.Secret, KubeJsonContext.Default.KubeListSecret, KubeJsonContext.Default.WatchEventSecret);

    /// <summary><c>coordination.k8s.io/v1</c> <c>leases</c> (namespaced).</summary>
    public static ResourceType<Lease> Leases { get; } = new("coordination.k8s.io", "v1", "leases", "Lease", true,
        KubeJsonContext.Default.Lease, KubeJsonContext.Default.KubeListLease, KubeJsonContext.Default.WatchEventLease);

    /// <summary><c>events.k8s.io/v1</c> <c>events</c> (namespaced).</summary>
    public static ResourceType<EventsV1Event> Events { get; } = new("events.k8s.io", "v1", "events", "Event", true,
        KubeJsonContext.Default.EventsV1Event, KubeJsonContext.Default.KubeListEventsV1Event, KubeJsonContext.Default.WatchEventEventsV1Event);
}
