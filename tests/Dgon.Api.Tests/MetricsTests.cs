using System.Net;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>
/// Issue 4, standalone mode: the API's <c>/metrics</c> (real API process, real PostgreSQL), checked with the real
/// <c>promtool</c> and scraped by a real Prometheus. Counter assertions compare deltas around the requests made.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MetricsTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private Task<Exposition> ScrapeAsync() => Exposition.ScrapeAsync(fx.Client, fx.Api.BaseAddress);

    [Fact]
    public async Task Metrics_endpoint_serves_the_text_format_and_passes_promtool()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("prom"));
        using (var hb = await node.HeartbeatAsync(ready: true, gpuUtil: 0.5, memUsedGb: 2, p95Ms: 150))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        using var response = await fx.Client.GetAsync(new Uri("/metrics", UriKind.Relative));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, $"promtool check metrics: {output}\n{text}");
        Assert.Contains("# TYPE http_server_request_duration_seconds histogram", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fresh_api_exports_every_known_counter_series_at_zero_and_its_build_info()
    {
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await fx.Postgres.CreateDatabaseAsync() });

        var text = await api.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var m = Exposition.Parse(text);

        string[] results = ["accepted", "unauthorized", "forbidden", "conflict", "rate_limited", "invalid", "unavailable", "error"];
        foreach (var result in (string[])[.. results, "duplicate"])
        {
            Assert.Equal(0, Assert.Single(m.Find("dgon_receipts_total", ("result", result))).Value);
        }

        foreach (var result in results)
        {
            Assert.Equal(0, Assert.Single(m.Find("dgon_heartbeats_total", ("result", result))).Value);
        }

        foreach (var reason in new[] { "missing_headers", "invalid_timestamp", "stale_timestamp", "unknown_node", "bad_signature", "replayed", "secret_unreadable" })
        {
            Assert.Equal(0, Assert.Single(m.Find("dgon_hmac_failures_total", ("reason", reason))).Value);
        }

        var info = Assert.Single(m.Find("dgon_build_info"));
        Assert.Equal(1, info.Value);
        Assert.Equal("api", info.Labels["component"]);
        Assert.False(string.IsNullOrEmpty(info.Labels["version"]));
        Assert.StartsWith(".NET ", info.Labels["runtime"], StringComparison.Ordinal);
        Assert.Contains(m.Samples, s => s.Name.StartsWith("dotnet_gc_", StringComparison.Ordinal)); // System.Runtime meter
        var (exitCode, lint) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, $"promtool check metrics: {lint}\n{text}");
    }

    [Fact]
    public async Task Heartbeats_receipts_and_hmac_failures_are_counted_by_result_and_reason()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("count"));
        var before = await ScrapeAsync();

        (await node.HeartbeatAsync(ready: true)).Dispose();                                                     // accepted
        (await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", token: new string('0', 64))).Dispose(); // bad_signature
        (await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", now: DateTimeOffset.UtcNow.AddMinutes(-10))).Dispose(); // stale_timestamp
        (await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":\"yes\"}")).Dispose();                  // invalid (422)
        using (var unsigned = await fx.Client.PostAsync(new Uri("/v1/nodes/heartbeat", UriKind.Relative), new StringContent("{\"ready\":true}", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);                                      // missing_headers
        }

        var receipt = $"{{\"id\":\"r-{Guid.NewGuid():N}\",\"node_id\":\"{node.NodeId}\",\"region\":\"ap-southeast\",\"model_id\":\"m\",\"payload\":{{\"tokens\":1}}}}";
        using (var first = await node.SendSignedAsync("/v1/receipts", receipt))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        (await node.SendSignedAsync("/v1/receipts", receipt)).Dispose();                                          // duplicate
        (await node.SendSignedAsync("/v1/receipts", receipt.Replace("\"tokens\":1", "\"tokens\":2", StringComparison.Ordinal))).Dispose(); // conflict

        var after = await ScrapeAsync();
        double Delta(string name, params (string, string)[] labels) => after.Sum(name, labels) - before.Sum(name, labels);

        Assert.Equal(1, Delta("dgon_heartbeats_total", ("result", "accepted")));
        Assert.Equal(3, Delta("dgon_heartbeats_total", ("result", "unauthorized")));
        Assert.Equal(1, Delta("dgon_heartbeats_total", ("result", "invalid")));
        Assert.Equal(1, Delta("dgon_hmac_failures_total", ("reason", "bad_signature")));
        Assert.Equal(1, Delta("dgon_hmac_failures_total", ("reason", "stale_timestamp")));
        Assert.Equal(1, Delta("dgon_hmac_failures_total", ("reason", "missing_headers")));
        Assert.Equal(1, Delta("dgon_receipts_total", ("result", "accepted")));
        Assert.Equal(1, Delta("dgon_receipts_total", ("result", "duplicate")));
        Assert.Equal(1, Delta("dgon_receipts_total", ("result", "conflict")));
        Assert.True(Delta("http_server_request_duration_seconds_count", ("http_route", "/v1/nodes/heartbeat")) >= 5);
    }

    [Fact]
    public async Task Node_series_carry_reported_values_in_base_units()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("gauge"), region: "eu-west", runtime: "vllm");
        using (var hb = await node.HeartbeatAsync(ready: true, gpuUtil: 0.25, memUsedGb: 6.5, p95Ms: 320))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var m = await ScrapeAsync();
        var labels = new[] { ("node", node.NodeId), ("region", "eu-west"), ("runtime", "vllm") };

        Assert.Equal(1, m.Sum("dgon_node_status", [.. labels, ("phase", "active")]));
        Assert.Equal(0, m.Sum("dgon_node_status", [.. labels, ("phase", "pending")]));
        Assert.Equal(0.25, m.Sum("dgon_node_gpu_utilization_ratio", labels));
        Assert.Equal(6.5e9, m.Sum("dgon_node_memory_used_bytes", labels));
        Assert.Equal(0.32, m.Sum("dgon_node_latency_p95_seconds", labels), 9);
        var heartbeat = m.Sum("dgon_node_last_heartbeat_timestamp_seconds", labels);
        Assert.InRange(heartbeat, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.True(m.Sum("dgon_nodes", ("phase", "active")) >= 1);
    }

    [Fact]
    public async Task A_real_prometheus_scraping_the_api_sees_the_node_active()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("scrape"));
        await using var prometheus = await PrometheusServer.StartAsync(new Dictionary<string, Uri[]> { ["dgon-api"] = [fx.Api.BaseAddress] });
        var query = $"dgon_node_status{{node=\"{node.NodeId}\",phase=\"active\"}} == 1";

        IReadOnlyList<PromSample> result = [];
        try
        {
            await Eventually.Until(
                async () =>
                {
                    // Keep the node active (the fixture's grace period is 3 s) until a scrape has seen it so.
                    using (var hb = await node.HeartbeatAsync(ready: true))
                    {
                        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
                    }

                    return (result = await prometheus.QueryAsync(query)).Count == 1;
                },
                Patience,
                $"Prometheus: {query}");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + await prometheus.TargetsAsync(), e);
        }

        Assert.Equal("dgon-api", result[0].Labels["job"]);
        Assert.Equal(1, result[0].Value);
    }
}
