using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Dgon.Observability.Nodes;

/// <summary>
/// Where the per-node series come from: the process that owns node state (the API in standalone mode, reading
/// PostgreSQL; the leading operator in Kubernetes mode, reading its DgonNode informer cache).
/// A visitor rather than a returned collection, so a source that holds its nodes in memory can hand them over one by one
/// without copying 100,000 references into a list on every scrape.
/// </summary>
public interface INodeSnapshotSource
{
    /// <summary>
    /// Calls <paramref name="visit"/> once for each node now (any order, one call at a time) and returns true; or
    /// returns false without calling it when this process should not export node series (e.g. a standby operator).
    /// <paramref name="visit"/> only updates in-memory gauges (about 0.1 µs) and never calls back into the source, so a
    /// source may call it while holding its own lock.
    /// </summary>
    /// <exception cref="OperationCanceledException">The scrape was aborted.</exception>
    ValueTask<bool> VisitNodesAsync(Action<NodeRecord> visit, CancellationToken cancellationToken);
}

/// <summary>
/// The node gauges (issue 4): prometheus-net gauges on the host's registry, refreshed from
/// <see cref="INodeSnapshotSource"/> by a before-collect callback, so each scrape shows the nodes of that moment and a
/// deleted node's series disappear from the next scrape. Labels <c>node</c>, <c>region</c>, <c>runtime</c> (the node
/// id is the only unbounded label value):
/// <c>dgon_node_status{phase}</c> (one series per phase, 1 for the current one, else 0, as kube-state-metrics does),
/// <c>dgon_node_last_heartbeat_timestamp_seconds</c> (unix seconds),
/// <c>dgon_node_gpu_utilization_ratio</c> (0–1), <c>dgon_node_memory_used_bytes</c> (seed 000 <c>mem_used_gb</c> × 10⁹),
/// <c>dgon_node_latency_p95_seconds</c> (<c>p95_ms</c> / 1000) — the last three only when the node reported them —
/// and the fleet gauge <c>dgon_nodes{phase}</c>.
/// When the source fails, or returns false (a standby operator), the scrape carries no node series (they go stale in
/// Prometheus); a failure is logged as a warning, and the children are kept unpublished for the next snapshot.
/// Each node's prometheus-net children are kept across scrapes (a dictionary by node id) and set in place, so a scrape
/// of an unchanged fleet allocates nothing per node: children are created for new nodes (or a changed region or
/// runtime) and removed for departed nodes and for values a node no longer reports.
/// Above <see cref="NodeGaugeOptions.MaxNodes"/> nodes (issue 11: default 10,000, i.e. 80,000 series) the per-node
/// families are left out — only <c>dgon_nodes{phase}</c> stays, and <c>dgon_metrics_node_series_limited</c> reads 1 — so a
/// large fleet neither floods Prometheus with series nor holds ~4 KB of children per node in the process.
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
    private readonly Gauge _limitedGauge;
    private readonly int _maxNodes;
    private readonly Action<NodeRecord> _show;
    private int _visited;
    private bool _limited;
    private bool _wasLimited;
    private bool _limitLogged;
    private readonly Dictionary<string, NodeSeries> _shown = new(StringComparer.Ordinal);
    private readonly int[] _phaseCounts = new int[NodePhases.All.Count];
    private readonly Gauge.Child?[] _fleet = new Gauge.Child?[NodePhases.All.Count];
    private long _round;

    /// <summary>Creates the gauges in <paramref name="metrics"/>' registry and refreshes them before each scrape.</summary>
    public NodeGauges(HostMetrics metrics, INodeSnapshotSource source, NodeGaugeOptions options, ILogger<NodeGauges> logger)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(options);
        _source = source;
        _maxNodes = options.MaxNodes;
        _logger = logger;
        _show = Show;
        var f = metrics.Factory;
        _status = f.CreateGauge("dgon_node_status", "Node lifecycle phase: 1 for the current phase, 0 for the others.", [.. NodeLabels, "phase"]);
        _lastHeartbeat = f.CreateGauge("dgon_node_last_heartbeat_timestamp_seconds", "Unix time of the node's last valid heartbeat.", NodeLabels);
        _gpuUtilization = f.CreateGauge("dgon_node_gpu_utilization_ratio", "GPU utilisation the node last reported (0-1).", NodeLabels);
        _memoryUsed = f.CreateGauge("dgon_node_memory_used_bytes", "Memory in use the node last reported.", NodeLabels);
        _latencyP95 = f.CreateGauge("dgon_node_latency_p95_seconds", "95th percentile inference latency the node last reported.", NodeLabels);
        _nodes = f.CreateGauge("dgon_nodes", "Nodes by lifecycle phase.", ["phase"]);
        _limitedGauge = f.CreateGauge("dgon_metrics_node_series_limited", "1 while the fleet exceeds DGON_NODE_METRICS_MAX_NODES and the per-node series are left out, else 0.");
        metrics.Registry.AddBeforeCollectCallback(RefreshAsync);
    }

    /// <summary>Visits the snapshot and makes the gauges show exactly its series (one refresh at a time).</summary>
    /// <exception cref="OperationCanceledException">The scrape was aborted.</exception>
    internal async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            _round++;
            Array.Clear(_phaseCounts);
            _visited = 0;
            _limited = _wasLimited;
            // A cancelled visit may stop half-way: the scrape is aborted, and the next refresh completes the state.
            try
            {
                if (!await _source.VisitNodesAsync(_show, cancellationToken))
                {
                    Clear();
                    return;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogSourceFailed(e);
                Hide();
                return;
            }

            // Over the limit last time: this round starts without per-node series; under it again, they come back next time.
            _wasLimited = _visited > _maxNodes;
            _limitedGauge.Set(_limited ? 1 : 0);
            if (_limited && !_limitLogged)
            {
                _limitLogged = true;
                LogLimited(_visited, _maxNodes);
            }

            // Dictionary<,>.Remove during enumeration is allowed (since .NET Core 3.0).
            foreach (var (id, series) in _shown)
            {
                if (series.Round != _round)
                {
                    series.Remove();
                    _shown.Remove(id);
                }
            }

            for (var i = 0; i < _fleet.Length; i++)
            {
                (_fleet[i] ??= _nodes.WithLabels(NodePhases.All[i].ToWire())).Set(_phaseCounts[i]);
            }
        }
        finally
        {
            _refresh.Release();
        }
    }

    // One node of the snapshot: sets its children, creating them for a node not shown before.
    private void Show(NodeRecord node)
    {
        _phaseCounts[(int)node.Phase]++;
        if (_limited || ++_visited > _maxNodes)
        {
            _visited += _limited ? 1 : 0;
            if (!_limited)
            {
                _limited = true;
                foreach (var shown in _shown.Values)
                {
                    shown.Remove();
                }

                _shown.Clear();
            }

            return;
        }

        var region = node.Region;
        var runtime = node.Runtime.ToWire();
        if (!_shown.TryGetValue(node.Id, out var series) || series.Region != region || series.Runtime != runtime)
        {
            series?.Remove();
            series = new NodeSeries(this, node.Id, region, runtime);
            _shown[node.Id] = series;
        }

        series.Round = _round;
        for (var i = 0; i < series.Status.Length; i++)
        {
            var current = NodePhases.All[i] == node.Phase;
            series.Status[i].Set(current ? 1.0 : 0.0);
        }

        Set(_lastHeartbeat, ref series.LastHeartbeat, series.Labels, node.LastHeartbeat?.ToUnixTimeMilliseconds() / 1000.0);
        Set(_gpuUtilization, ref series.GpuUtilization, series.Labels, node.Metrics.GpuUtil);
        Set(_memoryUsed, ref series.MemoryUsed, series.Labels, node.Metrics.MemUsedGb * 1e9);
        Set(_latencyP95, ref series.LatencyP95, series.Labels, node.Metrics.P95Ms / 1000.0);
    }

    // A value series exists exactly while the node reports the value.
    private static void Set(Gauge gauge, ref Gauge.Child? child, string[] labels, double? value)
    {
        if (value is { } v)
        {
            (child ??= gauge.WithLabels(labels)).Set(v);
        }
        else if (child is not null)
        {
            child.Remove();
            child = null;
        }
    }

    // The source failed (often briefly): this scrape has no node or fleet series, but the children are kept, so the
    // next snapshot sets them again (which publishes them) instead of creating them all anew.
    private void Hide()
    {
        foreach (var series in _shown.Values)
        {
            series.Unpublish();
        }

        foreach (var child in _fleet)
        {
            child?.Unpublish();
        }
    }

    // No snapshot (e.g. a standby operator, possibly for long): no node or fleet series, and nothing kept.
    private void Clear()
    {
        foreach (var series in _shown.Values)
        {
            series.Remove();
        }

        _shown.Clear();
        for (var i = 0; i < _fleet.Length; i++)
        {
            _fleet[i]?.Remove();
            _fleet[i] = null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Nodes} nodes exceed DGON_NODE_METRICS_MAX_NODES={Max}: the per-node series (dgon_node_*) are left out, dgon_nodes{{phase}} stays; raise the limit to get them back")]
    private partial void LogLimited(int nodes, int max);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node metrics source failed; this scrape has no node series")]
    private partial void LogSourceFailed(Exception error);

    // The children of one node, created with its labels and kept while the node is in the snapshot.
    private sealed class NodeSeries
    {
        public readonly string Region;
        public readonly string Runtime;
        public readonly string[] Labels;
        public readonly Gauge.Child[] Status;
        public Gauge.Child? LastHeartbeat;
        public Gauge.Child? GpuUtilization;
        public Gauge.Child? MemoryUsed;
        public Gauge.Child? LatencyP95;
        public long Round;

        public NodeSeries(NodeGauges gauges, string id, string region, string runtime)
        {
            Region = region;
            Runtime = runtime;
            Labels = [id, region, runtime];
            Status = new Gauge.Child[NodePhases.All.Count];
            for (var i = 0; i < Status.Length; i++)
            {
                Status[i] = gauges._status.WithLabels(id, region, runtime, NodePhases.All[i].ToWire());
            }
        }

        public void Unpublish()
        {
            foreach (var child in Status)
            {
                child.Unpublish();
            }

            LastHeartbeat?.Unpublish();
            GpuUtilization?.Unpublish();
            MemoryUsed?.Unpublish();
            LatencyP95?.Unpublish();
        }

        public void Remove()
        {
            foreach (var child in Status)
            {
                child.Remove();
            }

            LastHeartbeat?.Remove();
            GpuUtilization?.Remove();
            MemoryUsed?.Remove();
            LatencyP95?.Remove();
        }
    }
}

/// <summary>Options of <see cref="NodeGauges"/>.</summary>
public sealed record NodeGaugeOptions
{
    /// <summary>Default largest fleet exported per node: 10,000 nodes (80,000 series).</summary>
    public const int DefaultMaxNodes = 10_000;

    /// <summary>Largest fleet whose per-node series are exported (<c>DGON_NODE_METRICS_MAX_NODES</c>); 0 exports none.</summary>
    public int MaxNodes { get; init; } = DefaultMaxNodes;

    /// <summary>Reads <c>DGON_NODE_METRICS_MAX_NODES</c> from the process environment (the API and the operator both export node gauges).</summary>
    /// <exception cref="InvalidOperationException">The value is not an integer from 0 to 10,000,000.</exception>
    public static NodeGaugeOptions FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable("DGON_NODE_METRICS_MAX_NODES");
        if (string.IsNullOrWhiteSpace(text))
        {
            return new NodeGaugeOptions();
        }

        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var max) && max is >= 0 and <= 10_000_000
            ? new NodeGaugeOptions { MaxNodes = max }
            : throw new InvalidOperationException($"DGON_NODE_METRICS_MAX_NODES must be an integer from 0 to 10000000; got '{text}'");
    }
}
