using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.NetworkPolicyModel;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// NetworkPolicies: everything of the release denied by default, then exactly the flows each component needs, checked
/// by evaluating the rendered policies (<see cref="NetworkPolicyModel"/>) on the rendered pods' labels.
/// </summary>
public sealed class NetworkPolicyTests
{
    private static readonly PodEndpoint Dns = PodEndpoint.In("kube-system", "k8s-app=kube-dns");
    private static readonly PodEndpoint Prometheus = PodEndpoint.In("monitoring", "app.kubernetes.io/name=prometheus");
    private static readonly PodEndpoint IngressNginx = PodEndpoint.In("ingress-nginx", "app.kubernetes.io/name=ingress-nginx");
    private static readonly PodEndpoint OtherPod = PodEndpoint.In("shop", "app=shop");
    private static readonly AddressEndpoint Internet = AddressEndpoint.Of("203.0.113.7");
    private static readonly AddressEndpoint KubernetesService = AddressEndpoint.Of("10.96.0.1");
    private static readonly AddressEndpoint ApiServerEndpoint = AddressEndpoint.Of("10.0.0.10");

    /// <summary>The labels of the release's pod of <paramref name="component"/> as rendered (Deployment/StatefulSet template or the test Pod).</summary>
    private static PodEndpoint Pod(RenderedChart chart, string component)
    {
        var labels = chart.PodSpecs()
            .Select(p => Kind(p.Owner) == "Pod" ? p.Owner["metadata"]!["labels"]!.AsObject() : PodTemplateMetadata(p.Owner)["labels"]!.AsObject())
            .Single(l => Str(l["app.kubernetes.io/component"]) == component);
        return new PodEndpoint(
            Helm.Namespace,
            new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = Helm.Namespace },
            labels.ToDictionary(kv => kv.Key, kv => Str(kv.Value)!));
    }

    private static List<JsonObject> Policies(RenderedChart chart) => [.. chart.OfKind("NetworkPolicy")];

    private static void AssertFlow(RenderedChart chart, bool allowed, Endpoint from, Endpoint to, int port, string protocol = "TCP") =>
        Assert.True(
            Allows(Policies(chart), from, to, protocol, port) == allowed,
            $"{from} -> {to} {protocol}/{port} should be {(allowed ? "allowed" : "denied")}");

    [Fact]
    public void Default_deny_selects_every_pod_of_the_release_in_both_directions_and_allows_nothing()
    {
        var chart = Helm.Template();

        var deny = chart.Get("NetworkPolicy", "dgon-default-deny");
        Assert.Equal(["Ingress", "Egress"], deny["spec"]!["policyTypes"]!.AsArray().Select(Str));
        Assert.Null(deny["spec"]!["ingress"]);
        Assert.Null(deny["spec"]!["egress"]);
        foreach (var component in new[] { "api", "operator", "dashboard", "postgresql", "test" })
        {
            var pod = Pod(chart, component);
            Assert.True(Matches(deny["spec"]!["podSelector"], pod.Labels), $"default deny does not select the {component} pod");

            // Besides the default deny, exactly one policy of its own.
            var own = Assert.Single(Selecting(Policies(chart), pod), p => Name(p) != "dgon-default-deny");
            Assert.Equal(["Ingress", "Egress"], own["spec"]!["policyTypes"]!.AsArray().Select(Str));
        }

        Assert.False(Matches(deny["spec"]!["podSelector"], OtherPod.Labels));
    }

    [Fact]
    public void Default_values_allow_the_flows_each_component_needs()
    {
        var chart = Helm.Template();
        var (api, op, dashboard, pg, test) = (Pod(chart, "api"), Pod(chart, "operator"), Pod(chart, "dashboard"), Pod(chart, "postgresql"), Pod(chart, "test"));

        // Agents through any ingress controller (in or outside the cluster), the dashboard, helm test, Prometheus → API.
        AssertFlow(chart, true, Internet, api, 8001);
        AssertFlow(chart, true, IngressNginx, api, 8001);
        AssertFlow(chart, true, dashboard, api, 8001);
        AssertFlow(chart, true, test, api, 8001);
        AssertFlow(chart, true, Prometheus, api, 8001); // as anyone may (api.from: [])
        AssertFlow(chart, true, Prometheus, api, 9090); // the management port, /metrics
        AssertFlow(chart, true, Prometheus, op, 8002);
        AssertFlow(chart, false, Internet, api, 9090); // metrics.from: pods only
        AssertFlow(chart, false, dashboard, api, 9090);
        AssertFlow(chart, false, test, api, 9090);

        // API and operator → DNS, the Kubernetes API server (443 and 6443, any address), the bundled PostgreSQL.
        foreach (var component in new[] { api, op })
        {
            AssertFlow(chart, true, component, Dns, 53, "UDP");
            AssertFlow(chart, true, component, Dns, 53, "TCP");
            AssertFlow(chart, true, component, KubernetesService, 443);
            AssertFlow(chart, true, component, ApiServerEndpoint, 6443);
            AssertFlow(chart, true, component, pg, 5432);
            AssertFlow(chart, false, component, pg, 5433);
            AssertFlow(chart, false, component, Internet, 80);
        }

        // Dashboard and test pod → DNS and the API only.
        foreach (var client in new[] { dashboard, test })
        {
            AssertFlow(chart, true, client, Dns, 53, "UDP");
            AssertFlow(chart, false, client, pg, 5432);
            AssertFlow(chart, false, client, KubernetesService, 443);
            AssertFlow(chart, false, client, op, 8002);
        }

        // Nothing else reaches the database or the dashboard; the database reaches nothing.
        AssertFlow(chart, false, Internet, pg, 5432);
        AssertFlow(chart, false, OtherPod, pg, 5432);
        AssertFlow(chart, false, Internet, dashboard, 3000);
        AssertFlow(chart, false, IngressNginx, dashboard, 3000);
        AssertFlow(chart, false, Internet, op, 8002);
        AssertFlow(chart, false, Internet, test, 8001);
        AssertFlow(chart, false, pg, Dns, 53, "UDP");
        AssertFlow(chart, false, pg, Internet, 443);
    }

    [Fact]
    public void Dashboard_ingress_opens_the_dashboard_port_to_the_configured_sources()
    {
        var open = Helm.Template("--set", "ingress.dashboard.enabled=true");
        AssertFlow(open, true, IngressNginx, Pod(open, "dashboard"), 3000);
        AssertFlow(open, false, IngressNginx, Pod(open, "dashboard"), 3001);

        var narrowed = Helm.Production();
        AssertFlow(narrowed, true, IngressNginx, Pod(narrowed, "dashboard"), 3000);
        AssertFlow(narrowed, false, OtherPod, Pod(narrowed, "dashboard"), 3000);
        AssertFlow(narrowed, false, Internet, Pod(narrowed, "dashboard"), 3000);
    }

    [Fact]
    public void Production_values_narrow_sources_the_api_server_and_the_external_database()
    {
        var chart = Helm.Production();
        var (api, op) = (Pod(chart, "api"), Pod(chart, "operator"));

        Assert.False(chart.Has("NetworkPolicy", Names.Postgresql), "no bundled PostgreSQL, no policy for it");
        AssertFlow(chart, true, IngressNginx, api, 8001);
        AssertFlow(chart, false, PodEndpoint.In("ingress-nginx", "app=other"), api, 8001);
        AssertFlow(chart, false, Internet, api, 8001);
        AssertFlow(chart, false, OtherPod, api, 8001);
        AssertFlow(chart, true, Pod(chart, "dashboard"), api, 8001);
        AssertFlow(chart, true, Pod(chart, "test"), api, 8001);
        // Prometheus reaches the API's management port (/metrics) and not its public port; nobody else reaches 9090.
        AssertFlow(chart, true, Prometheus, api, 9090);
        AssertFlow(chart, false, Prometheus, api, 8001);
        AssertFlow(chart, false, IngressNginx, api, 9090);
        AssertFlow(chart, false, OtherPod, api, 9090);
        AssertFlow(chart, false, Pod(chart, "dashboard"), api, 9090);
        AssertFlow(chart, true, Prometheus, op, 8002);
        AssertFlow(chart, false, OtherPod, op, 8002);
        foreach (var component in new[] { api, op })
        {
            AssertFlow(chart, true, component, AddressEndpoint.Of("10.20.3.4"), 5432);
            AssertFlow(chart, false, component, AddressEndpoint.Of("192.168.1.1"), 5432);
            AssertFlow(chart, false, component, AddressEndpoint.Of("10.20.3.4"), 5433);
            AssertFlow(chart, true, component, ApiServerEndpoint, 6443);
            AssertFlow(chart, false, component, AddressEndpoint.Of("8.8.8.8"), 443);
        }
    }

    [Fact]
    public void Dns_and_api_server_rules_are_configurable()
    {
        var chart = Helm.Template(
            "--set", "networkPolicy.dns.to[0].ipBlock.cidr=169.254.20.10/32",
            "--set", "networkPolicy.kubeApiServer.cidrs[0]=172.18.0.2/32",
            "--set", "networkPolicy.kubeApiServer.ports[0]=16443");
        var api = Pod(chart, "api");

        AssertFlow(chart, true, api, AddressEndpoint.Of("169.254.20.10"), 53, "UDP");
        AssertFlow(chart, false, api, Dns, 53, "UDP");
        AssertFlow(chart, true, api, AddressEndpoint.Of("172.18.0.2"), 16443);
        AssertFlow(chart, false, api, AddressEndpoint.Of("172.18.0.2"), 443);
        AssertFlow(chart, false, api, KubernetesService, 443);
    }

    [Fact]
    public void Disabled_renders_no_network_policy()
    {
        Assert.Empty(Helm.Template("--set", "networkPolicy.enabled=false").OfKind("NetworkPolicy"));
        Assert.NotEmpty(Helm.Template().OfKind("NetworkPolicy"));
    }

    [Fact]
    public void Without_the_dashboard_or_the_bundled_database_their_policies_go_too()
    {
        var chart = Helm.Template("--set", "dashboard.enabled=false");

        Assert.False(chart.Has("NetworkPolicy", Names.Dashboard));
        var apiIngress = chart.Get("NetworkPolicy", Names.Api)["spec"]!["ingress"]!.ToJsonString();
        Assert.DoesNotContain("\"dashboard\"", apiIngress, StringComparison.Ordinal);
        Assert.False(Helm.Production().Has("NetworkPolicy", Names.Postgresql));
    }
}
