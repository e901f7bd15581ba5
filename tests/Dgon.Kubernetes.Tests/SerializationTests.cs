using k8s;

namespace Dgon.Kubernetes.Tests;

public sealed class SerializationTests
{
    [Fact]
    public void A_DgonNode_round_trips_through_KubernetesJson_with_camelCase_fields_and_a_CamelCase_phase()
    {
        var node = Cluster.Node("n1");
        node.Spec.PublicKey = "ed25519:key";
        node.Status = new DgonNodeStatus
        {
            Phase = DgonNodeMapping.PhaseValue(Dgon.Domain.Nodes.NodePhase.Quarantine),
            LastHeartbeatTime = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero),
            GpuUtil = 0.5,
        };

        var json = KubernetesJson.Serialize(node);
        Assert.Contains("\"apiVersion\":\"dgon.io/v1alpha1\"", json, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"DgonNode\"", json, StringComparison.Ordinal);
        Assert.Contains("\"publicKey\":\"ed25519:key\"", json, StringComparison.Ordinal);
        Assert.Contains("\"gpuUtil\":0.5", json, StringComparison.Ordinal);
        Assert.Contains("\"phase\":\"Quarantined\"", json, StringComparison.Ordinal);
        Assert.Contains("\"lastHeartbeatTime\":\"2026-11-21T10:00:00", json, StringComparison.Ordinal);

        var back = KubernetesJson.Deserialize<DgonNode>(json);
        Assert.Equal(("n1", "default", "eu-west", "ed25519:key"), (back.Metadata.Name, back.Metadata.NamespaceProperty, back.Spec.Region, back.Spec.PublicKey));
        Assert.Equal(Dgon.Domain.Nodes.NodePhase.Quarantine, DgonNodeMapping.Phase(back));
        Assert.Equal(node.Status.LastHeartbeatTime, back.Status!.LastHeartbeatTime);
        Assert.Equal(["Pending", "Active", "Offline", "Quarantined"], Dgon.Domain.Nodes.NodePhases.All.Select(DgonNodeMapping.PhaseValue));
    }
}
