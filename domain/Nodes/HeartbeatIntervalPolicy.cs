namespace Dgon.Domain.Nodes;

/// <summary>
/// The heartbeat interval the API tells every node (issue 11, after Nomad's <c>max_heartbeats_per_second</c>): the
/// base interval while the fleet is small, stretched so that the whole fleet sends at most
/// <see cref="MaxHeartbeatsPerSecond"/> heartbeats a second, and never longer than a third of the grace period, so a
/// node may miss two heartbeats before it goes offline.
/// </summary>
/// <param name="BaseInterval">Interval of a small fleet (seed 000: 10 s).</param>
/// <param name="MaxHeartbeatsPerSecond">Fleet-wide budget of heartbeats per second; positive.</param>
/// <param name="GracePeriod">The lifecycle's grace period; the interval is capped at a third of it.</param>
public sealed record HeartbeatIntervalPolicy(TimeSpan BaseInterval, double MaxHeartbeatsPerSecond, TimeSpan GracePeriod)
{
    /// <summary>Seed 000's heartbeat interval: 10 s.</summary>
    public static readonly TimeSpan DefaultBaseInterval = TimeSpan.FromSeconds(10);

    /// <summary>Default fleet-wide budget: 10,000 heartbeats/s (100,000 nodes at 10 s).</summary>
    public const double DefaultMaxHeartbeatsPerSecond = 10_000;

    /// <summary>Longest interval the grace period allows: a third of it.</summary>
    public TimeSpan MaxInterval => GracePeriod / 3;

    /// <summary>
    /// The interval for a fleet of <paramref name="nodes"/>: <c>clamp(nodes / MaxHeartbeatsPerSecond, BaseInterval,
    /// GracePeriod / 3)</c>, in whole seconds rounded up (at least 1 s). Rounded up so the budget holds.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="nodes"/> is negative.</exception>
    public TimeSpan IntervalFor(int nodes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nodes);
        var needed = TimeSpan.FromSeconds(nodes / MaxHeartbeatsPerSecond);
        var interval = needed > BaseInterval ? needed : BaseInterval;
        if (interval > MaxInterval)
        {
            interval = MaxInterval;
        }

        return TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(Math.Round(interval.TotalSeconds, 6))));
    }

    /// <summary>Whether the budget holds for <paramref name="nodes"/> within the grace period's cap.</summary>
    public bool BudgetHolds(int nodes) => nodes / MaxHeartbeatsPerSecond <= MaxInterval.TotalSeconds;
}
