using System.Diagnostics.Metrics;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Observability.Exposition;
using Microsoft.Extensions.Logging;

namespace Dgon.Observability.Nodes;

/// <summary>
/// Where the per-node series come from: the process that owns node state (the API in standalone mode, reading
/// PostgreSQL; the leading operator in Kubernetes mode, reading its DgonNode informer cache).
/// </summary>
public interface INodeSnapshotSource
{
    /// <summary>All nodes now, or null when this process should not export node series (e.g. a standby operator).</summary>
    /// <exception cref="OperationCanceledException">The scrape was aborted.</exception>
    Task<IReadOnlyCollection<NodeRecord>?> GetNodesAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The node gauges (issue 4), polled at each scrape from a snapshot that <see cref="BeforeScrapeAsync"/> loads, so a
/// deleted node's series disappear from the next scrape. Labels <c>node</c>, <c>region</c>, <c>runtime</c> (the node id
/// is the only unbounded label value):
/// <c>dgon_node_status{phase}</c> (one series per phase, 1 for the current one, else 0, as kube-state-metrics does),
/// <c>dgon_node_last_heartbeat_timestamp_seconds</c> (unix seconds),
/// <c>dgon_node_gpu_utilization_ratio</c> (0–1), <c>dgon_node_memory_used_bytes</c> (seed 000 <c>mem_used_gb</c> × 10⁹),
/// <c>dgon_node_latency_p95_seconds</c> (<c>p95_ms</c> / 1000) — the last three only when the node reported them —
/// and the fleet gauge <c>dgon_nodes{phase}</c>.
/// When the source fails, the scrape carries no node series (they go stale in Prometheus) and a warning is logged.
/// </summary>
public sealed partial class NodeGauges : IScrapeHook
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Dgon.Nodes";

    private readonly INodeSnapshotSource _source;
    private readonly ILogger<NodeGauges> _logger;
    private IReadOnlyCollection<NodeRecord>? _snapshot;

    /// <summary>Creates the observable gauges on <paramref name="meters"/>.</summary>
    public NodeGauges(IMeterFactory meters, INodeSnapshotSource source, ILogger<NodeGauges> logger)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _source = source;
        _logger = logger;
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("dgon_node_status", () => StatusSeries(_snapshot), description: "Node lifecycle phase: 1 for the current phase, 0 for the others.");
        meter.CreateObservableGauge("dgon_node_last_heartbeat_timestamp_seconds", () => Series(_snapshot, n => n.LastHeartbeat?.ToUnixTimeMilliseconds() / 1000.0), unit: "s", description: "Unix time of the node's last valid heartbeat.");
        meter.CreateObservableGauge("dgon_node_gpu_utilization_ratio", () => Series(_snapshot, n => n.Metrics.GpuUtil), unit: "1", description: "GPU utilisation the node last reported (0-1).");
        meter.CreateObservableGauge("dgon_node_memory_used_bytes", () => Series(_snapshot, n => n.Metrics.MemUsedGb * 1e9), unit: "By", description: "Memory in use the node last reported.");
        meter.CreateObservableGauge("dgon_node_latency_p95_seconds", () => Series(_snapshot, n => n.Metrics.P95Ms / 1000.0), unit: "s", description: "95th percentile inference latency the node last reported.");
        meter.CreateObservableGauge("dgon_nodes", () => FleetSeries(_snapshot), description: "Nodes by lifecycle phase.");
    }

    /// <inheritdoc />
    public async Task BeforeScrapeAsync(CancellationToken cancellationToken)
    {
        try
        {
            _snapshot = await _source.GetNodesAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _snapshot = null;
            LogSourceFailed(e);
        }
    }

    /// <summary><c>dgon_node_status</c> measurements: four per node (one per phase).</summary>
    internal static IEnumerable<Measurement<int>> StatusSeries(IEnumerable<NodeRecord>? nodes)
    {
        foreach (var node in nodes ?? [])
        {
            foreach (var phase in NodePhases.All)
            {
                yield return new Measurement<int>(phase == node.Phase ? 1 : 0, NodeTags(node, phase));
            }
        }
    }

    /// <summary>One measurement per node that has a value.</summary>
    internal static IEnumerable<Measurement<double>> Series(IEnumerable<NodeRecord>? nodes, Func<NodeRecord, double?> value)
    {
        foreach (var node in nodes ?? [])
        {
            if (value(node) is { } v)
            {
                yield return new Measurement<double>(v, NodeTags(node, null));
            }
        }
    }

    /// <summary><c>dgon_nodes</c>: a count for every phase (0 included) when there is a snapshot.</summary>
    internal static IEnumerable<Measurement<int>> FleetSeries(IReadOnlyCollection<NodeRecord>? nodes)
    {
        if (nodes is null)
        {
            yield break;
        }

        foreach (var phase in NodePhases.All)
        {
            yield return new Measurement<int>(nodes.Count(n => n.Phase == phase), new KeyValuePair<string, object?>("phase", phase.ToWire()));
        }
    }

    private static KeyValuePair<string, object?>[] NodeTags(NodeRecord node, NodePhase? phase)
    {
        var tags = new List<KeyValuePair<string, object?>>(4)
        {
            new("node", node.Id),
            new("region", node.Region),
            new("runtime", node.Runtime.ToWire()),
        };
        if (phase is { } p)
        {
            tags.Add(new("phase", p.ToWire()));
        }

        return [.. tags];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node metrics source failed; this scrape has no node series")]
    private partial void LogSourceFailed(Exception error);
}
