namespace Dgon.Kubernetes.Controllers;

/// <summary>
/// A work queue with client-go <c>workqueue</c> guarantees: duplicates collapse (a key waits in the queue at most once),
/// a key is never handed to two workers at once (a key re-added while it is being processed is marked dirty and
/// queued again only after <see cref="Done"/>), delayed adds (<see cref="AddAfter"/>) and per-key rate-limited adds
/// (<see cref="AddRateLimited"/>). client-go's RateLimitingInterface; KubernetesClient has no work queue.
/// </summary>
/// <typeparam name="TKey">The key type (usually <c>namespace/name</c> strings).</typeparam>
public interface IRateLimitingQueue<TKey>
    where TKey : notnull
{
    /// <summary>Queues <paramref name="key"/> unless it is already waiting; if it is being processed it is queued again after <see cref="Done"/>. Ignored after <see cref="ShutDown"/>.</summary>
    void Add(TKey key);

    /// <summary>Queues <paramref name="key"/> once <paramref name="delay"/> has passed (immediately when ≤ 0); a pending earlier time for the same key wins.</summary>
    void AddAfter(TKey key, TimeSpan delay);

    /// <summary>Queues <paramref name="key"/> after its per-key exponential backoff (base·2^failures, capped) and counts a failure.</summary>
    void AddRateLimited(TKey key);

    /// <summary>Resets the failure count of <paramref name="key"/> (call after a successful reconcile).</summary>
    void Forget(TKey key);

    /// <summary>How many times <paramref name="key"/> was rate-limited since the last <see cref="Forget"/>.</summary>
    int NumRequeues(TKey key);

    /// <summary>
    /// Waits for the next key and marks it processing (call <see cref="Done"/> when finished). Returns
    /// <c>default</c> once the queue is shut down and drained.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    ValueTask<TKey?> GetAsync(CancellationToken ct);

    /// <summary>Marks <paramref name="key"/> finished; if it was re-added meanwhile it is queued now.</summary>
    void Done(TKey key);

    /// <summary>Stops accepting keys, cancels delayed adds and wakes waiters; queued keys can still be drained.</summary>
    void ShutDown();

    /// <summary>True after <see cref="ShutDown"/>.</summary>
    bool ShuttingDown { get; }

    /// <summary>Keys waiting to be processed (not counting processing or delayed ones).</summary>
    int Length { get; }
}

/// <summary>
/// Implementation of <see cref="IRateLimitingQueue{TKey}"/> following client-go's workqueue (queue + dirty set +
/// processing set), delaying queue and per-item exponential failure rate limiter (base 5 ms, cap 1000 s by default).
/// Delays use <see cref="TimeProvider"/> timers so tests can drive them with a fake clock. Thread-safe.
/// </summary>
public sealed class RateLimitingQueue<TKey> : IRateLimitingQueue<TKey>
    where TKey : notnull
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly Queue<TKey> _queue = new();
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly Dictionary<TKey, (DateTimeOffset ReadyAt, ITimer Timer)> _waiting = [];
    private readonly LinkedList<TaskCompletionSource<bool>> _waiters = new();
    private bool _shuttingDown;

    /// <summary>Creates a queue.</summary>
    /// <param name="time">Clock and timers.</param>
    /// <param name="baseDelay">First rate-limited delay; default 5 ms.</param>
    /// <param name="maxDelay">Cap of the rate-limited delay; default 1000 s.</param>
    public RateLimitingQueue(TimeProvider time, TimeSpan? baseDelay = null, TimeSpan? maxDelay = null)
    {
        _time = time ?? throw new ArgumentNullException(nameof(time));
        BaseDelay = baseDelay ?? TimeSpan.FromMilliseconds(5);
        MaxDelay = maxDelay ?? TimeSpan.FromSeconds(1000);
    }

    /// <summary>First rate-limited delay.</summary>
    public TimeSpan BaseDelay { get; }

    /// <summary>Cap of the rate-limited delay.</summary>
    public TimeSpan MaxDelay { get; }

    /// <inheritdoc />
    public bool ShuttingDown
    {
        get
        {
            lock (_gate)
            {
                return _shuttingDown;
            }
        }
    }

    /// <inheritdoc />
    public int Length
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <inheritdoc />
    public void Add(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            AddLocked(key);
        }
    }

    /// <inheritdoc />
    public void AddAfter(TKey key, TimeSpan delay)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }

            if (delay <= TimeSpan.Zero)
            {
                AddLocked(key);
                return;
            }

            var readyAt = _time.GetUtcNow() + delay;
            if (_waiting.TryGetValue(key, out var existing))
            {
                if (existing.ReadyAt <= readyAt)
                {
                    return;
                }

                existing.Timer.Dispose();
            }

            var timer = _time.CreateTimer(static state => ((Action)state!)(), (Action)(() => Fire(key, readyAt)), delay, Timeout.InfiniteTimeSpan);
            _waiting[key] = (readyAt, timer);
        }
    }

    /// <inheritdoc />
    public void AddRateLimited(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        TimeSpan delay;
        lock (_gate)
        {
            var failures = _failures.GetValueOrDefault(key);
            _failures[key] = failures + 1;
            delay = Backoff(failures);
        }

        AddAfter(key, delay);
    }

    /// <summary>The rate-limited delay after <paramref name="failures"/> earlier failures: BaseDelay·2^failures, capped at MaxDelay.</summary>
    public TimeSpan Backoff(int failures)
    {
        var factor = Math.Pow(2, Math.Min(failures, 62));
        var ticks = BaseDelay.Ticks * factor;
        return ticks >= MaxDelay.Ticks ? MaxDelay : TimeSpan.FromTicks((long)ticks);
    }

    /// <inheritdoc />
    public void Forget(TKey key)
    {
        lock (_gate)
        {
            _failures.Remove(key);
        }
    }

    /// <inheritdoc />
    public int NumRequeues(TKey key)
    {
        lock (_gate)
        {
            return _failures.GetValueOrDefault(key);
        }
    }

    /// <inheritdoc />
    public async ValueTask<TKey?> GetAsync(CancellationToken ct)
    {
        while (true)
        {
            TaskCompletionSource<bool> waiter;
            LinkedListNode<TaskCompletionSource<bool>> node;
            lock (_gate)
            {
                if (_queue.TryDequeue(out var key))
                {
                    _processing.Add(key);
                    _dirty.Remove(key);
                    return key;
                }

                if (_shuttingDown)
                {
                    return default;
                }

                waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                node = _waiters.AddLast(waiter);
            }

            try
            {
                await waiter.Task.WaitAsync(ct);
            }
            finally
            {
                lock (_gate)
                {
                    if (node.List is not null)
                    {
                        _waiters.Remove(node);
                    }
                }

                // A wake-up consumed by a cancelled waiter is passed on, so no queued key is stranded.
                if (ct.IsCancellationRequested && waiter.Task.IsCompletedSuccessfully)
                {
                    lock (_gate)
                    {
                        WakeOneLocked();
                    }
                }
            }
        }
    }

    /// <inheritdoc />
    public void Done(TKey key)
    {
        lock (_gate)
        {
            _processing.Remove(key);
            if (_dirty.Contains(key))
            {
                _queue.Enqueue(key);
                WakeOneLocked();
            }
        }
    }

    /// <inheritdoc />
    public void ShutDown()
    {
        lock (_gate)
        {
            _shuttingDown = true;
            foreach (var (_, waiting) in _waiting)
            {
                waiting.Timer.Dispose();
            }

            _waiting.Clear();
            while (_waiters.First is { } first)
            {
                _waiters.RemoveFirst();
                first.Value.TrySetResult(true);
            }
        }
    }

    private void Fire(TKey key, DateTimeOffset readyAt)
    {
        lock (_gate)
        {
            if (!_waiting.TryGetValue(key, out var waiting) || waiting.ReadyAt != readyAt)
            {
                return; // superseded by an earlier AddAfter or cancelled by ShutDown
            }

            waiting.Timer.Dispose();
            _waiting.Remove(key);
            AddLocked(key);
        }
    }

    private void AddLocked(TKey key)
    {
        if (_shuttingDown || !_dirty.Add(key))
        {
            return;
        }

        if (_processing.Contains(key))
        {
            return; // queued again by Done
        }

        _queue.Enqueue(key);
        WakeOneLocked();
    }

    private void WakeOneLocked()
    {
        while (_waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            if (first.Value.TrySetResult(true))
            {
                return;
            }
        }
    }
}
