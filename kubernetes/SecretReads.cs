using k8s;
using k8s.Models;

namespace Dgon.Kubernetes;

/// <summary>The one Secret read DGON needs beyond KubernetesClient's own calls.</summary>
public static class SecretReads
{
    /// <summary>GET one Secret; null on 404 (other errors still throw <see cref="k8s.Autorest.HttpOperationException"/>).</summary>
    public static async Task<V1Secret?> TryReadSecretAsync(this IKubernetes client, string ns, string name, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        try
        {
            return await client.CoreV1.ReadNamespacedSecretAsync(name, ns, cancellationToken: ct);
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return null;
        }
    }
}
