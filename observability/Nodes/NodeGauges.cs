using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Microsoft.Extensions.Logging;
using Prometheus;

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
/// The node gauges (issue 4): prometheus-net gauges on the host's registry, refreshed from a snapshot of
/// <see cref="INodeSnapshotSource"/> by a before-collect callback, so each scrape shows the nodes of that moment and a
/// deleted node's series disappear from the next scrape. Labels <c>node</c>, <c>region</c>, <c>runtime</c> (the node
/// id is the only unbounded label value):
/// <c>dgon_node_status{phase}</c> (one series per phase, 1 for the current one, else 0, as kube-state-metrics does),
/// <c>dgon_node_last_heartbeat_timestamp_seconds</c> (unix seconds),
/// <c>dgon_node_gpu_utilization_ratio</c> (0–1), <c>dgon_node_memory_used_bytes</c> (seed 000 <c>mem_used_gb</c> × 10⁹),
/// <c>dgon_node_latency_p95_seconds</c> (<c>p95_ms</c> / 1000) — the last three only when the node reported them —
/// and the fleet gauge <c>dgon_nodes{phase}</c>.
/// When the source fails, or returns null (a standby operator), the scrape carries no node series (they go stale in
/// Prometheus); a failure is logged as a warning.
/// </summary>
public sealed partial class NodeGauges
{
    private static readonly string[] NodeLabels = ["node", "region", "runtime"];

    private readonly INodeSnapshotSource _source;
    private readonly ILogger<NodeGauges> _logger;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private readonly Gauge _status;
    private readonly Gauge _lastHeartbeat;
    private readonly Gauge _gpuUtilization;
    private readonly Gauge _memoryUsed;
    private readonly Gauge _latencyP95;
    private readonly Gauge _nodes;

    /// <summary>Creates the gauges in <paramref name="metrics"/>' registry and refreshes them before each scrape.</summary>
    public NodeGauges(HostMetrics metrics, INodeSnapshotSource source, ILogger<NodeGauges> logger)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _source = source;
        _logger = logger;
        var f = metrics.Factory;
        _status = f.CreateGauge("dgon_node_status", "Node lifecycle phase: 1 for the current phase, 0 for the others.", [.. NodeLabels, "phase"]);
        _lastHeartbeat = f.CreateGauge("dgon_node_last_heartbeat_timestamp_seconds", "Unix time of the node's last valid heartbeat.", NodeLabels);
        _gpuUtilization = f.CreateGauge("dgon_node_gpu_utilization_ratio", "GPU utilisation the node last reported (0-1).", NodeLabels);
        _memoryUsed = f.CreateGauge("dgon_node_memory_used_bytes", "Memory in use the node last reported.", NodeLabels);
        _latencyP95 = f.CreateGauge("dgon_node_latency_p95_seconds", "95th percentile inference latency the node last reported.", NodeLabels);
        _nodes = f.CreateGauge("dgon_nodes", "Nodes by lifecycle phase.", ["phase"]);
        metrics.Registry.AddBeforeCollectCallback(RefreshAsync);
    }

    /// <summary>Loads the snapshot and makes the gauges show exactly its series (one refresh at a time).</summary>
    /// <exception cref="OperationCanceledException">The scrape was aborted.</exception>
    internal async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            IReadOnlyCollection<NodeRecord>? nodes;
            try
            {
                nodes = await _source.GetNodesAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                nodes = null;
                LogSourceFailed(e);
            }

            var all = nodes ?? [];
            Show(_status, all.SelectMany(n => NodePhases.All.Select(p => (Labels(n, p), p == n.Phase ? 1.0 : 0.0))));
            Show(_lastHeartbeat, Values(all, n => n.LastHeartbeat?.ToUnixTimeMilliseconds() / 1000.0));
            Show(_gpuUtilization, Values(all, n => n.Metrics.GpuUtil));
            Show(_memoryUsed, Values(all, n => n.Metrics.MemUsedGb * 1e9));
            Show(_latencyP95, Values(all, n => n.Metrics.P95Ms / 1000.0));
            Show(_nodes, nodes is null ? [] : NodePhases.All.Select(p => (new[] { p.ToWire() }, (double)nodes.Count(n => n.Phase == p))));
        }
        finally
        {
            _refresh.Release();
        }
    }

    // Sets every series of the snapshot and removes the gauge's other series (deleted nodes).
    private static void Show(Gauge gauge, IEnumerable<(string[] Labels, double Value)> series)
    {
        var shown = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (labels, value) in series)
        {
            gauge.WithLabels(labels).Set(value);
            shown.Add(string.Join('\0', labels));
        }

        foreach (var labels in gauge.GetAllLabelValues().ToList())
        {
            if (!shown.Contains(string.Join('\0', labels)))
            {
                gauge.RemoveLabelled(labels);
            }
        }
    }

    private static IEnumerable<(string[], double)> Values(IEnumerable<NodeRecord> nodes, Func<NodeRecord, double?> value)
    {
        foreach (var node in nodes)
        {
            if (value(node) is { } v)
            {
                yield return (Labels(node, null), v);
            }
        }
    }

    private static string[] Labels(NodeRecord node, NodePhase? phase) => phase is { } p
        ? [node.Id, node.Region, node.Runtime.ToWire(), p.ToWire()]
        : [node.Id, node.Region, node.Runtime.ToWire()];

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node metrics source failed; this scrape has no node series")]
    private partial void LogSourceFailed(Exception error);
}
