using Dgon.Domain.Nodes;

namespace Dgon.Api.Fleet;

/// <summary>How many nodes the fleet has, as this replica knows it (standalone: <see cref="NodeTable"/>; Kubernetes: the DgonNode cache).</summary>
public interface IFleetSize
{
    /// <summary>Number of registered nodes.</summary>
    int NodeCount { get; }
}

/// <summary>
/// The heartbeat interval this replica tells nodes (<see cref="HeartbeatIntervalPolicy"/> applied to
/// <see cref="IFleetSize"/>), recomputed at most once a second. Logs a warning once when the fleet outgrows the
/// budget within the grace period's cap (then the interval stays at the cap and the budget is exceeded).
/// </summary>
public sealed partial class HeartbeatIntervals(HeartbeatIntervalPolicy policy, IFleetSize fleet, TimeProvider time, ILogger<HeartbeatIntervals> logger)
{
    private long _computedAt = long.MinValue;
    private int _seconds = (int)policy.BaseInterval.TotalSeconds;
    private int _warned;

    /// <summary>The interval to tell nodes now, in whole seconds.</summary>
    public int CurrentSeconds
    {
        get
        {
            var now = time.GetTimestamp();
            var at = Interlocked.Read(ref _computedAt);
            if (at == long.MinValue || time.GetElapsedTime(at, now) >= TimeSpan.FromSeconds(1))
            {
                Interlocked.Exchange(ref _computedAt, now);
                var nodes = fleet.NodeCount;
                Volatile.Write(ref _seconds, (int)policy.IntervalFor(nodes).TotalSeconds);
                if (!policy.BudgetHolds(nodes) && Interlocked.Exchange(ref _warned, 1) == 0)
                {
                    LogBudgetExceeded(nodes, policy.MaxHeartbeatsPerSecond, policy.MaxInterval.TotalSeconds);
                }
            }

            return Volatile.Read(ref _seconds);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Nodes} nodes exceed the heartbeat budget of {Budget}/s (DGON_MAX_HEARTBEATS_PER_SECOND; in Kubernetes mode also DGON_STATUS_WRITES_PER_SECOND) even at the longest interval the grace period allows ({Cap} s): raise DGON_HEARTBEAT_GRACE_SECONDS or the budget")]
    private partial void LogBudgetExceeded(int nodes, double budget, double cap);
}
