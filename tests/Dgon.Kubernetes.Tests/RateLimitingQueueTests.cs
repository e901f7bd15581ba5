using Dgon.Kubernetes.Controllers;

namespace Dgon.Kubernetes.Tests;

public sealed class RateLimitingQueueTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(10);

    private static async Task<string?> Get(RateLimitingQueue<string> q)
    {
        using var cts = new CancellationTokenSource(Short);
        return await q.GetAsync(cts.Token);
    }

    [Fact]
    public async Task Duplicates_collapse_while_waiting()
    {
        var q = new RateLimitingQueue<string>(new FakeTimeProvider());
        q.Add("a");
        q.Add("b");
        q.Add("a");
        Assert.Equal(2, q.Length);
        Assert.Equal("a", await Get(q));
        Assert.Equal("b", await Get(q));
        Assert.Equal(0, q.Length);
    }

    [Fact]
    public async Task Readd_while_processing_is_deferred_until_Done_and_then_queued_once()
    {
        var q = new RateLimitingQueue<string>(new FakeTimeProvider());
        q.Add("a");
        var key = await Get(q);
        Assert.Equal("a", key);

        q.Add("a");
        q.Add("a");
        Assert.Equal(0, q.Length); // dirty, not handed to a second worker

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await q.GetAsync(cts.Token));

        q.Done("a");
        Assert.Equal(1, q.Length);
        Assert.Equal("a", await Get(q));
        q.Done("a");
        Assert.Equal(0, q.Length);
    }

    [Fact]
    public async Task Two_workers_never_process_the_same_key_at_once()
    {
        var q = new RateLimitingQueue<string>(TimeProvider.System);
        var inFlight = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var overlaps = 0;
        var processed = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        async Task Worker()
        {
            while (await q.GetAsync(cts.Token) is { } key)
            {
                if (inFlight.AddOrUpdate(key, 1, (_, n) => n + 1) > 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                await Task.Delay(1);
                inFlight.AddOrUpdate(key, 0, (_, n) => n - 1);
                Interlocked.Increment(ref processed);
                q.Done(key);
            }
        }

        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(Worker)).ToArray();
        for (var i = 0; i < 300; i++)
        {
            q.Add("k" + (i % 3));
            if (i % 10 == 0)
            {
                await Task.Delay(1);
            }
        }

        await Dgon.Testing.Eventually.Until(() => Task.FromResult(q.Length == 0 && inFlight.Values.All(v => v == 0)), Short, "queue drained");
        q.ShutDown();
        await Task.WhenAll(workers);
        Assert.Equal(0, overlaps);
        Assert.InRange(processed, 3, 300);
    }

    [Fact]
    public async Task AddAfter_waits_for_the_clock_and_the_earliest_time_wins()
    {
        var time = new FakeTimeProvider();
        var q = new RateLimitingQueue<string>(time);
        q.AddAfter("a", TimeSpan.FromSeconds(10));
        q.AddAfter("a", TimeSpan.FromSeconds(3));
        q.AddAfter("a", TimeSpan.FromSeconds(20));
        Assert.Equal(0, q.Length);
        time.Advance(TimeSpan.FromSeconds(2.9));
        Assert.Equal(0, q.Length);
        time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.Equal(1, q.Length);
        Assert.Equal("a", await Get(q));
        q.Done("a");
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, q.Length); // the superseded timers did not fire again
    }

    [Fact]
    public void AddAfter_with_zero_delay_adds_at_once()
    {
        var q = new RateLimitingQueue<string>(new FakeTimeProvider());
        q.AddAfter("a", TimeSpan.Zero);
        Assert.Equal(1, q.Length);
    }

    [Fact]
    public void Backoff_grows_exponentially_is_capped_and_Forget_resets_it()
    {
        var time = new FakeTimeProvider();
        var q = new RateLimitingQueue<string>(time, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromMilliseconds(5), q.Backoff(0));
        Assert.Equal(TimeSpan.FromMilliseconds(10), q.Backoff(1));
        Assert.Equal(TimeSpan.FromMilliseconds(640), q.Backoff(7));
        Assert.Equal(TimeSpan.FromSeconds(1), q.Backoff(8));
        Assert.Equal(TimeSpan.FromSeconds(1), q.Backoff(1000));

        q.AddRateLimited("a"); // 5 ms
        Assert.Equal(1, q.NumRequeues("a"));
        time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(0, q.Length);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, q.Length);

        q.AddRateLimited("b");
        q.AddRateLimited("b");
        q.AddRateLimited("b"); // third failure: 20 ms, but the first (5 ms) timer wins as earliest
        Assert.Equal(3, q.NumRequeues("b"));
        q.Forget("b");
        Assert.Equal(0, q.NumRequeues("b"));
        Assert.Equal(1, q.NumRequeues("a"));
    }

    [Fact]
    public async Task Rate_limited_delay_doubles_per_failure()
    {
        var time = new FakeTimeProvider();
        var q = new RateLimitingQueue<string>(time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(100));
        var expected = new[] { 100, 200, 400, 800 };
        foreach (var ms in expected)
        {
            q.AddRateLimited("a");
            time.Advance(TimeSpan.FromMilliseconds(ms - 1));
            Assert.Equal(0, q.Length);
            time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(1, q.Length);
            Assert.Equal("a", await Get(q));
            q.Done("a");
        }

        Assert.Equal(4, q.NumRequeues("a"));
    }

    [Fact]
    public async Task ShutDown_drains_then_returns_default_and_wakes_waiters()
    {
        var q = new RateLimitingQueue<string>(new FakeTimeProvider());
        var waiting = q.GetAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        q.ShutDown();
        Assert.Null(await waiting.WaitAsync(Short));

        var q2 = new RateLimitingQueue<string>(new FakeTimeProvider());
        q2.Add("x");
        q2.AddAfter("later", TimeSpan.FromSeconds(1));
        q2.ShutDown();
        q2.Add("y"); // ignored
        Assert.True(q2.ShuttingDown);
        Assert.Equal("x", await Get(q2));
        Assert.Null(await Get(q2));
    }

    [Fact]
    public async Task A_cancelled_waiter_does_not_swallow_a_key()
    {
        var q = new RateLimitingQueue<string>(TimeProvider.System);
        using var cts = new CancellationTokenSource();
        var cancelled = q.GetAsync(cts.Token).AsTask();
        var live = q.GetAsync(CancellationToken.None).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        q.Add("k");
        Assert.Equal("k", await live.WaitAsync(Short));
    }
}
