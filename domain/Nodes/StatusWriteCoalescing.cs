namespace Dgon.Domain.Nodes;

/// <summary>What the ingress API last wrote of a node's heartbeat observation (Kubernetes mode: DgonNode status).</summary>
/// <param name="LastHeartbeatTime">Recorded last heartbeat (UTC), or null when none was recorded.</param>
/// <param name="Ready">Recorded ready flag, or null.</param>
/// <param name="HeartbeatSinceRegistration">Whether the recorded heartbeat is not older than the node's last registration.</param>
/// <param name="LastWriteTime">When the API last wrote the observation (its clock), or null when unknown (after a restart: then <paramref name="LastHeartbeatTime"/> stands in).</param>
public sealed record RecordedObservation(DateTimeOffset? LastHeartbeatTime, bool? Ready, bool HeartbeatSinceRegistration, DateTimeOffset? LastWriteTime);

/// <summary>
/// The throttle for heartbeat observations written to the Kubernetes API server (issue 10): a leading-and-trailing
/// edge rate limit per node.
/// <list type="bullet">
/// <item>Written at once (<see cref="WriteNow"/>) when it changes what the operator decides on: the first heartbeat
/// (or the first since a registration), a changed ready flag, or when the last write is a whole refresh interval
/// old.</item>
/// <item>Otherwise kept and written at <see cref="DueAt"/> = last write + refresh interval (the trailing edge), so
/// the recorded <c>lastHeartbeatTime</c> reaches the real last heartbeat within one refresh interval.</item>
/// </list>
/// Bounds: at most one write per node per refresh interval for a steady node; the recorded time lags the real one by
/// at most the refresh interval, so offline detection on the recorded time is exact to within
/// grace − refresh ≥ 0 when <see cref="Validate"/> holds (refresh ≤ grace / 2).
/// </summary>
public static class StatusWriteCoalescing
{
    /// <summary>Default refresh interval: 10 s, seed 000's heartbeat interval.</summary>
    public static readonly TimeSpan DefaultRefreshInterval = TimeSpan.FromSeconds(10);

    /// <summary>Whether a heartbeat observed at <paramref name="now"/> with <paramref name="ready"/> is written at once.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="refreshInterval"/> is not positive.</exception>
    public static bool WriteNow(RecordedObservation recorded, bool ready, DateTimeOffset now, TimeSpan refreshInterval)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        if (refreshInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(refreshInterval), refreshInterval, "refresh interval must be positive");
        }

        return ChangesDecision(recorded, ready) || now >= DueAt(recorded, refreshInterval);
    }

    /// <summary>
    /// Whether writing a heartbeat with <paramref name="ready"/> changes what the operator decides on: the first
    /// heartbeat, the first since a registration, or a changed ready flag. These writes go first under the status-write
    /// budget (issue 11); the others only refresh <c>lastHeartbeatTime</c>.
    /// </summary>
    public static bool ChangesDecision(RecordedObservation recorded, bool ready)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        return recorded.LastHeartbeatTime is null || !recorded.HeartbeatSinceRegistration || recorded.Ready != ready;
    }

    /// <summary>When a held-back observation is written: the last write (or, unknown, the recorded heartbeat) plus the refresh interval.</summary>
    public static DateTimeOffset DueAt(RecordedObservation recorded, TimeSpan refreshInterval)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        return (recorded.LastWriteTime ?? recorded.LastHeartbeatTime ?? DateTimeOffset.MinValue) is var last && last == DateTimeOffset.MinValue
            ? last
            : last + refreshInterval;
    }

    /// <summary>
    /// Checks the refresh interval against the heartbeat grace period: a node heartbeating within its interval must
    /// never look overdue on the recorded time, which needs refresh ≤ grace / 2.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The refresh interval is not positive or exceeds half the grace period.</exception>
    public static void Validate(TimeSpan refreshInterval, TimeSpan gracePeriod)
    {
        if (refreshInterval <= TimeSpan.Zero || refreshInterval > gracePeriod / 2)
        {
            throw new ArgumentOutOfRangeException(
                nameof(refreshInterval),
                refreshInterval,
                $"DGON_STATUS_REFRESH_SECONDS must be positive and at most half the heartbeat grace period ({gracePeriod.TotalSeconds:0.###} s)");
        }
    }
}
