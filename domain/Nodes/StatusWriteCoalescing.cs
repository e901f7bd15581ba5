namespace Dgon.Domain.Nodes;

/// <summary>The part of a node's recorded status that decides whether a heartbeat must be written.</summary>
/// <param name="Phase">Recorded phase, or null when none was recorded yet.</param>
/// <param name="Ready">Recorded ready flag, or null.</param>
/// <param name="LastHeartbeatTime">Recorded last heartbeat (UTC), or null.</param>
/// <param name="Conditions">Recorded conditions.</param>
public sealed record RecordedNodeStatus(NodePhase? Phase, bool? Ready, DateTimeOffset? LastHeartbeatTime, IReadOnlyList<NodeCondition> Conditions);

/// <summary>
/// Issue 3's rule for coalescing heartbeat writes to the Kubernetes API server: a status write happens when the
/// phase, the ready flag or a condition changes, or when the recorded lastHeartbeatTime is older than the refresh
/// interval (default 30 s). Steady heartbeats therefore cost at most one write per node per refresh interval.
/// </summary>
public static class StatusWriteCoalescing
{
    /// <summary>Issue 3 default refresh interval: 30 seconds.</summary>
    public static readonly TimeSpan DefaultRefreshInterval = TimeSpan.FromSeconds(30);

    /// <summary>Whether the status must be written.</summary>
    /// <param name="recorded">What is stored now.</param>
    /// <param name="desired">What the heartbeat would store.</param>
    /// <param name="now">Current time (UTC).</param>
    /// <param name="refreshInterval">Longest the recorded lastHeartbeatTime may age before it is refreshed. Positive.</param>
    /// <exception cref="ArgumentOutOfRangeException">The refresh interval is not positive.</exception>
    public static bool NeedsWrite(RecordedNodeStatus recorded, RecordedNodeStatus desired, DateTimeOffset now, TimeSpan refreshInterval)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        ArgumentNullException.ThrowIfNull(desired);
        if (refreshInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(refreshInterval), refreshInterval, "refresh interval must be positive");
        }

        return recorded.Phase != desired.Phase
            || recorded.Ready != desired.Ready
            || !NodeConditions.Equivalent(recorded.Conditions, desired.Conditions)
            || recorded.LastHeartbeatTime is not { } last
            || now - last >= refreshInterval;
    }
}
