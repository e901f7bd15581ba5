using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Kubernetes;

/// <summary>
/// Base of every typed Kubernetes object: <c>apiVersion</c>, <c>kind</c> and <c>metadata</c> (Kubernetes API
/// conventions, "Objects"). Part of DGON's small stand-in for the KubernetesClient model types (which cannot be
/// restored here); the official <c>IKubernetesObject&lt;V1ObjectMeta&gt;</c> has the same shape.
/// </summary>
public abstract class KubeObject
{
    /// <summary>The group/version of the schema, e.g. <c>dgon.io/v1alpha1</c> or <c>v1</c> for the core group.</summary>
    public string? ApiVersion { get; set; }

    /// <summary>The kind, in CamelCase, e.g. <c>DgonNode</c>.</summary>
    public string? Kind { get; set; }

    /// <summary>Standard object metadata; never null (an empty <see cref="ObjectMeta"/> when absent on the wire).</summary>
    public ObjectMeta Metadata { get; set; } = new();

    /// <summary>
    /// Top-level fields this model does not know (kept so that a read-modify-PUT does not drop fields a newer
    /// server or CRD version added).
    /// </summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>The cache/work-queue key of this object: <c>namespace/name</c>, or <c>name</c> for cluster-scoped objects (client-go's MetaNamespaceKeyFunc).</summary>
    public string Key() => ObjectKey.Of(Metadata.Namespace, Metadata.Name ?? "");
}

/// <summary>Helpers for the <c>namespace/name</c> keys client-go uses in caches and work queues (MetaNamespaceKeyFunc).</summary>
public static class ObjectKey
{
    /// <summary>Returns <c>ns/name</c>, or <c>name</c> when <paramref name="ns"/> is null or empty.</summary>
    public static string Of(string? ns, string name) => string.IsNullOrEmpty(ns) ? name : ns + "/" + name;

    /// <summary>Splits a key made by <see cref="Of"/> back into namespace (null for cluster-scoped) and name.</summary>
    public static (string? Namespace, string Name) Split(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (null, key) : (key[..slash], key[(slash + 1)..]);
    }
}
