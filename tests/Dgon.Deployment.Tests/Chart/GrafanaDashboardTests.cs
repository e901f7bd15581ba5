using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dgon.Testing;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>charts/dgon/dashboards/dgon.json: a Grafana dashboard model whose PromQL uses only the contract's metrics.</summary>
public sealed partial class GrafanaDashboardTests
{
    /// <summary>The metric names the API and the operator export (issue 4 contract, "Metric names").</summary>
    private static readonly HashSet<string> ContractMetrics =
    [
        "dgon_node_status", "dgon_node_last_heartbeat_timestamp_seconds", "dgon_node_gpu_utilization_ratio",
        "dgon_node_memory_used_bytes", "dgon_node_latency_p95_seconds", "dgon_nodes",
        "dgon_heartbeats_total", "dgon_receipts_total", "dgon_hmac_failures_total", "dgon_kubernetes_status_writes_total",
        "dgon_reconcile_total", "dgon_reconcile_errors_total", "dgon_operator_leader",
        "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_sum", "http_server_request_duration_seconds_count",
        "dgon_reconcile_duration_seconds_bucket", "dgon_reconcile_duration_seconds_sum", "dgon_reconcile_duration_seconds_count",
        // Issue 13: the inference gateway (api/Inference/GatewayMetrics.cs).
        "dgon_gateway_request_duration_seconds_bucket", "dgon_gateway_request_duration_seconds_count", "dgon_gateway_time_to_first_token_seconds_bucket",
        "dgon_gateway_tokens_total", "dgon_gateway_in_flight", "dgon_gateway_routing_total", "dgon_gateway_receipts_total",
    ];

    private static readonly HashSet<string> PromQlWords =
    [
        "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan",
    ];

    private static JsonObject Dashboard() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Helm.ChartDir, "dashboards", "dgon.json")))!.AsObject();

    private static List<JsonObject> Panels(JsonObject dashboard) =>
        dashboard["panels"]!.AsArray().Select(p => p!.AsObject())
            .SelectMany(p => new[] { p }.Concat(p["panels"]?.AsArray().Select(c => c!.AsObject()) ?? []))
            .ToList();

    private static List<string> Expressions(JsonObject dashboard) =>
        Panels(dashboard).SelectMany(p => p["targets"]?.AsArray() ?? []).Select(t => Str(t!["expr"])!).ToList();

    [Fact]
    public void It_is_a_grafana_dashboard_model_with_a_prometheus_datasource_variable()
    {
        var dashboard = Dashboard();

        Assert.Equal("dgon-console", Str(dashboard["uid"]));
        Assert.True(dashboard["schemaVersion"]!.GetValue<long>() >= 36);
        var variable = Assert.Single(dashboard["templating"]!["list"]!.AsArray(), v => Str(v!["type"]) == "datasource")!;
        Assert.Equal("prometheus", Str(variable["query"]));
        var reference = "${" + Str(variable["name"]) + "}";

        var panels = Panels(dashboard);
        Assert.Equal(panels.Count, panels.Select(p => p["id"]!.GetValue<long>()).Distinct().Count());
        foreach (var panel in panels.Where(p => Str(p["type"]) != "row"))
        {
            var title = Str(panel["title"]);
            Assert.Equal(reference, Str(panel["datasource"]?["uid"]));
            var targets = panel["targets"]?.AsArray() ?? throw new Xunit.Sdk.XunitException($"panel {title} has no targets");
            Assert.NotEmpty(targets);
            Assert.All(targets, t => Assert.Equal(reference, Str(t!["datasource"]!["uid"])));
            Assert.All(targets, t => Assert.False(string.IsNullOrWhiteSpace(Str(t!["expr"])), $"panel {title}: empty expr"));
        }
    }

    [Fact]
    public void Panels_do_not_overlap_on_the_grid()
    {
        var boxes = Dashboard()["panels"]!.AsArray().Select(p => (
            Title: Str(p!["title"]),
            X: p["gridPos"]!["x"]!.GetValue<int>(), Y: p["gridPos"]!["y"]!.GetValue<int>(),
            W: p["gridPos"]!["w"]!.GetValue<int>(), H: p["gridPos"]!["h"]!.GetValue<int>())).ToList();

        for (var i = 0; i < boxes.Count; i++)
        {
            var a = boxes[i];
            Assert.True(a.X >= 0 && a.X + a.W <= 24, $"panel {a.Title} leaves the 24-column grid");
            foreach (var b in boxes.Skip(i + 1))
            {
                var overlap = a.X < b.X + b.W && b.X < a.X + a.W && a.Y < b.Y + b.H && b.Y < a.Y + a.H;
                Assert.False(overlap, $"panels {a.Title} and {b.Title} overlap");
            }
        }
    }

    [Fact]
    public void Queries_use_only_metric_names_of_the_contract()
    {
        var used = new HashSet<string>();
        foreach (var expr in Expressions(Dashboard()))
        {
            foreach (var metric in MetricNames(expr))
            {
                Assert.True(ContractMetrics.Contains(metric), $"`{metric}` in `{expr}` is not a metric of the contract");
                used.Add(metric);
            }
        }

        // The panels the issue asks for: each metric family is shown somewhere.
        string[] required =
        [
            "dgon_nodes", "dgon_node_status", "dgon_heartbeats_total", "dgon_hmac_failures_total", "dgon_receipts_total",
            "http_server_request_duration_seconds_bucket", "dgon_reconcile_total", "dgon_reconcile_errors_total",
            "dgon_reconcile_duration_seconds_bucket", "dgon_kubernetes_status_writes_total", "dgon_node_gpu_utilization_ratio",
            "dgon_node_memory_used_bytes", "dgon_node_last_heartbeat_timestamp_seconds",
        ];
        Assert.Empty(required.Except(used));
    }

    [Fact]
    public void Metric_name_extraction_finds_names_and_skips_labels_and_functions()
    {
        // The extraction the test above relies on: a typo in a metric name must show up.
        Assert.Equal(
            ["http_server_request_duration_seconds_bucket"],
            MetricNames("histogram_quantile(0.95, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{http_route!~\"/metrics\"}[$__rate_interval])))"));
        Assert.Equal(["dgon_heartbeat_total"], MetricNames("sum by (result) (rate(dgon_heartbeat_total[5m]))"));
        Assert.Equal(["dgon_node_last_heartbeat_timestamp_seconds"], MetricNames("time() - max by (node) (dgon_node_last_heartbeat_timestamp_seconds)"));
        Assert.Equal(["dgon_node_status"], MetricNames("max by (node, phase) (dgon_node_status == 1)"));
    }

    [Fact]
    public async Task Queries_parse_as_promql()
    {
        var rules = new StringBuilder("groups:\n  - name: dgon-dashboard\n    rules:\n");
        var expressions = Expressions(Dashboard());
        for (var i = 0; i < expressions.Count; i++)
        {
            var expr = expressions[i].Replace("$__rate_interval", "5m", StringComparison.Ordinal);
            rules.Append(System.Globalization.CultureInfo.InvariantCulture, $"      - record: dgon:panel_{i}\n        expr: {JsonValue.Create(expr).ToJsonString()}\n");
        }

        // Fails (promtool missing) rather than passing without a check.
        var (exitCode, output) = await Promtool.CheckRulesAsync(rules.ToString());
        Assert.True(exitCode == 0, $"promtool rejected a dashboard query:\n{output}");
    }

    /// <summary>
    /// Metric names in a PromQL expression: identifiers left after removing label matchers {…}, ranges […], string
    /// literals and by/without (…) groupings, that are neither function calls nor PromQL keywords.
    /// </summary>
    private static List<string> MetricNames(string expr)
    {
        var stripped = StringLiteral().Replace(expr, " ");
        stripped = Braces().Replace(stripped, " ");
        stripped = Brackets().Replace(stripped, " ");
        stripped = Grouping().Replace(stripped, " ");
        return Identifier().Matches(stripped)
            .Where(m => !m.Groups["call"].Success && !PromQlWords.Contains(m.Groups["name"].Value.ToLowerInvariant()))
            .Select(m => m.Groups["name"].Value)
            .Distinct()
            .ToList();
    }

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Brackets();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"(?<![\w.])(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<call>\s*\()?")]
    private static partial Regex Identifier();
}
