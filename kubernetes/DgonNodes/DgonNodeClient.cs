using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace Dgon.Kubernetes.DgonNodes;

/// <summary>
/// Typed DgonNode calls on KubernetesClient's custom objects API (group <c>dgon.io</c>, version <c>v1alpha1</c>,
/// plural <c>dgonnodes</c>), so callers name neither the group nor the plural. Patches are JSON merge patches
/// (RFC 7386: objects merge, <c>null</c> deletes a key); a patch carrying <c>metadata.resourceVersion</c> is an
/// optimistic-concurrency precondition (409 Conflict when stale). Errors are the library's
/// (<see cref="k8s.Autorest.HttpOperationException"/>), classified by <see cref="ApiErrors"/>.
/// </summary>
public static class DgonNodeClient
{
    /// <summary>GET one DgonNode; null on 404.</summary>
    public static async Task<DgonNode?> TryGetDgonNodeAsync(this IKubernetes client, string ns, string name, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        try
        {
            return await client.CustomObjects.GetNamespacedCustomObjectAsync<DgonNode>(DgonNode.Group, DgonNode.Version, ns, DgonNode.Plural, name, ct);
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return null;
        }
    }

    /// <summary>POST a new DgonNode into its <c>metadata.namespace</c>; 409 AlreadyExists when the name is taken.</summary>
    public static Task<DgonNode> CreateDgonNodeAsync(this IKubernetes client, DgonNode node, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(node);
        return client.CustomObjects.CreateNamespacedCustomObjectAsync<DgonNode>(node, DgonNode.Group, DgonNode.Version, node.Metadata.NamespaceProperty, DgonNode.Plural, cancellationToken: ct);
    }

    /// <summary>Merge-patch the main resource (spec, metadata; status is ignored by the server).</summary>
    public static Task<DgonNode> PatchDgonNodeAsync(this IKubernetes client, string ns, string name, JsonNode mergePatch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(mergePatch);
        return client.CustomObjects.PatchNamespacedCustomObjectAsync<DgonNode>(Patch(mergePatch), DgonNode.Group, DgonNode.Version, ns, DgonNode.Plural, name, cancellationToken: ct);
    }

    /// <summary>Merge-patch the status subresource (only <c>status</c> and the resourceVersion precondition count).</summary>
    public static Task<DgonNode> PatchDgonNodeStatusAsync(this IKubernetes client, string ns, string name, JsonNode mergePatch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(mergePatch);
        return client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<DgonNode>(Patch(mergePatch), DgonNode.Group, DgonNode.Version, ns, DgonNode.Plural, name, cancellationToken: ct);
    }

    /// <summary>DELETE one DgonNode with background propagation (its owned Secret follows) and optional uid/resourceVersion preconditions (409 when they fail, 404 when it is gone).</summary>
    public static Task DeleteDgonNodeAsync(this IKubernetes client, string ns, string name, string? uid, string? resourceVersion, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        var options = new V1DeleteOptions
        {
            PropagationPolicy = "Background",
            Preconditions = uid is null && resourceVersion is null ? null : new V1Preconditions { Uid = uid, ResourceVersion = resourceVersion },
        };
        return client.CustomObjects.DeleteNamespacedCustomObjectAsync(DgonNode.Group, DgonNode.Version, ns, DgonNode.Plural, name, options, cancellationToken: ct);
    }

    private static V1Patch Patch(JsonNode mergePatch) => new(mergePatch.ToJsonString(), V1Patch.PatchType.MergePatch);
}
