namespace Dgon.Api.Kubernetes;

/// <summary>
/// This replica's budget of heartbeat status writes to the Kubernetes API server (issue 11,
/// <c>DGON_STATUS_WRITES_PER_SECOND</c>): a token bucket holding at most one second's worth of tokens
/// (<see cref="WritesPerSecond"/>), refilled continuously at <see cref="WritesPerSecond"/> tokens a second of the
/// injected clock. Over any window of <c>W</c> seconds at most <c>WritesPerSecond × (W + 1)</c> writes are allowed.
/// </summary>
/// <remarks>
/// The smallest replacement for <c>System.Threading.RateLimiting.TokenBucketRateLimiter</c>, which does not fit here:
/// it reads <c>Stopwatch</c> and takes no <see cref="TimeProvider"/> (dotnet/runtime#106447, open), and even with
/// <c>AutoReplenishment = false</c> its <c>TryReplenish</c> adds tokens by the real time elapsed (checked on .NET 10:
/// an emptied 20-token bucket had 0 tokens after an immediate <c>TryReplenish</c> and 6 after 300 ms), so the
/// registry's budget could not be tested with <c>FakeTimeProvider</c>. Thread-safe.
/// </remarks>
public sealed class StatusWriteBudget
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _clock;
    private double _tokens;
    private long _refilledAt;

    /// <summary>Creates a full bucket.</summary>
    /// <param name="writesPerSecond">Writes a second; at least 1.</param>
    /// <param name="clock">Clock the refill follows.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="writesPerSecond"/> is less than 1.</exception>
    public StatusWriteBudget(int writesPerSecond, TimeProvider clock)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(writesPerSecond, 1);
        ArgumentNullException.ThrowIfNull(clock);
        WritesPerSecond = writesPerSecond;
        _clock = clock;
        _tokens = writesPerSecond;
        _refilledAt = clock.GetTimestamp();
    }

    /// <summary>Refill rate and capacity: writes a second.</summary>
    public int WritesPerSecond { get; }

    /// <summary>Takes one token if there is one; false (nothing taken) when the budget is spent for now.</summary>
    public bool TryTake()
    {
        lock (_lock)
        {
            Refill();
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    /// <summary>Whole tokens available now.</summary>
    public int Available
    {
        get
        {
            lock (_lock)
            {
                Refill();
                return (int)_tokens;
            }
        }
    }

    private void Refill()
    {
        var now = _clock.GetTimestamp();
        var elapsed = _clock.GetElapsedTime(_refilledAt, now);
        if (elapsed > TimeSpan.Zero)
        {
            _tokens = Math.Min(WritesPerSecond, _tokens + (elapsed.TotalSeconds * WritesPerSecond));
            _refilledAt = now;
        }
    }
}
