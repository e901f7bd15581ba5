namespace Dgon.Agent.Tests;

public sealed class RequestClockTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    [Fact]
    public async Task Frozen_clock_gives_consecutive_seconds()
    {
        var clock = new RequestClock(new FakeTimeProvider(Start));
        var issued = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            issued.Add(await clock.NextAsync(CancellationToken.None));
        }

        Assert.Equal([1_800_000_000L, 1_800_000_001, 1_800_000_002, 1_800_000_003, 1_800_000_004], issued);
    }

    [Fact]
    public async Task Moving_clock_gives_now_once_it_is_later_than_the_last()
    {
        var time = new FakeTimeProvider(Start);
        var clock = new RequestClock(time);
        Assert.Equal(1_800_000_000, await clock.NextAsync(CancellationToken.None));
        time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Equal(1_800_000_001, await clock.NextAsync(CancellationToken.None)); // same second: last + 1
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(1_800_000_030, await clock.NextAsync(CancellationToken.None)); // now
    }

    [Fact]
    public async Task Concurrent_callers_never_share_a_second()
    {
        var clock = new RequestClock(new FakeTimeProvider(Start));
        var issued = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(async () => await clock.NextAsync(CancellationToken.None))));
        Assert.Equal(50, issued.Distinct().Count());
        Assert.Equal(Start.ToUnixTimeSeconds() + 49, issued.Max());
    }

    [Fact]
    public async Task A_timestamp_more_than_60_s_ahead_waits_for_the_clock()
    {
        var time = new FakeTimeProvider(Start);
        var clock = new RequestClock(time);
        for (var i = 0; i <= 60; i++)
        {
            await clock.NextAsync(CancellationToken.None); // now .. now + 60
        }

        Assert.Equal(Start.ToUnixTimeSeconds() + 60, clock.Last);
        var next = clock.NextAsync(CancellationToken.None).AsTask();
        Assert.False(next.IsCompleted, "now + 61 is more than 60 s ahead"); // its timer waits for the fake clock

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(Start.ToUnixTimeSeconds() + 61, await next.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Waiting_is_cancellable()
    {
        var clock = new RequestClock(new FakeTimeProvider(Start));
        for (var i = 0; i <= 60; i++)
        {
            await clock.NextAsync(CancellationToken.None);
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await clock.NextAsync(cts.Token));
    }
}
