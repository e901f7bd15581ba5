namespace Dgon.Domain.Nodes;

/// <summary>Status of a condition (Kubernetes API conventions: <c>True</c>, <c>False</c>, <c>Unknown</c>).</summary>
public enum ConditionState
{
    /// <summary>The condition holds.</summary>
    True,

    /// <summary>The condition does not hold.</summary>
    False,

    /// <summary>Not known yet.</summary>
    Unknown,
}

/// <summary>
/// One observation about a node, shaped like a Kubernetes condition (type, status, reason, message,
/// lastTransitionTime, observedGeneration) so the Kubernetes adapters map it one to one onto
/// <c>status.conditions</c> of a DgonNode.
/// </summary>
/// <param name="Type">CamelCase type, e.g. <c>Ready</c>.</param>
/// <param name="Status">True, False or Unknown.</param>
/// <param name="Reason">CamelCase machine-readable reason.</param>
/// <param name="Message">Human-readable detail. Stable between heartbeats, so it does not force status writes.</param>
/// <param name="LastTransitionTime">When <paramref name="Status"/> last changed (UTC, second precision).</param>
/// <param name="ObservedGeneration">The resource generation the writer had seen, or null.</param>
public sealed record NodeCondition(string Type, ConditionState Status, string Reason, string Message, DateTimeOffset LastTransitionTime, long? ObservedGeneration);

/// <summary>The facts from which a node's conditions are derived.</summary>
/// <param name="Phase">Phase after the lifecycle was applied.</param>
/// <param name="PhaseReason">Reason of the phase, e.g. <c>RuntimeReady</c>, <c>HeartbeatTimeout</c>, <c>QuarantineRequested</c>.</param>
/// <param name="Ready">Ready flag of the last recorded heartbeat.</param>
/// <param name="HasHeartbeat">Whether any heartbeat was recorded since registration.</param>
/// <param name="HeartbeatOverdue">Whether the last recorded heartbeat is older than the lifecycle timeout.</param>
/// <param name="Timeout">The lifecycle timeout, for messages.</param>
/// <param name="Generation">The resource generation, or null.</param>
public sealed record NodeConditionInputs(NodePhase Phase, string PhaseReason, bool Ready, bool HasHeartbeat, bool HeartbeatOverdue, TimeSpan Timeout, long? Generation);

/// <summary>
/// The conditions of a DgonNode (issue 3: at least <c>Ready</c> and <c>Heartbeating</c>, plus <c>Quarantined</c>),
/// and Kubernetes' rule for updating a condition list: a condition's lastTransitionTime changes only when its status
/// changes (apimachinery <c>meta.SetStatusCondition</c> semantics).
/// </summary>
public static class NodeConditions
{
    /// <summary><c>Ready</c>: the node can serve inference (phase active).</summary>
    public const string Ready = "Ready";

    /// <summary><c>Heartbeating</c>: signed heartbeats arrive within the timeout.</summary>
    public const string Heartbeating = "Heartbeating";

    /// <summary><c>Quarantined</c>: held out of the network by operator intent or repeated authentication failures.</summary>
    public const string Quarantined = "Quarantined";

    /// <summary>Condition types in the order they are written.</summary>
    public static IReadOnlyList<string> Types { get; } = [Ready, Heartbeating, Quarantined];

    /// <summary>
    /// The desired condition list: each of <see cref="Types"/> derived from <paramref name="inputs"/> and merged into
    /// <paramref name="existing"/> with <see cref="Set"/> (conditions of other types are kept, after ours).
    /// </summary>
    /// <param name="existing">The stored conditions (any order), or empty.</param>
    /// <param name="inputs">Facts to derive from.</param>
    /// <param name="now">Transition time for changed conditions (UTC; truncated to whole seconds, the wire precision).</param>
    public static IReadOnlyList<NodeCondition> Compute(IReadOnlyList<NodeCondition> existing, NodeConditionInputs inputs, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentNullException.ThrowIfNull(inputs);
        var list = existing.ToList();
        var timeout = $"{inputs.Timeout.TotalSeconds:0.###}s";
        var g = inputs.Generation;

        var ready = inputs.Phase switch
        {
            NodePhase.Active => (ConditionState.True, "RuntimeReady", "The node's runtime reported ready in its last heartbeat."),
            NodePhase.Quarantine => (ConditionState.False, "Quarantined", "The node is quarantined."),
            NodePhase.Offline => (ConditionState.False, "HeartbeatTimeout", $"No heartbeat within {timeout}."),
            _ when !inputs.HasHeartbeat => (ConditionState.False, "AwaitingHeartbeat", "Registered; no heartbeat yet."),
            _ => (ConditionState.False, "RuntimeNotReady", "The node's runtime reported not ready in its last heartbeat."),
        };
        Set(list, new NodeCondition(Ready, ready.Item1, ready.Item2, ready.Item3, now, g), now);

        var heartbeating = inputs switch
        {
            { HasHeartbeat: false, Phase: not NodePhase.Offline } =>
                (ConditionState.Unknown, "AwaitingHeartbeat", "No heartbeat recorded since registration."),
            { HeartbeatOverdue: true } or { Phase: NodePhase.Offline } =>
                (ConditionState.False, "HeartbeatTimeout", $"No heartbeat within {timeout}."),
            _ => (ConditionState.True, "HeartbeatReceived", $"Signed heartbeats arrive within {timeout}."),
        };
        Set(list, new NodeCondition(Heartbeating, heartbeating.Item1, heartbeating.Item2, heartbeating.Item3, now, g), now);

        var quarantined = inputs.Phase == NodePhase.Quarantine
            ? (ConditionState.True, inputs.PhaseReason is "Unchanged" ? Find(existing, Quarantined)?.Reason ?? "QuarantineRequested" : inputs.PhaseReason,
                "The node is held out of the network; clear spec.quarantine to let it rejoin.")
            : (ConditionState.False, "NotQuarantined", "The node is not quarantined.");
        Set(list, new NodeCondition(Quarantined, quarantined.Item1, quarantined.Item2, quarantined.Item3, now, g), now);

        // Ours first, in a fixed order, so equal lists compare equal.
        return [.. list.OrderBy(c => Types.IndexOf(c.Type) is var i and >= 0 ? i : Types.Count).ThenBy(c => c.Type, StringComparer.Ordinal)];
    }

    /// <summary>
    /// Adds or updates <paramref name="condition"/> in <paramref name="conditions"/> by type. Kubernetes semantics:
    /// when the status is unchanged the stored lastTransitionTime is kept; otherwise it becomes
    /// <paramref name="now"/> (truncated to seconds).
    /// </summary>
    public static void Set(List<NodeCondition> conditions, NodeCondition condition, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        ArgumentNullException.ThrowIfNull(condition);
        var index = conditions.FindIndex(c => c.Type == condition.Type);
        var transition = TruncateToSeconds(now);
        if (index < 0)
        {
            conditions.Add(condition with { LastTransitionTime = transition });
            return;
        }

        var current = conditions[index];
        conditions[index] = condition with
        {
            LastTransitionTime = current.Status == condition.Status ? current.LastTransitionTime : transition,
        };
    }

    /// <summary>The condition of a type, or null.</summary>
    public static NodeCondition? Find(IReadOnlyList<NodeCondition> conditions, string type)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        return conditions.FirstOrDefault(c => c.Type == type);
    }

    /// <summary>
    /// Whether two lists say the same thing: same types with the same status, reason, message and observedGeneration
    /// (order and lastTransitionTime ignored — the latter only changes together with the status).
    /// </summary>
    public static bool Equivalent(IReadOnlyList<NodeCondition> a, IReadOnlyList<NodeCondition> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (var x in a)
        {
            var y = Find(b, x.Type);
            if (y is null || y.Status != x.Status || y.Reason != x.Reason || y.Message != x.Message || y.ObservedGeneration != x.ObservedGeneration)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Truncates to whole seconds (Kubernetes metav1.Time precision).</summary>
    public static DateTimeOffset TruncateToSeconds(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    private static int IndexOf(this IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == value)
            {
                return i;
            }
        }

        return -1;
    }
}
