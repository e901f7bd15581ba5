using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Observability.Exposition;
using Dgon.Observability.Nodes;
using Dgon.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dgon.Observability.Tests;

/// <summary>The node gauges through the real exporter and DI registration, fed by an in-memory source.</summary>
public sealed class NodeGaugesTests : IAsyncDisposable
{
    private readonly FakeSource _source = new();
    private readonly ServiceProvider _services;
    private readonly IMetricsExporter _exporter;

    public NodeGaugesTests()
    {
        var services = new ServiceCollection();
        services.AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<INodeSnapshotSource>(_source);
        services.AddNodeGauges<FakeSource>();
        services.AddPrometheusMetrics(NodeGauges.MeterName);
        _services = services.BuildServiceProvider();
        _exporter = _services.GetRequiredService<IMetricsExporter>();
    }

    public async ValueTask DisposeAsync() => await _services.DisposeAsync();

    private async Task<string> ScrapeAsync()
    {
        using var output = new MemoryStream();
        await _exporter.WriteAsync(output, CancellationToken.None);
        return System.Text.Encoding.UTF8.GetString(output.ToArray());
    }

    private static NodeRecord Node(string id, NodePhase phase, NodeMetrics? metrics = null, DateTimeOffset? lastHeartbeat = null) => new()
    {
        Id = id,
        Region = "eu-central",
        Runtime = NodeRuntime.Ollama,
        Phase = phase,
        LastHeartbeat = lastHeartbeat,
        Metrics = metrics ?? NodeMetrics.None,
        CreatedAt = DateTimeOffset.UnixEpoch,
        RegisteredAt = DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public async Task Each_node_has_one_status_series_per_phase_with_1_for_the_current_one()
    {
        _source.Nodes = [Node("mac-1", NodePhase.Active)];

        var text = await ScrapeAsync();

        Assert.Contains("dgon_node_status{node=\"mac-1\",phase=\"active\",region=\"eu-central\",runtime=\"ollama\"} 1\n", text, StringComparison.Ordinal);
        foreach (var other in new[] { "pending", "offline", "quarantine" })
        {
            Assert.Contains($"dgon_node_status{{node=\"mac-1\",phase=\"{other}\",region=\"eu-central\",runtime=\"ollama\"}} 0\n", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Reported_values_are_in_base_units_and_unreported_ones_are_absent()
    {
        var heartbeat = DateTimeOffset.FromUnixTimeMilliseconds(1_763_700_000_250);
        _source.Nodes =
        [
            Node("full", NodePhase.Active, new NodeMetrics(0.4, 6, 320), heartbeat),
            Node("bare", NodePhase.Pending, NodeMetrics.None, null),
        ];

        var text = await ScrapeAsync();

        const string Labels = "{node=\"full\",region=\"eu-central\",runtime=\"ollama\"}";
        Assert.Contains($"dgon_node_gpu_utilization_ratio{Labels} 0.4\n", text, StringComparison.Ordinal);
        Assert.Contains($"dgon_node_memory_used_bytes{Labels} 6000000000\n", text, StringComparison.Ordinal);
        Assert.Contains($"dgon_node_latency_p95_seconds{Labels} 0.32\n", text, StringComparison.Ordinal);
        Assert.Contains($"dgon_node_last_heartbeat_timestamp_seconds{Labels} 1763700000.25\n", text, StringComparison.Ordinal);
        var bareLines = text.Split('\n').Where(l => l.Contains("node=\"bare\"", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, bareLines.Count); // only its four dgon_node_status series
        Assert.All(bareLines, l => Assert.StartsWith("dgon_node_status{", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Fleet_gauge_counts_nodes_by_phase_including_zeroes()
    {
        _source.Nodes = [Node("a", NodePhase.Active), Node("b", NodePhase.Active), Node("c", NodePhase.Offline)];

        var text = await ScrapeAsync();

        Assert.Contains("dgon_nodes{phase=\"active\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("dgon_nodes{phase=\"offline\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("dgon_nodes{phase=\"pending\"} 0\n", text, StringComparison.Ordinal);
        Assert.Contains("dgon_nodes{phase=\"quarantine\"} 0\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_node_disappears_from_the_next_scrape()
    {
        _source.Nodes = [Node("gone", NodePhase.Active, new NodeMetrics(0.1, 1, 10)), Node("kept", NodePhase.Active)];
        Assert.Contains("node=\"gone\"", await ScrapeAsync(), StringComparison.Ordinal);

        _source.Nodes = [Node("kept", NodePhase.Active)];
        var after = await ScrapeAsync();

        Assert.DoesNotContain("node=\"gone\"", after, StringComparison.Ordinal);
        Assert.Contains("node=\"kept\"", after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_snapshot_or_a_failing_source_exports_no_node_series_and_the_scrape_still_succeeds()
    {
        _source.Nodes = null; // e.g. a standby operator
        var standby = await ScrapeAsync();
        Assert.DoesNotContain("dgon_node", standby, StringComparison.Ordinal);

        _source.Nodes = [Node("x", NodePhase.Active)];
        await ScrapeAsync();
        _source.Failure = new InvalidOperationException("database down");
        var failed = await ScrapeAsync();
        Assert.DoesNotContain("dgon_node", failed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_exposition_passes_promtool()
    {
        _source.Nodes = [Node("mac-1", NodePhase.Active, new NodeMetrics(0.4, 6, 320), DateTimeOffset.UtcNow), Node("mac-2", NodePhase.Quarantine)];
        var text = await ScrapeAsync();
        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, $"promtool: {output}\n{text}");
    }

    private sealed class FakeSource : INodeSnapshotSource
    {
        public IReadOnlyCollection<NodeRecord>? Nodes { get; set; }

        public Exception? Failure { get; set; }

        public Task<IReadOnlyCollection<NodeRecord>?> GetNodesAsync(CancellationToken cancellationToken) =>
            Failure is { } e ? Task.FromException<IReadOnlyCollection<NodeRecord>?>(e) : Task.FromResult(Nodes);
    }
}
