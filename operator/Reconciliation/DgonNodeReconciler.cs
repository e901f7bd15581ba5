using System.Text.Json.Nodes;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;
using Dgon.Operator.Configuration;
using Dgon.Operator.Observability;
using k8s;

namespace Dgon.Operator.Reconciliation;

/// <summary>
/// Reconciles one DgonNode (issues 3 and 9) with the domain's lifecycle state machine:
/// <list type="number">
/// <item>Repeated replays of the node's valid signed requests, recorded by the API in <c>status.authFailures</c>
/// (the only failures it records: a stranger's bad signatures never reach the DgonNode), set
/// <c>spec.quarantine: true</c> annotated <c>dgon.io/quarantine-reason: ReplayedRequests</c>, so that leaving
/// quarantine is always the same act: clearing <c>spec.quarantine</c> (the annotation is removed then). The
/// <c>Quarantined</c> condition and the Event carry that reason.</item>
/// <item><c>spec.quarantine</c> → quarantine; cleared → pending (then the timeout applies); pending/active past
/// lastSeen + grace + record lag → offline.</item>
/// <item>A node that never recorded a heartbeat and is not quarantined is deleted
/// <see cref="OperatorOptions.PendingNodeTtl"/> after its creation (an abandoned enrollment; its Secret goes with it
/// by garbage collection), with an Event.</item>
/// <item>Status (phase, ready, conditions, observedGeneration) is written through the status subresource with the
/// resourceVersion as precondition, only when it changes; a 409 fails the reconcile, which is retried with backoff
/// on the newer object.</item>
/// <item>An Event on every phase transition; the node is mirrored into PostgreSQL; a deleted node's row is removed.</item>
/// <item>Requeued at the node's exact next deadline: offline, heartbeat, or abandoned enrollment (no polling over all nodes).</item>
/// </list>
/// </summary>
public sealed partial class DgonNodeReconciler(
    IKubernetes client,
    IInformer<DgonNode> informer,
    IEventRecorder events,
    IServiceScopeFactory scopes,
    NodeLifecycle lifecycle,
    OperatorOptions options,
    OperatorMetrics metrics,
    TimeProvider clock,
    ILogger<DgonNodeReconciler> logger) : IReconciler<DgonNode>
{
    /// <summary>Annotation naming why the operator set <c>spec.quarantine</c> (<see cref="DgonNodeMapping.QuarantineReasonAnnotation"/>).</summary>
    public const string QuarantineReasonAnnotation = DgonNodeMapping.QuarantineReasonAnnotation;

    /// <summary>Reason of a quarantine caused by repeated replays of valid signed requests (<see cref="DgonNodeMapping.ReplayedRequestsReason"/>).</summary>
    public const string ReplayedRequestsReason = DgonNodeMapping.ReplayedRequestsReason;

    /// <summary>Reason of the Event recorded when an abandoned enrollment is deleted.</summary>
    public const string NeverHeartbeatedReason = "NeverHeartbeated";

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
            node = await QuarantineForReplaysAsync(node, failures, ct);
        }

        var now = clock.GetUtcNow();
        var abandonAt = AbandonDeadline(node);
        if (abandonAt is { } at && now >= at)
        {
            await DeleteAbandonedAsync(node, ct);
            return ReconcileResult.Done;
        }

        var recordedPhase = DgonNodeMapping.TryParsePhase(node.Status?.Phase, out var p) ? p : (NodePhase?)null;
        var from = recordedPhase ?? NodePhase.Pending;
        var lastSeen = DgonNodeMapping.LastSeen(node);
        var transition = Decide(node, from, lastSeen, now);
        var phase = transition.Phase;
        var reason = transition.Changed ? transition.Reason : recordedPhase is null ? "Registered" : "Unchanged";
        var annotatedReason = node.Metadata.Annotations?.ValueOrDefault(QuarantineReasonAnnotation);
        if (phase == NodePhase.Quarantine && transition.Changed && annotatedReason is { } why && DgonNodeMapping.IsConditionReason(why))
        {
            reason = why;
        }

        var heartbeatDeadline = node.Status?.LastHeartbeatTime is { } hb && DgonNodeMapping.HasHeartbeat(node) ? hb + lifecycle.Timeout : (DateTimeOffset?)null;
        var overdue = heartbeatDeadline is { } d && now > d;
        var ready = phase is NodePhase.Active or NodePhase.Pending && (node.Status?.Ready ?? false);
        var conditions = DgonNodeMapping.ComputeConditions(
            node,
            new NodeConditionInputs(phase, reason, ready, DgonNodeMapping.HasHeartbeat(node), overdue, lifecycle.Timeout, node.Metadata.Generation),
            now);

        // Metadata the operator owns: the quarantine-reason annotation ends with the quarantine, and the
        // dgon.io/quarantined label mirrors the Quarantined condition (for kubectl get dgn -l dgon.io/quarantined).
        var quarantined = conditions.Any(c => c is { Type: NodeConditions.Quarantined, Status: ConditionState.True });
        var labelled = node.Metadata.Labels?.ValueOrDefault(DgonNodeMapping.QuarantinedLabel) == "true";
        var clearReason = phase != NodePhase.Quarantine && from == NodePhase.Quarantine && annotatedReason is not null;
        if (quarantined != labelled || clearReason)
        {
            var metadata = new JsonObject { ["resourceVersion"] = node.Metadata.ResourceVersion };
            if (quarantined != labelled)
            {
                metadata["labels"] = new JsonObject { [DgonNodeMapping.QuarantinedLabel] = quarantined ? "true" : null };
            }

            if (clearReason)
            {
                // The quarantine was cleared: its reason no longer applies (and must not label a later, manual one).
                metadata["annotations"] = new JsonObject { [QuarantineReasonAnnotation] = null };
            }

            node = await client.PatchDgonNodeAsync(node.Metadata.NamespaceProperty, node.Metadata.Name!, new JsonObject { ["metadata"] = metadata }, ct);
        }

        var stored = node.Status;
        var needsWrite = stored?.Phase != DgonNodeMapping.PhaseValue(phase)
            || stored.ObservedGeneration != node.Metadata.Generation
            || stored.AuthFailures is not null
            || stored.Reputation is null
            || !NodeConditions.Equivalent(DgonNodeMapping.Conditions(node), conditions);
        if (needsWrite)
        {
            // Only the operator's fields (phase, conditions, observedGeneration, reputation); the resourceVersion
            // guards against deciding on a stale object. A 409 propagates: the controller retries on the newer object.
            var (patch, status) = DgonNodeMapping.StatusPatch(node.Metadata.ResourceVersion);
            status["phase"] = DgonNodeMapping.PhaseValue(phase);
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

            node = await client.PatchDgonNodeStatusAsync(node.Metadata.NamespaceProperty, node.Metadata.Name!, patch, ct);
            metrics.StatusWritten();
        }

        if (phase != recordedPhase)
        {
            // Every phase change, the first one included, is an Event (aggregated into series by the recorder).
            var fromText = recordedPhase is { } rp ? DgonNodeMapping.PhaseValue(rp) : "(none)";
            LogTransition(node.Metadata.Name!, fromText, DgonNodeMapping.PhaseValue(phase), reason);
            var type = phase is NodePhase.Offline or NodePhase.Quarantine ? "Warning" : "Normal";
            await events.RecordAsync(node, type, reason, "PhaseTransition", $"Phase {fromText} -> {DgonNodeMapping.PhaseValue(phase)}: {Describe(reason)}", ct);
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

        if (abandonAt is { } abandon && (next is null || abandon < next))
        {
            next = abandon;
        }

        return next is { } deadline ? ReconcileResult.RequeueAt(Max(deadline - now + DeadlineSlack, DeadlineSlack)) : ReconcileResult.Done;
    }

    // The phase from what the API observed (issue 10: the operator alone decides it). In order: quarantine intent;
    // then, outside quarantine, a registration newer than the last heartbeat (pending) or a heartbeat within the
    // grace period (its ready flag decides active or pending; not right after an un-quarantine, when the node must
    // prove readiness with a new heartbeat); then time passing (offline).
    private NodeTransition Decide(DgonNode node, NodePhase from, DateTimeOffset lastSeen, DateTimeOffset now)
    {
        var phase = from;
        var result = new NodeTransition(from, false, "Unchanged");
        void Apply(NodeEvent e)
        {
            var t = lifecycle.Apply(new NodeLifecycleState(phase, lastSeen), e);
            if (t.Changed)
            {
                phase = t.Phase;
                result = t;
            }
        }

        if (node.Spec.Quarantine || from == NodePhase.Quarantine)
        {
            Apply(node.Spec.Quarantine ? new NodeEvent.QuarantineSet() : new NodeEvent.QuarantineCleared());
        }

        var justCleared = result.Reason == "QuarantineCleared";
        if (phase != NodePhase.Quarantine)
        {
            if (!DgonNodeMapping.HasHeartbeat(node))
            {
                if (node.Status?.LastHeartbeatTime is not null)
                {
                    Apply(new NodeEvent.Registered());
                }
            }
            else if (!justCleared && node.Status?.LastHeartbeatTime is { } hb && now <= hb + lifecycle.Timeout)
            {
                Apply(new NodeEvent.HeartbeatReceived(node.Status.Ready ?? false));
            }
        }

        Apply(new NodeEvent.TimePassed());
        return result.Phase == from ? new NodeTransition(from, false, "Unchanged") : result with { Changed = true };
    }

    private DateTimeOffset? AbandonDeadline(DgonNode node) =>
        node.Status?.LastHeartbeatTime is null && !node.Spec.Quarantine && DgonNodeMapping.Phase(node) != NodePhase.Quarantine
            && DgonNodeMapping.Utc(node.Metadata.CreationTimestamp) is { } created
            ? created + options.PendingNodeTtl
            : null;

    private async Task DeleteAbandonedAsync(DgonNode node, CancellationToken ct)
    {
        var name = node.Metadata.Name!;
        try
        {
            // Only this very version: a heartbeat recorded meanwhile changes the resourceVersion, and the delete fails
            // with 409 (the reconcile is retried and then sees the heartbeat).
            await client.DeleteDgonNodeAsync(node.Metadata.NamespaceProperty, name, node.Metadata.Uid, node.Metadata.ResourceVersion, ct);
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return;
        }

        var created = DgonNodeMapping.Utc(node.Metadata.CreationTimestamp) is { } c ? DgonNodeMapping.Time(c) : "?";
        var ttl = options.PendingNodeTtl.TotalSeconds;
        LogAbandonedDeleted(name, created, ttl);
        await events.RecordAsync(
            node,
            "Normal",
            NeverHeartbeatedReason,
            "Delete",
            $"Created {created} and no heartbeat within DGON_PENDING_NODE_TTL_SECONDS ({ttl:0.###}s): deleted as an abandoned enrollment, with its Secret.",
            ct);
    }

    private async Task<DgonNode> QuarantineForReplaysAsync(DgonNode node, DgonNodeAuthFailures failures, CancellationToken ct)
    {
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = node.Metadata.ResourceVersion,
                ["annotations"] = new JsonObject { [QuarantineReasonAnnotation] = ReplayedRequestsReason },
            },
            ["spec"] = new JsonObject { ["quarantine"] = true },
        };
        var updated = await client.PatchDgonNodeAsync(node.Metadata.NamespaceProperty, node.Metadata.Name!, patch, ct);
        var note = $"{failures.Count} replayed signed requests between {DgonNodeMapping.Time(failures.FirstFailureTime)} and "
            + $"{DgonNodeMapping.Time(failures.LastFailureTime)} (last: {failures.LastReason}): the node's token may have leaked; "
            + "set spec.quarantine=true. Reset the node's identity, then clear spec.quarantine to let it rejoin.";
        LogReplayQuarantine(node.Metadata.Name!, failures.Count);
        await events.RecordAsync(updated, "Warning", ReplayedRequestsReason, "Quarantine", note, ct);
        return updated;
    }

    private string Describe(string reason) => reason switch
    {
        "HeartbeatTimeout" => $"no heartbeat within {lifecycle.Timeout.TotalSeconds:0.###}s",
        "QuarantineRequested" => "spec.quarantine is set",
        ReplayedRequestsReason => "repeated replays of the node's signed requests",
        "QuarantineCleared" => "spec.quarantine was cleared; the node must prove readiness again",
        _ => reason,
    };

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} phase {From} -> {To} ({Reason})")]
    private partial void LogTransition(string nodeId, string from, string to, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} is gone; removed its mirror row")]
    private partial void LogMirrorDeleted(string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DgonNode {NodeId}: {Count} replayed signed requests recorded; quarantining")]
    private partial void LogReplayQuarantine(string nodeId, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} (created {Created}) never sent a heartbeat within {TtlSeconds} s; deleted")]
    private partial void LogAbandonedDeleted(string nodeId, string created, double ttlSeconds);
}
