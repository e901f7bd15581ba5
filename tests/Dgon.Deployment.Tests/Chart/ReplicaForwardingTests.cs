using static Dgon.Deployment.Tests.Chart.NetworkPolicyModel;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// Issue 13 in the chart: an API replica forwards an inference request to the replica that holds the node's link, at
/// the address that replica announces (DGON_REPLICA_URL = its pod IP), and the NetworkPolicies let API pods reach each
/// other on 8001.
/// </summary>
public sealed class ReplicaForwardingTests
{
    [Fact]
    public void Each_api_pod_announces_its_pod_ip_and_api_pods_may_reach_each_other_on_8001()
    {
        var chart = Helm.Template();
        var api = Container(chart.Get("Deployment", Names.Api), "api");
        Assert.Equal("status.podIP", Str(Env(api, "POD_IP")["valueFrom"]!["fieldRef"]!["fieldPath"]));
        Assert.Equal("http://$(POD_IP):8001", Str(Env(api, "DGON_REPLICA_URL")["value"]));

        var labels = PodTemplateMetadata(chart.Get("Deployment", Names.Api))["labels"]!.AsObject().ToDictionary(kv => kv.Key, kv => Str(kv.Value)!);
        var apiPod = new PodEndpoint(Helm.Namespace, new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = Helm.Namespace }, labels);
        var policies = chart.OfKind("NetworkPolicy").ToList();
        Assert.True(Allows(policies, apiPod, apiPod, "TCP", 8001), "API pods reach each other on 8001");
        Assert.False(Allows(policies, apiPod, apiPod, "TCP", 5432), "but not on other ports");
    }
}
