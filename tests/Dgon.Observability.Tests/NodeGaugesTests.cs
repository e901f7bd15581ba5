using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Observability.Nodes;
using Dgon.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Scrape = Dgon.Testing.Exposition;

namespace Dgon.Observability.Tests;

/// <summary>The node gauges through prometheus-net and the DI registration, fed by an in-memory source.</summary>
public sealed class NodeGaugesTests : IAsyncDisposable
{
    private readonly FakeSource _source = new();
    private readonly ServiceProvider _services;
    private readonly HostMetrics _metrics;

    public NodeGaugesTests()
    {
        var services = new ServiceCollection();
        services.AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<INodeSnapshotSource>(_source);
        services.AddNodeGauges<FakeSource>();
        services.AddPrometheusMetrics("test", typeof(NodeGaugesTests).Assembly);
        _services = services.BuildServiceProvider();
        _metrics = _services.GetRequiredService<HostMetrics>();
        _services.GetRequiredService<NodeGauges>();
    }

    public async ValueTask DisposeAsync() => await _services.DisposeAsync();

    private Task<string> ScrapeAsync() => _metrics.CollectAsync();

    private async Task<Scrape> ParsedAsync() => Scrape.Parse(await ScrapeAsync());

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

        var m = await ParsedAsync();

        var labels = new[] { ("node", "mac-1"), ("region", "eu-central"), ("runtime", "ollama") };
        Assert.Equal(1, Assert.Single(m.Find("dgon_node_status", [.. labels, ("phase", "active")])).Value);
        foreach (var other in new[] { "pending", "offline", "quarantine" })
        {
            Assert.Equal(0, Assert.Single(m.Find("dgon_node_status", [.. labels, ("phase", other)])).Value);
        }

        Assert.Equal(4, m.Find("dgon_node_status").Count());
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

        var m = await ParsedAsync();

        var labels = new[] { ("node", "full"), ("region", "eu-central"), ("runtime", "ollama") };
        Assert.Equal(0.4, Assert.Single(m.Find("dgon_node_gpu_utilization_ratio", labels)).Value);
        Assert.Equal(6e9, Assert.Single(m.Find("dgon_node_memory_used_bytes", labels)).Value);
        Assert.Equal(0.32, Assert.Single(m.Find("dgon_node_latency_p95_seconds", labels)).Value);
        Assert.Equal(1763700000.25, Assert.Single(m.Find("dgon_node_last_heartbeat_timestamp_seconds", labels)).Value);
        var bare = m.Samples.Where(s => s.Labels.GetValueOrDefault("node") == "bare").ToList();
        Assert.Equal(4, bare.Count); // only its four dgon_node_status series
        Assert.All(bare, s => Assert.Equal("dgon_node_status", s.Name));
    }

    [Fact]
    public async Task Fleet_gauge_counts_nodes_by_phase_including_zeroes()
    {
        _source.Nodes = [Node("a", NodePhase.Active), Node("b", NodePhase.Active), Node("c", NodePhase.Offline)];

        var m = await ParsedAsync();

        Assert.Equal(2, Assert.Single(m.Find("dgon_nodes", ("phase", "active"))).Value);
        Assert.Equal(1, Assert.Single(m.Find("dgon_nodes", ("phase", "offline"))).Value);
        Assert.Equal(0, Assert.Single(m.Find("dgon_nodes", ("phase", "pending"))).Value);
        Assert.Equal(0, Assert.Single(m.Find("dgon_nodes", ("phase", "quarantine"))).Value);
    }

    [Fact]
    public async Task A_deleted_node_disappears_from_the_next_scrape()
    {
        _source.Nodes = [Node("gone", NodePhase.Active, new NodeMetrics(0.1, 1, 10), DateTimeOffset.UtcNow), Node("kept", NodePhase.Active)];
        Assert.Equal(8, (await ParsedAsync()).Samples.Count(s => s.Labels.GetValueOrDefault("node") == "gone")); // 4 status + 4 values

        _source.Nodes = [Node("kept", NodePhase.Active)];
        var after = await ParsedAsync();

        Assert.DoesNotContain(after.Samples, s => s.Labels.GetValueOrDefault("node") == "gone");
        Assert.Equal(4, after.Samples.Count(s => s.Labels.GetValueOrDefault("node") == "kept"));
        Assert.Equal(1, Assert.Single(after.Find("dgon_nodes", ("phase", "active"))).Value);
    }

    [Fact]
    public async Task A_node_that_changes_phase_region_or_reported_values_shows_only_its_current_series()
    {
        var heartbeat = DateTimeOffset.FromUnixTimeSeconds(1_763_700_000);
        _source.Nodes = [Node("mac-1", NodePhase.Pending, new NodeMetrics(0.4, 6, 320), heartbeat)];
        Assert.Equal(8, (await ParsedAsync()).Samples.Count(s => s.Labels.GetValueOrDefault("node") == "mac-1"));

        _source.Nodes = [Node("mac-1", NodePhase.Active, new NodeMetrics(0.7, null, null), heartbeat.AddSeconds(10)) with { Region = "us-east" }];
        var m = await ParsedAsync();

        var mine = m.Samples.Where(s => s.Labels.GetValueOrDefault("node") == "mac-1").ToList();
        Assert.All(mine, s => Assert.Equal("us-east", s.Labels["region"]));
        Assert.Equal(6, mine.Count); // 4 status, heartbeat, GPU: memory and p95 are no longer reported
        var labels = new[] { ("node", "mac-1"), ("region", "us-east"), ("runtime", "ollama") };
        Assert.Equal(1, Assert.Single(m.Find("dgon_node_status", [.. labels, ("phase", "active")])).Value);
        Assert.Equal(0, Assert.Single(m.Find("dgon_node_status", [.. labels, ("phase", "pending")])).Value);
        Assert.Equal(0.7, Assert.Single(m.Find("dgon_node_gpu_utilization_ratio", labels)).Value);
        Assert.Equal(1763700010, Assert.Single(m.Find("dgon_node_last_heartbeat_timestamp_seconds", labels)).Value);
        Assert.Empty(m.Find("dgon_node_memory_used_bytes"));
        Assert.Empty(m.Find("dgon_node_latency_p95_seconds"));
    }

    [Fact]
    public async Task A_large_fleet_that_loses_half_its_nodes_shows_exactly_the_remaining_ones()
    {
        var fleet = Enumerable.Range(0, 2_000)
            .Select(i => Node($"n-{i}", NodePhases.All[i % 4], new NodeMetrics(i / 2000.0, i, i), DateTimeOffset.FromUnixTimeSeconds(i)))
            .ToList();
        _source.Nodes = fleet;
        Assert.Equal(2_000 * 8, (await ParsedAsync()).Samples.Count(s => s.Name.StartsWith("dgon_node_", StringComparison.Ordinal)));

        _source.Nodes = fleet.Where((_, i) => i % 2 == 1).ToList();
        var m = await ParsedAsync();

        var nodeSamples = m.Samples.Where(s => s.Name.StartsWith("dgon_node_", StringComparison.Ordinal)).ToList();
        Assert.Equal(1_000 * 8, nodeSamples.Count);
        Assert.All(nodeSamples, s => Assert.Equal(1, int.Parse(s.Labels["node"].AsSpan(2), System.Globalization.CultureInfo.InvariantCulture) % 2));
        Assert.Equal(1999.0, Assert.Single(m.Find("dgon_node_memory_used_bytes", ("node", "n-1999"))).Value / 1e9);
        Assert.Equal(500, Assert.Single(m.Find("dgon_nodes", ("phase", "active"))).Value);   // i % 4 == 1
        Assert.Equal(0, Assert.Single(m.Find("dgon_nodes", ("phase", "pending"))).Value);    // i % 4 == 0: all removed
        Assert.Equal(500, Assert.Single(m.Find("dgon_nodes", ("phase", "quarantine"))).Value); // i % 4 == 3
    }

    [Fact]
    public async Task After_a_failed_or_missing_snapshot_the_next_one_shows_exactly_its_nodes()
    {
        var heartbeat = DateTimeOffset.FromUnixTimeSeconds(1_763_700_000);
        _source.Nodes = [Node("mac-1", NodePhase.Active, new NodeMetrics(0.4, 6, 320), heartbeat), Node("gone", NodePhase.Active)];
        await ParsedAsync();
        _source.Failure = new InvalidOperationException("database down");
        var failed = await ParsedAsync();
        Assert.Empty(failed.Find("dgon_nodes"));
        Assert.DoesNotContain(failed.Samples, s => s.Name.StartsWith("dgon_node_", StringComparison.Ordinal));

        _source.Failure = null;
        _source.Nodes = [Node("mac-1", NodePhase.Offline, new NodeMetrics(0.4, null, 320), heartbeat)];
        var m = await ParsedAsync();

        Assert.DoesNotContain(m.Samples, s => s.Labels.GetValueOrDefault("node") == "gone");
        Assert.Equal(7, m.Samples.Count(s => s.Labels.GetValueOrDefault("node") == "mac-1")); // memory no longer reported
        Assert.Equal(1, Assert.Single(m.Find("dgon_node_status", ("node", "mac-1"), ("phase", "offline"))).Value);
        Assert.Equal(0, Assert.Single(m.Find("dgon_nodes", ("phase", "active"))).Value);
        Assert.Equal(4, m.Find("dgon_nodes").Count());

        _source.Nodes = null; // a standby operator
        Assert.DoesNotContain((await ParsedAsync()).Samples, s => s.Name.StartsWith("dgon_node", StringComparison.Ordinal));
        _source.Nodes = [Node("mac-1", NodePhase.Active)];
        Assert.Equal(4, (await ParsedAsync()).Samples.Count(s => s.Labels.GetValueOrDefault("node") == "mac-1"));
    }

    [Fact]
    public async Task No_snapshot_or_a_failing_source_exports_no_node_series_and_the_scrape_still_succeeds()
    {
        _source.Nodes = null; // e.g. a standby operator
        var standby = await ParsedAsync();
        Assert.DoesNotContain(standby.Samples, s => s.Name.StartsWith("dgon_node", StringComparison.Ordinal));

        _source.Nodes = [Node("x", NodePhase.Active)];
        Assert.Contains((await ParsedAsync()).Samples, s => s.Name.StartsWith("dgon_node", StringComparison.Ordinal));
        _source.Failure = new InvalidOperationException("database down");
        var failed = await ParsedAsync();
        Assert.DoesNotContain(failed.Samples, s => s.Name.StartsWith("dgon_node", StringComparison.Ordinal));
        Assert.Contains(failed.Samples, s => s.Name == HostMetrics.BuildInfoName); // the scrape itself succeeded
    }

    [Fact]
    public async Task Node_exposition_passes_promtool()
    {
        _source.Nodes = [Node("mac-1", NodePhase.Active, new NodeMetrics(0.4, 6, 320), DateTimeOffset.UtcNow), Node("mac-2", NodePhase.Quarantine)];
        var text = await ScrapeAsync();
        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, $"promtool: {output}\n{text}");
    }

    [Fact]
    public async Task Above_the_limit_only_the_fleet_gauge_is_exported_and_the_node_series_return_below_it()
    {
        var source = new FakeSource { Nodes = [Node("a", NodePhase.Active), Node("b", NodePhase.Active), Node("c", NodePhase.Offline)] };
        var services = new ServiceCollection();
        services.AddSingleton(typeof(Microsoft.Extensions.Logging.ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<INodeSnapshotSource>(source);
        services.AddSingleton(new NodeGaugeOptions { MaxNodes = 2 });
        services.AddNodeGauges<FakeSource>();
        services.AddPrometheusMetrics("test", typeof(NodeGaugesTests).Assembly);
        await using var provider = services.BuildServiceProvider();
        var metrics = provider.GetRequiredService<HostMetrics>();
        provider.GetRequiredService<NodeGauges>();

        foreach (var _ in Enumerable.Range(0, 2))
        {
            var limited = Scrape.Parse(await metrics.CollectAsync());
            Assert.Empty(limited.Find("dgon_node_status"));
            Assert.Empty(limited.Find("dgon_node_last_heartbeat_timestamp_seconds"));
            Assert.Equal(2, Assert.Single(limited.Find("dgon_nodes", ("phase", "active"))).Value);
            Assert.Equal(1, Assert.Single(limited.Find("dgon_nodes", ("phase", "offline"))).Value);
            Assert.Equal(1, Assert.Single(limited.Find("dgon_metrics_node_series_limited")).Value);
        }

        source.Nodes = [Node("a", NodePhase.Active), Node("b", NodePhase.Pending)];
        await metrics.CollectAsync(); // still starts limited, finds the fleet back under the limit
        var back = Scrape.Parse(await metrics.CollectAsync());
        Assert.Equal(8, back.Find("dgon_node_status").Count());
        Assert.Equal(0, Assert.Single(back.Find("dgon_metrics_node_series_limited")).Value);
        Assert.Equal(1, Assert.Single(back.Find("dgon_nodes", ("phase", "pending"))).Value);
    }

    private sealed class FakeSource : INodeSnapshotSource
    {
        public IReadOnlyCollection<NodeRecord>? Nodes { get; set; }

        public Exception? Failure { get; set; }

        public ValueTask<bool> VisitNodesAsync(Action<NodeRecord> visit, CancellationToken cancellationToken)
        {
            if (Failure is { } e)
            {
                return ValueTask.FromException<bool>(e);
            }

            foreach (var node in Nodes ?? [])
            {
                visit(node);
            }

            return ValueTask.FromResult(Nodes is not null);
        }
    }
}
