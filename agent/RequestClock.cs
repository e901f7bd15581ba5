namespace Dgon.Agent;

/// <summary>
/// The <c>X-Node-Ts</c> source of one agent process, shared by heartbeats, receipts and key-signed requests (issue 9
/// contract, replay rule): the API refuses a heartbeat or key-signed request whose timestamp is not later than the
/// node's last accepted one, so the agent never reuses a second: <c>ts = max(now, last + 1)</c> in unix seconds.
/// When requests come faster than one per second the timestamps run ahead of the clock; the API accepts at most
/// 120 s of skew, so a timestamp more than <see cref="MaxLead"/> ahead is not issued: the caller waits until the
/// clock has caught up (a clock stepped back waits likewise, as no earlier timestamp could be accepted anyway).
/// Thread-safe.
/// </summary>
public sealed class RequestClock
{
    /// <summary>Farthest a timestamp may run ahead of the local clock: 60 s, half the API's ±120 s window.</summary>
    public static readonly TimeSpan MaxLead = TimeSpan.FromSeconds(60);

    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private long _last;

    /// <summary>Creates a clock over <paramref name="time"/>.</summary>
    public RequestClock(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
    }

    /// <summary>The last timestamp issued (unix seconds), or 0 before the first.</summary>
    public long Last
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    /// <summary>
    /// The next timestamp: <c>max(now, last + 1)</c> unix seconds, strictly greater than every earlier one. Waits
    /// (on <see cref="TimeProvider"/> timers) while that would be more than <see cref="MaxLead"/> ahead of now.
    /// </summary>
    /// <returns>Unix seconds.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public async ValueTask<long> NextAsync(CancellationToken cancellationToken)
    {
        var maxLead = (long)MaxLead.TotalSeconds;
        while (true)
        {
            long wait;
            lock (_gate)
            {
                var now = _time.GetUtcNow().ToUnixTimeSeconds();
                var next = Math.Max(now, _last + 1);
                wait = next - now - maxLead;
                if (wait <= 0)
                {
                    _last = next;
                    return next;
                }
            }

            await Task.Delay(TimeSpan.FromSeconds(wait), _time, cancellationToken);
        }
    }
}
