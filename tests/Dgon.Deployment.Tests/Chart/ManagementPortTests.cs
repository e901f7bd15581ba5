using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.NetworkPolicyModel;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// The API's management listener (issue 12, api.managementPort, default 9090): DGON_MANAGEMENT_URLS makes the API
/// serve /metrics there only, so the public port 8001, and with it the ingress, never exposes it. Off (null or 0):
/// /metrics on 8001 as before.
/// </summary>
public sealed class ManagementPortTests
{
    private static readonly PodEndpoint Prometheus = PodEndpoint.In("monitoring", "app.kubernetes.io/name=prometheus");

    private static JsonObject Api(RenderedChart chart) => Container(chart.Get("Deployment", Names.Api), "api");

    private static List<(string? Name, long Port)> Ports(JsonNode ports, string portKey) =>
        [.. ports.AsArray().Select(p => (Str(p!["name"]), p[portKey]!.GetValue<long>()))];

    /// <summary>The API pod as the NetworkPolicies see it (its rendered template labels).</summary>
    private static PodEndpoint ApiPod(RenderedChart chart) => new(
        Helm.Namespace,
        new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = Helm.Namespace },
        PodTemplateMetadata(chart.Get("Deployment", Names.Api))["labels"]!.AsObject().ToDictionary(kv => kv.Key, kv => Str(kv.Value)!));

    private static bool Reaches(RenderedChart chart, Endpoint from, int port) =>
        Allows([.. chart.OfKind("NetworkPolicy")], from, ApiPod(chart), "TCP", port);

    [Fact]
    public void By_default_the_api_gets_a_metrics_container_port_its_env_and_a_service_port()
    {
        var chart = Helm.Template();
        var api = Api(chart);

        Assert.Equal([("http", 8001L), ("metrics", 9090L)], Ports(api["ports"]!, "containerPort"));
        // An explicit host: the API parses each URL as a URI, and "http://+:9090" is not one.
        Assert.Equal("http://0.0.0.0:9090", Str(Env(api, "DGON_MANAGEMENT_URLS")["value"]));
        Assert.Equal("http://+:8001", Str(Env(api, "ASPNETCORE_URLS")["value"]));

        var service = chart.Get("Service", Names.Api);
        Assert.Equal([("http", 8001L), ("metrics", 9090L)], Ports(service["spec"]!["ports"]!, "port"));
        Assert.Equal(["http", "metrics"], service["spec"]!["ports"]!.AsArray().Select(p => Str(p!["targetPort"])));

        // Probes stay on the public port (health answers on both listeners).
        foreach (var probe in new[] { "startupProbe", "livenessProbe", "readinessProbe" })
        {
            Assert.Equal("http", Str(api[probe]!["httpGet"]!["port"]));
        }
    }

    [Fact]
    public void The_ingress_routes_only_the_http_port_never_the_management_port()
    {
        var ingress = Helm.Template().Get("Ingress", Names.Api);

        var backends = ingress["spec"]!["rules"]!.AsArray()
            .SelectMany(r => r!["http"]!["paths"]!.AsArray())
            .Select(p => p!["backend"]!["service"]!)
            .ToList();
        Assert.NotEmpty(backends);
        Assert.All(backends, b => Assert.Equal("http", Str(b["port"]!["name"])));
    }

    [Fact]
    public void Prometheus_reaches_the_api_on_the_management_port_and_the_other_clients_on_8001()
    {
        var chart = Helm.Production(); // networkPolicy.api.from narrowed to the ingress controller
        var dashboard = PodEndpoint.In(Helm.Namespace, "app.kubernetes.io/name=dgon", "app.kubernetes.io/instance=dgon", "app.kubernetes.io/component=dashboard");

        Assert.True(Reaches(chart, Prometheus, 9090));
        Assert.False(Reaches(chart, Prometheus, 8001));
        Assert.True(Reaches(chart, dashboard, 8001));
        Assert.False(Reaches(chart, dashboard, 9090));

        // The policy names the management port in a rule of its own whose sources are exactly metrics.from.
        var rules = chart.Get("NetworkPolicy", Names.Api)["spec"]!["ingress"]!.AsArray();
        var metricsRule = Assert.Single(rules, r => r!["ports"]!.AsArray().Any(p => Str(p!["port"]) == "9090"))!;
        Assert.Equal(["9090"], metricsRule["ports"]!.AsArray().Select(p => Str(p!["port"])));
        Assert.Equal(
            """[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]""",
            metricsRule["from"]!.ToJsonString());
    }

    [Fact]
    public void Another_management_port_moves_everything_with_it()
    {
        var chart = Helm.Template("--set", "api.managementPort=9464", "--api-versions", "monitoring.coreos.com/v1");

        Assert.Equal([("http", 8001L), ("metrics", 9464L)], Ports(Api(chart)["ports"]!, "containerPort"));
        Assert.Equal("http://0.0.0.0:9464", Str(Env(Api(chart), "DGON_MANAGEMENT_URLS")["value"]));
        Assert.Equal([("http", 8001L), ("metrics", 9464L)], Ports(chart.Get("Service", Names.Api)["spec"]!["ports"]!, "port"));
        Assert.True(Reaches(chart, Prometheus, 9464));
        Assert.False(Reaches(chart, Prometheus, 9090));
    }

    [Theory]
    [InlineData("api.managementPort=null")]
    [InlineData("api.managementPort=0")]
    public void Off_puts_metrics_back_on_the_http_port(string set)
    {
        var chart = Helm.Template("--set", set, "-f", Helm.CiValues("production-values.yaml"));
        var api = Api(chart);

        Assert.Equal([("http", 8001L)], Ports(api["ports"]!, "containerPort"));
        Assert.DoesNotContain(api["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_MANAGEMENT_URLS");
        Assert.Equal([("http", 8001L)], Ports(chart.Get("Service", Names.Api)["spec"]!["ports"]!, "port"));
        Assert.Equal("8001", Str(PodTemplateMetadata(chart.Get("Deployment", Names.Api))["annotations"]!["prometheus.io/port"]));

        // Prometheus (metrics.from) scrapes 8001 again; nothing is opened on 9090.
        Assert.True(Reaches(chart, Prometheus, 8001));
        Assert.False(Reaches(chart, Prometheus, 9090));

        // The helm test no longer expects a 404 for /metrics on the public port.
        var script = string.Join('\n', Container(chart.Get("Pod", Names.TestPod), "check-api")["command"]!.AsArray().Select(Str));
        Assert.DoesNotContain("/metrics", script, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("api.managementPort=8001")]
    [InlineData("api.managementPort=70000")]
    [InlineData("api.managementPort=-1")]
    [InlineData("api.managementPort=metrics")]
    public void A_management_port_that_cannot_work_is_refused(string set)
    {
        var result = Helm.TryTemplate("--set", set);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/api/managementPort", result.Stderr, StringComparison.Ordinal);
    }
}
