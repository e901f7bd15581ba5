namespace Dgon.Domain.Nodes;

/// <summary>Something that happened to a node; the input of <see cref="NodeLifecycle.Apply"/>.</summary>
public abstract record NodeEvent
{
    private NodeEvent()
    {
    }

    /// <summary>The node (re-)registered. Seed 000: register upserts the node as <c>pending</c>.</summary>
    public sealed record Registered : NodeEvent;

    /// <summary>A heartbeat with a valid HMAC arrived. Seed 000: <c>ready=true → active</c>, else <c>pending</c>.</summary>
    /// <param name="Ready">Whether the node's runtime reported ready.</param>
    public sealed record HeartbeatReceived(bool Ready) : NodeEvent;

    /// <summary>Time passed with no other event; lets the grace-period timeout fire.</summary>
    public sealed record TimePassed : NodeEvent;

    /// <summary>Operator intent: hold the node in quarantine.</summary>
    public sealed record QuarantineSet : NodeEvent;

    /// <summary>Operator intent cleared: the node leaves quarantine as <c>pending</c> and must prove readiness again.</summary>
    public sealed record QuarantineCleared : NodeEvent;
}

/// <summary>
/// What the lifecycle needs to know about a node.
/// </summary>
/// <param name="Phase">Current phase.</param>
/// <param name="LastSeen">Time of the last valid heartbeat, or of registration when none arrived yet (UTC).</param>
public readonly record struct NodeLifecycleState(NodePhase Phase, DateTimeOffset LastSeen);

/// <summary>Outcome of applying one event.</summary>
/// <param name="Phase">Phase after the event.</param>
/// <param name="Changed">Whether the phase differs from the one before.</param>
/// <param name="Reason">A CamelCase reason for the transition (Kubernetes condition/Event convention), e.g. <c>HeartbeatTimeout</c>.</param>
public readonly record struct NodeTransition(NodePhase Phase, bool Changed, string Reason);

/// <summary>Options of <see cref="NodeLifecycle"/>.</summary>
public sealed record NodeLifecycleOptions
{
    /// <summary>Default grace period: 30 seconds (issue 2).</summary>
    public static readonly TimeSpan DefaultGracePeriod = TimeSpan.FromSeconds(30);

    /// <summary>How long a node may go without a valid heartbeat before it is <c>offline</c>. Must be positive.</summary>
    public TimeSpan GracePeriod { get; init; } = DefaultGracePeriod;

}

/// <summary>
/// The node lifecycle state machine: pure, deterministic, and driven by a <see cref="TimeProvider"/>.
/// Used by the API's standalone background service and by the operator (one logic, two appliers).
/// </summary>
/// <remarks>
/// Rules (seed 000 plus issue 2):
/// registered → pending (quarantine stays quarantine);
/// heartbeat ready → active, not ready → pending (quarantine stays quarantine);
/// no heartbeat for longer than the grace period → offline (from pending or active only);
/// quarantine set → quarantine from any phase; quarantine cleared → pending.
/// </remarks>
public sealed class NodeLifecycle
{
    private readonly TimeProvider _clock;

    /// <summary>Creates the state machine.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The grace period is not positive.</exception>
    public NodeLifecycle(NodeLifecycleOptions options, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clock);
        if (options.GracePeriod <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.GracePeriod, "grace period must be positive");
        }

        GracePeriod = options.GracePeriod;
        _clock = clock;
    }

    /// <summary>The configured grace period.</summary>
    public TimeSpan GracePeriod { get; }


    /// <summary>Time without a heartbeat after which a live node is offline: the grace period (measured on the real last heartbeat in both modes).</summary>
    public TimeSpan Timeout => GracePeriod;

    /// <summary>The clock's current UTC time.</summary>
    public DateTimeOffset Now => _clock.GetUtcNow();

    /// <summary>Applies one event to a node's state at the clock's current time.</summary>
    /// <returns>The resulting phase and whether it changed. <see cref="NodeLifecycleState.LastSeen"/> is the caller's to update.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Unknown event type.</exception>
    public NodeTransition Apply(NodeLifecycleState state, NodeEvent nodeEvent)
    {
        ArgumentNullException.ThrowIfNull(nodeEvent);
        var current = state.Phase;
        var (next, reason) = nodeEvent switch
        {
            NodeEvent.QuarantineSet => (NodePhase.Quarantine, "QuarantineRequested"),
            NodeEvent.QuarantineCleared => current == NodePhase.Quarantine
                ? (NodePhase.Pending, "QuarantineCleared")
                : (current, "Unchanged"),
            _ when current == NodePhase.Quarantine => (NodePhase.Quarantine, "Unchanged"),
            NodeEvent.Registered => (NodePhase.Pending, "Registered"),
            NodeEvent.HeartbeatReceived { Ready: true } => (NodePhase.Active, "RuntimeReady"),
            NodeEvent.HeartbeatReceived => (NodePhase.Pending, "RuntimeNotReady"),
            NodeEvent.TimePassed when IsOverdue(state) => (NodePhase.Offline, "HeartbeatTimeout"),
            NodeEvent.TimePassed => (current, "Unchanged"),
            _ => throw new ArgumentOutOfRangeException(nameof(nodeEvent), nodeEvent, "unknown node event"),
        };

        return next == current ? new NodeTransition(next, false, "Unchanged") : new NodeTransition(next, true, reason);
    }

    /// <summary>
    /// When the node goes offline if nothing else happens: <c>LastSeen + GracePeriod</c>, or null when
    /// time passing cannot change its phase (offline or quarantine). A reconciler requeues at this instant.
    /// </summary>
    public DateTimeOffset? OfflineDeadline(NodeLifecycleState state) =>
        state.Phase is NodePhase.Pending or NodePhase.Active ? state.LastSeen + Timeout : null;

    private bool IsOverdue(NodeLifecycleState state) =>
        OfflineDeadline(state) is { } deadline && _clock.GetUtcNow() > deadline;
}
