using System.Diagnostics.Metrics;
using Dgon.Domain.Ports;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;
using Dgon.Observability.Nodes;
using Dgon.Operator.Reconciliation;

namespace Dgon.Operator.Observability;

/// <summary>
/// The operator's own instruments on the meter <see cref="MeterName"/>: <c>dgon_kubernetes_status_writes_total{reason}</c>
/// (DgonNode status writes by the reconciler; reason = reconcile) and <c>dgon_operator_leader</c> (1 while this replica
/// holds the Lease, else 0). Reconcile counts and durations come from <c>Dgon.Kubernetes.Controllers</c>; for each of
/// <see cref="Controllers"/>, <c>dgon_reconcile_errors_total{controller}</c> exists from start-up with value 0 (as does
/// <c>dgon_kubernetes_status_writes_total{reason="reconcile"}</c>), so alert rules on <c>increase()</c> see the first error.
/// </summary>
public sealed class OperatorMetrics
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Dgon.Operator";

    /// <summary>The controllers this operator runs (their <c>ControllerOptions.Name</c>, set in <c>OperatorHost</c>).</summary>
    public static readonly IReadOnlyList<string> Controllers = ["dgonnode"];

    private readonly Counter<long> _statusWrites;

    /// <summary>Creates the instruments and the zero series.</summary>
    /// <param name="meters">The host's meter factory.</param>
    /// <param name="state">Leadership, for <c>dgon_operator_leader</c>.</param>
    /// <param name="exporter">The host's exporter: taken so that it listens before the zeros below are added.</param>
    public OperatorMetrics(IMeterFactory meters, OperatorState state, Dgon.Observability.HostMetrics exporter)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(exporter);
        var meter = meters.Create(MeterName);
        _statusWrites = meter.CreateCounter<long>("dgon_kubernetes_status_writes_total", description: "DgonNode status writes by the operator, by reason.");
        meter.CreateObservableGauge("dgon_operator_leader", () => state.Leading ? 1 : 0, description: "1 while this replica holds the leader-election Lease, else 0.");
        _statusWrites.Add(0, new KeyValuePair<string, object?>("reason", "reconcile"));
        foreach (var controller in Controllers)
        {
            ControllerMetrics.ReconcileErrors.Add(0, new KeyValuePair<string, object?>("controller", controller));
        }
    }

    /// <summary>Counts one status write by the reconciler.</summary>
    public void StatusWritten() => _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", "reconcile"));
}

/// <summary>
/// Kubernetes mode's node snapshot for the node gauges: the leader's DgonNode informer cache (no API-server request per
/// scrape). Standbys and a leader whose cache has not synced yet export no node series, so exactly one replica does.
/// </summary>
public sealed class InformerNodeSnapshot(OperatorState state) : INodeSnapshotSource
{
    /// <inheritdoc />
    public ValueTask<bool> VisitNodesAsync(Action<NodeRecord> visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (!state.Leading || state.Nodes is not { HasSynced: true } nodes)
        {
            return ValueTask.FromResult(false);
        }

        foreach (var node in nodes.List())
        {
            NodeRecord record;
            try
            {
                record = DgonNodeMapping.ToRecord(node);
            }
            catch (FormatException)
            {
                // An object the CRD's schema should have refused (unknown runtime): not a node we can label.
                continue;
            }

            visit(record);
        }

        return ValueTask.FromResult(true);
    }
}
