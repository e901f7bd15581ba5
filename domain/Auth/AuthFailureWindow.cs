using Dgon.Domain.Ports;

namespace Dgon.Domain.Auth;

/// <summary>Options of <see cref="AuthFailureWindow"/>.</summary>
public sealed record AuthFailureWindowOptions
{
    /// <summary>Issue 3 default: 5 failures…</summary>
    public const int DefaultThreshold = 5;

    /// <summary>…within 10 minutes.</summary>
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromMinutes(10);

    /// <summary>Failures of one node id inside <see cref="Window"/> that make it reportable. At least 1.</summary>
    public int Threshold { get; init; } = DefaultThreshold;

    /// <summary>Sliding counting window. Positive.</summary>
    public TimeSpan Window { get; init; } = DefaultWindow;

    /// <summary>
    /// Most node ids tracked at once; beyond it the ids with the oldest last failure are forgotten first, so a flood
    /// of failures cannot grow memory without bound. At least 1.
    /// </summary>
    public int MaxTrackedNodes { get; init; } = 100_000;
}

/// <summary>
/// Counts HMAC failures per node id in a sliding window and says when a node crosses the threshold (issue 3:
/// "repeated HMAC failures for one node id, default 5 in 10 minutes, are recorded on the resource so the operator can
/// quarantine it"). Pure and in-memory: each API replica counts its own share of the traffic, so with N replicas
/// an attacker spreading requests evenly needs up to N × threshold failures. Thread-safe.
/// </summary>
/// <remarks>
/// To keep an attacker from turning failures into API-server writes, a node is reported at most once per window:
/// on the failure that reaches the threshold, and again only when a full window has passed since that report.
/// </remarks>
public sealed class AuthFailureWindow
{
    private readonly Dictionary<string, Tracker> _byNode = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Creates the counter.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Threshold, window or capacity is not positive.</exception>
    public AuthFailureWindow(AuthFailureWindowOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threshold, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTrackedNodes, 1, nameof(options));
        if (options.Window <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Window, "window must be positive");
        }

        Options = options;
    }

    /// <summary>The options in force.</summary>
    public AuthFailureWindowOptions Options { get; }

    /// <summary>Node ids currently tracked.</summary>
    public int TrackedNodes
    {
        get
        {
            lock (_gate)
            {
                return _byNode.Count;
            }
        }
    }

    /// <summary>Counts one failure of <paramref name="nodeId"/> at <paramref name="now"/>.</summary>
    /// <param name="nodeId">The node id the request claimed (an existing node's id).</param>
    /// <param name="reason">Why verification failed.</param>
    /// <param name="now">Time of the failure (UTC).</param>
    /// <returns>The record to write when this failure makes the node reportable; otherwise null.</returns>
    public AuthFailureRecord? RecordFailure(string nodeId, NodeAuthResult reason, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(nodeId);
        lock (_gate)
        {
            if (!_byNode.TryGetValue(nodeId, out var tracker))
            {
                if (_byNode.Count >= Options.MaxTrackedNodes)
                {
                    EvictOldest();
                }

                tracker = new Tracker();
                _byNode[nodeId] = tracker;
            }

            var cutoff = now - Options.Window;
            while (tracker.Failures.Count > 0 && tracker.Failures.Peek() <= cutoff)
            {
                tracker.Failures.Dequeue();
            }

            tracker.Failures.Enqueue(now);
            tracker.Last = now;
            // Only the newest Threshold failures matter for the decision; older ones are dropped to bound memory.
            while (tracker.Failures.Count > Options.Threshold)
            {
                tracker.Failures.Dequeue();
            }

            if (tracker.Failures.Count < Options.Threshold)
            {
                return null;
            }

            if (tracker.ReportedAt is { } reported && now - reported < Options.Window)
            {
                return null;
            }

            tracker.ReportedAt = now;
            return new AuthFailureRecord(tracker.Failures.Count, tracker.Failures.Peek(), now, reason.ToString());
        }
    }

    /// <summary>Forgets a node (after it re-registered with a fresh token, or was deleted).</summary>
    public void Reset(string nodeId)
    {
        lock (_gate)
        {
            _byNode.Remove(nodeId);
        }
    }

    private void EvictOldest()
    {
        string? oldest = null;
        var oldestTime = DateTimeOffset.MaxValue;
        foreach (var (id, t) in _byNode)
        {
            if (t.Last < oldestTime)
            {
                oldest = id;
                oldestTime = t.Last;
            }
        }

        if (oldest is not null)
        {
            _byNode.Remove(oldest);
        }
    }

    private sealed class Tracker
    {
        public Queue<DateTimeOffset> Failures { get; } = new();

        public DateTimeOffset Last { get; set; }

        public DateTimeOffset? ReportedAt { get; set; }
    }
}
