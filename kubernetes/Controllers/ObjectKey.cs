using k8s;
using k8s.Models;

namespace Dgon.Kubernetes.Controllers;

/// <summary>client-go's <c>cache.MetaNamespaceKeyFunc</c>: an object's cache and work-queue key, <c>namespace/name</c> (or <c>name</c> when cluster-scoped).</summary>
public static class ObjectKey
{
    /// <summary>The key of <paramref name="ns"/>/<paramref name="name"/>.</summary>
    public static string Of(string? ns, string name) => string.IsNullOrEmpty(ns) ? name : ns + "/" + name;

    /// <summary>The key of an object (its metadata's namespace and name).</summary>
    public static string Of(IKubernetesObject<V1ObjectMeta> obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return Of(obj.Metadata?.NamespaceProperty, obj.Metadata?.Name ?? "");
    }

    /// <summary>Splits a key into namespace (null when absent) and name (client-go's <c>SplitMetaNamespaceKey</c>).</summary>
    public static (string? Namespace, string Name) Split(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (null, key) : (key[..slash], key[(slash + 1)..]);
    }
}
