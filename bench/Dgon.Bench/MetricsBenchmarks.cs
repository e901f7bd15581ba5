using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Observability;
using Dgon.Observability.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dgon.Bench;

/// <summary>
/// The metrics exporter (prometheus-net over the host's registry, issue 4): one <c>/metrics</c> scrape with N nodes (8
/// series per node: 4 phases, last heartbeat, GPU, memory, p95) from an in-memory source, in steady state
/// (<see cref="Scrape"/>) and on a new exporter (<see cref="FirstScrape"/>), and the cost a counter increment pays
/// while the exporter listens (every heartbeat pays it once).
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private ServiceProvider _services = null!;
    private HostMetrics _metrics = null!;
    private Counter<long> _counter = null!;
    private List<NodeRecord> _fleet = null!;
    private ServiceProvider? _fresh;

    /// <summary>Nodes in the snapshot.</summary>
    [Params(1_000, 10_000, 100_000)]
    public int Nodes { get; set; }

    /// <summary>Builds the exporter with node gauges over an in-memory fleet.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _fleet = Enumerable.Range(0, Nodes).Select(i => new NodeRecord
        {
            Id = $"node-{i:D6}",
            Region = $"region-{i % 8}",
            Runtime = NodeRuntime.Ollama,
            Phase = NodePhases.All[i % 4],
            LastHeartbeat = DateTimeOffset.UtcNow,
            Metrics = new NodeMetrics(0.5, 12.5, 320),
            CreatedAt = DateTimeOffset.UnixEpoch,
            RegisteredAt = DateTimeOffset.UnixEpoch,
        }).ToList();
        _services = Build(_fleet);
        _metrics = _services.GetRequiredService<HostMetrics>();
        _counter = _services.GetRequiredService<IMeterFactory>().Create("Bench").CreateCounter<long>("bench_heartbeats_total");
    }

    /// <summary>A new exporter that has never been scraped, for <see cref="FirstScrape"/>.</summary>
    [IterationSetup(Target = nameof(FirstScrape))]
    public void NewExporter() => _fresh = Build(_fleet);

    /// <summary>Disposes the exporter of <see cref="FirstScrape"/>.</summary>
    [IterationCleanup(Target = nameof(FirstScrape))]
    public void DisposeExporter() => _fresh?.Dispose();

    /// <summary>Disposes the exporter and meters.</summary>
    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    /// <summary>One full scrape written to a null stream.</summary>
    [Benchmark]
    public Task Scrape() => _metrics.Registry.CollectAndExportAsTextAsync(Stream.Null, CancellationToken.None);

    /// <summary>
    /// The first scrape of a new exporter (start-up, or a new leader): prometheus-net creates every child and caches
    /// its serialized labels.
    /// </summary>
    [Benchmark]
    public Task FirstScrape() => _fresh!.GetRequiredService<HostMetrics>().Registry.CollectAndExportAsTextAsync(Stream.Null, CancellationToken.None);

    /// <summary>One counter increment with one tag (as <c>dgon_heartbeats_total{result}</c>).</summary>
    [Benchmark]
    public void CounterAdd() => _counter.Add(1, new KeyValuePair<string, object?>("result", "accepted"));

    private static ServiceProvider Build(List<NodeRecord> fleet)
    {
        var services = new ServiceCollection();
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<INodeSnapshotSource>(new FixedFleet(fleet));
        // Measures the per-node path at every size (the product leaves it out above 10,000 nodes by default).
        services.AddSingleton(new NodeGaugeOptions { MaxNodes = int.MaxValue });
        services.AddNodeGauges<FixedFleet>();
        services.AddPrometheusMetrics("bench", typeof(MetricsBenchmarks).Assembly, "Bench");
        var provider = services.BuildServiceProvider();
        provider.GetRequiredService<NodeGauges>();
        return provider;
    }

    // An in-memory fleet, visited without copying (as the in-memory node table would).
    private sealed class FixedFleet(List<NodeRecord> nodes) : INodeSnapshotSource
    {
        public ValueTask<bool> VisitNodesAsync(Action<NodeRecord> visit, CancellationToken cancellationToken)
        {
            foreach (var node in nodes)
            {
                visit(node);
            }

            return ValueTask.FromResult(true);
        }
    }
}
