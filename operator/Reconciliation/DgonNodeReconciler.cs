using System.Text.Json.Nodes;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;
using Dgon.Operator.Observability;

namespace Dgon.Operator.Reconciliation;

/// <summary>
/// Reconciles one DgonNode (issue 3) with the domain's lifecycle state machine:
/// <list type="number">
/// <item>Repeated HMAC failures recorded by the API (<c>status.authFailures</c>) set <c>spec.quarantine: true</c>
/// (annotated <c>dgon.io/quarantine-reason: AuthFailureThreshold</c>), so that leaving quarantine is always the
/// same act: clearing <c>spec.quarantine</c>.</item>
/// <item><c>spec.quarantine</c> → quarantine; cleared → pending (then the timeout applies); pending/active past
/// lastSeen + grace + record lag → offline.</item>
/// <item>Status (phase, ready, conditions, observedGeneration) is written through the status subresource with the
/// resourceVersion as precondition, only when it changes; a 409 fails the reconcile, which is retried with backoff
/// on the newer object.</item>
/// <item>An Event on every phase transition; the node is mirrored into PostgreSQL; a deleted node's row is removed.</item>
/// <item>Requeued at the node's exact offline deadline (no polling over all nodes).</item>
/// </list>
/// </summary>
public sealed partial class DgonNodeReconciler(
    IKubeClient client,
    IInformer<DgonNode> informer,
    IEventRecorder events,
    IServiceScopeFactory scopes,
    NodeLifecycle lifecycle,
    OperatorMetrics metrics,
    TimeProvider clock,
    ILogger<DgonNodeReconciler> logger) : IReconciler<DgonNode>
{
    /// <summary>Annotation naming why the operator set <c>spec.quarantine</c>.</summary>
    public const string QuarantineReasonAnnotation = "dgon.io/quarantine-reason";

    /// <summary>Reason of a quarantine caused by repeated HMAC failures.</summary>
    public const string AuthFailureReason = "AuthFailureThreshold";

    // Wake a little after a deadline: the lifecycle calls a node overdue strictly after it.
    private static readonly TimeSpan DeadlineSlack = TimeSpan.FromMilliseconds(50);

    /// <inheritdoc />
    public async Task<ReconcileResult> ReconcileAsync(ReconcileRequest request, CancellationToken ct)
    {
        if (!informer.TryGet(request.Namespace, request.Name, out var node) || node is null)
        {
            await using var scope = scopes.CreateAsyncScope();
            if (await scope.ServiceProvider.GetRequiredService<INodeMirror>().DeleteAsync(request.Name, ct))
            {
                LogMirrorDeleted(request.Name);
            }

            return ReconcileResult.Done;
        }

        if (node.Metadata.DeletionTimestamp is not null)
        {
            return ReconcileResult.Done; // being deleted; the DELETED event will remove the mirror row
        }

        if (node.Status?.AuthFailures is { } failures && !node.Spec.Quarantine)
        {
            node = await QuarantineForAuthFailuresAsync(node, failures, ct);
        }

        var now = clock.GetUtcNow();
        var from = DgonNodeMapping.Phase(node);
        var lastSeen = DgonNodeMapping.LastSeen(node);
        var transition = Decide(node, from, lastSeen);
        var phase = transition.Phase;
        var reason = transition.Changed ? transition.Reason : "Unchanged";
        if (phase == NodePhase.Quarantine && transition.Changed
            && node.Metadata.Annotations?.GetValueOrDefault(QuarantineReasonAnnotation) == AuthFailureReason)
        {
            reason = AuthFailureReason;
        }

        var heartbeatDeadline = node.Status?.LastHeartbeatTime is { } hb && DgonNodeMapping.HasHeartbeat(node) ? hb + lifecycle.Timeout : (DateTimeOffset?)null;
        var overdue = heartbeatDeadline is { } d && now > d;
        var ready = phase is NodePhase.Active or NodePhase.Pending && (node.Status?.Ready ?? false);
        var conditions = NodeConditions.Compute(
            DgonNodeMapping.Conditions(node),
            new NodeConditionInputs(phase, reason, ready, DgonNodeMapping.HasHeartbeat(node), overdue, lifecycle.Timeout, node.Metadata.Generation),
            now);

        var stored = node.Status;
        var needsWrite = stored?.Phase != phase.ToWire()
            || (stored.Ready ?? false) != ready
            || stored.ObservedGeneration != node.Metadata.Generation
            || stored.AuthFailures is not null
            || !NodeConditions.Equivalent(DgonNodeMapping.Conditions(node), conditions);
        if (needsWrite)
        {
            var (patch, status) = DgonNodeMapping.StatusPatch(node.Metadata.ResourceVersion);
            status["phase"] = phase.ToWire();
            status["ready"] = ready;
            status["observedGeneration"] = node.Metadata.Generation;
            status["conditions"] = DgonNodeMapping.ConditionsJson(conditions);
            if (stored?.Reputation is null)
            {
                status["reputation"] = NodeRecord.DefaultReputation;
            }

            if (stored?.AuthFailures is not null)
            {
                status["authFailures"] = null; // acted upon (spec.quarantine is set)
            }

            // KubeConflictException propagates: the controller retries with backoff, by then on the newer object.
            node = await client.PatchStatusAsync(KubeResources.DgonNodes, node.Metadata.Namespace, node.Metadata.Name!, patch, ct);
            metrics.StatusWritten();
        }

        if (phase != from)
        {
            LogTransition(node.Metadata.Name!, from.ToWire(), phase.ToWire(), reason);
            var type = phase is NodePhase.Offline or NodePhase.Quarantine ? "Warning" : "Normal";
            await events.RecordAsync(node, type, reason, "PhaseTransition", $"Phase {from.ToWire()} -> {phase.ToWire()}: {Describe(reason)}", ct);
        }

        await using (var scope = scopes.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<INodeMirror>().UpsertAsync(DgonNodeMapping.ToRecord(node), ct);
        }

        // Requeue at the earliest instant time alone changes something: the offline deadline, or (in quarantine)
        // the heartbeat deadline that flips the Heartbeating condition.
        var next = lifecycle.OfflineDeadline(new NodeLifecycleState(phase, lastSeen));
        if (next is null && !overdue && heartbeatDeadline is { } hbDeadline)
        {
            next = hbDeadline;
        }

        return next is { } deadline ? ReconcileResult.RequeueAt(Max(deadline - now + DeadlineSlack, DeadlineSlack)) : ReconcileResult.Done;
    }

    private NodeTransition Decide(DgonNode node, NodePhase from, DateTimeOffset lastSeen)
    {
        var phase = from;
        var result = new NodeTransition(from, false, "Unchanged");
        if (node.Spec.Quarantine || from == NodePhase.Quarantine)
        {
            NodeEvent intent = node.Spec.Quarantine ? new NodeEvent.QuarantineSet() : new NodeEvent.QuarantineCleared();
            result = lifecycle.Apply(new NodeLifecycleState(phase, lastSeen), intent);
            phase = result.Phase;
        }

        var timed = lifecycle.Apply(new NodeLifecycleState(phase, lastSeen), new NodeEvent.TimePassed());
        if (timed.Changed)
        {
            result = timed;
        }

        return result.Phase == from ? new NodeTransition(from, false, "Unchanged") : result with { Changed = true };
    }

    private async Task<DgonNode> QuarantineForAuthFailuresAsync(DgonNode node, DgonNodeAuthFailures failures, CancellationToken ct)
    {
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = node.Metadata.ResourceVersion,
                ["annotations"] = new JsonObject { [QuarantineReasonAnnotation] = AuthFailureReason },
            },
            ["spec"] = new JsonObject { ["quarantine"] = true },
        };
        var updated = await client.PatchAsync(KubeResources.DgonNodes, node.Metadata.Namespace, node.Metadata.Name!, patch, ct);
        var note = $"{failures.Count} HMAC failures between {DgonNodeMapping.Time(failures.FirstFailureTime)} and "
            + $"{DgonNodeMapping.Time(failures.LastFailureTime)} (last: {failures.LastReason}); set spec.quarantine=true. "
            + "Clear spec.quarantine to let the node rejoin.";
        LogAuthQuarantine(node.Metadata.Name!, failures.Count);
        await events.RecordAsync(updated, "Warning", AuthFailureReason, "Quarantine", note, ct);
        return updated;
    }

    private string Describe(string reason) => reason switch
    {
        "HeartbeatTimeout" => $"no heartbeat within {lifecycle.Timeout.TotalSeconds:0.###}s",
        "QuarantineRequested" => "spec.quarantine is set",
        AuthFailureReason => "repeated HMAC failures",
        "QuarantineCleared" => "spec.quarantine was cleared; the node must prove readiness again",
        _ => reason,
    };

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} phase {From} -> {To} ({Reason})")]
    private partial void LogTransition(string nodeId, string from, string to, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} is gone; removed its mirror row")]
    private partial void LogMirrorDeleted(string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DgonNode {NodeId}: {Count} HMAC failures recorded; quarantining")]
    private partial void LogAuthQuarantine(string nodeId, int count);
}
