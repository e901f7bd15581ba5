using System.Net;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Operator.Tests;

/// <summary>
/// Issue 4, Kubernetes mode: a real Prometheus on loopback scrapes the API and the operator (1 s interval); a node
/// turns active and Prometheus answers <c>dgon_node_status{node,phase="active"} == 1</c>; after
/// <c>kubectl delete dgonnode</c> its series disappear. Both endpoints pass <c>promtool check metrics</c>.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MetricsTests(KubernetesModeFixture fx, ITestOutputHelper output) : IClassFixture<KubernetesModeFixture>, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public void Dispose() => output.WriteLine(fx.Dump());

    private static string NewNodeId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    private async Task HeartbeatAsync(TestNode node)
    {
        using var hb = await node.HeartbeatAsync(ready: true, gpuUtil: 0.5, memUsedGb: 3, p95Ms: 250);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
    }

    [Fact]
    public async Task Prometheus_sees_a_node_active_through_the_operator_and_loses_it_after_delete()
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, NewNodeId("prom"));
        await using var prometheus = await PrometheusServer.StartAsync(new Dictionary<string, Uri[]>
        {
            ["dgon-api"] = [fx.Api.BaseAddress],
            ["dgon-operator"] = [fx.Operator.BaseAddress],
        });
        var active = $"dgon_node_status{{node=\"{node.NodeId}\",phase=\"active\"}} == 1";

        IReadOnlyList<PromSample> result = [];
        await UntilAsync(
            prometheus,
            async () =>
            {
                await HeartbeatAsync(node); // the grace period here is 3 s: keep the node active until a scrape saw it
                return (result = await prometheus.QueryAsync(active)).Count == 1;
            },
            "Prometheus: " + active);
        var sample = Assert.Single(result);
        Assert.Equal("dgon-operator", sample.Labels["job"]); // the leading operator owns node series in Kubernetes mode
        Assert.Equal("ap-southeast", sample.Labels["region"]);
        Assert.Equal("ollama", sample.Labels["runtime"]);
        Assert.Empty(await prometheus.QueryAsync($"dgon_node_status{{job=\"dgon-api\",node=\"{node.NodeId}\"}}"));
        await UntilAsync(
            prometheus,
            async () => (await prometheus.QueryAsync($"dgon_node_gpu_utilization_ratio{{node=\"{node.NodeId}\"}} == 0.5")).Count == 1,
            "GPU utilisation of the node (reaches status with the coalesced writes)");
        // The two jobs are scraped independently: each series shows up within a scrape or two.
        foreach (var query in new[]
        {
            "dgon_kubernetes_status_writes_total{job=\"dgon-api\"} > 0",
            "dgon_heartbeats_total{job=\"dgon-api\",result=\"accepted\"} > 0",
            "dgon_reconcile_total{job=\"dgon-operator\"} > 0",
            "dgon_kubernetes_status_writes_total{job=\"dgon-operator\"} > 0",
            "dgon_operator_leader{job=\"dgon-operator\"} == 1",
            "dgon_nodes{job=\"dgon-operator\",phase=\"active\"} >= 1",
        })
        {
            await UntilAsync(prometheus, async () => (await prometheus.QueryAsync(query)).Count > 0, "Prometheus: " + query);
        }

        (await fx.Kubectl.RunAsync("delete", "dgonnode", node.NodeId)).EnsureSuccess("delete dgonnode");

        await Eventually.Until(
            async () => !(await Exposition.ScrapeAsync(Http, fx.Operator.BaseAddress)).Samples.Any(s => s.Labels.GetValueOrDefault("node") == node.NodeId),
            Patience,
            "the deleted node's series gone from the operator's /metrics");
        await UntilAsync(
            prometheus,
            async () => (await prometheus.QueryAsync($"{{node=\"{node.NodeId}\"}}")).Count == 0,
            "Prometheus: the deleted node's series are stale");
    }

    [Fact]
    public async Task Api_and_operator_metrics_pass_promtool()
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, NewNodeId("lint"));
        await HeartbeatAsync(node);
        await Eventually.Until(
            async () => (await Exposition.ScrapeAsync(Http, fx.Operator.BaseAddress)).Find("dgon_node_status", ("node", node.NodeId)).Any(),
            Patience,
            "the node's series on the operator");

        foreach (var (name, address) in new[] { ("api", fx.Api.BaseAddress), ("operator", fx.Operator.BaseAddress) })
        {
            var text = await Http.GetStringAsync(new Uri(address, "/metrics"));
            var (exitCode, lint) = await Promtool.CheckMetricsAsync(text);
            Assert.True(exitCode == 0, $"{name}: promtool check metrics: {lint}\n{text}");
            Assert.Contains("# TYPE http_server_request_duration_seconds histogram", text, StringComparison.Ordinal);
        }

        var op = await Exposition.ScrapeAsync(Http, fx.Operator.BaseAddress);
        Assert.Contains(op.Samples, s => s.Name == "dgon_reconcile_duration_seconds_bucket");
        Assert.Equal(1, op.Sum("dgon_operator_leader"));
        Assert.Single(op.Find("dgon_reconcile_errors_total", ("controller", "dgonnode"))); // exists from start-up, at 0 until an error

        var api = await Exposition.ScrapeAsync(Http, fx.Api.BaseAddress);
        Assert.Single(api.Find("dgon_receipts_total", ("result", "error")));
        foreach (var (component, exposition) in new[] { ("api", api), ("operator", op) })
        {
            var info = Assert.Single(exposition.Find("dgon_build_info"));
            Assert.Equal(1, info.Value);
            Assert.Equal(component, info.Labels["component"]);
            Assert.False(string.IsNullOrEmpty(info.Labels["version"]));
            Assert.StartsWith(".NET ", info.Labels["runtime"], StringComparison.Ordinal);
        }
    }

    private async Task UntilAsync(PrometheusServer prometheus, Func<Task<bool>> condition, string what)
    {
        try
        {
            await Eventually.Until(condition, Patience, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{await prometheus.TargetsAsync()}\n{prometheus.Process.Dump()}", e);
        }
    }
}
