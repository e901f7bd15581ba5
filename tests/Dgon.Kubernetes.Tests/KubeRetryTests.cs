namespace Dgon.Kubernetes.Tests;

public sealed class KubeRetryTests
{
    [Fact]
    public async Task Reruns_the_whole_attempt_on_conflict_until_it_succeeds()
    {
        var calls = 0;
        var result = await KubeRetry.OnConflictAsync(_ =>
        {
            calls++;
            return calls < 3 ? throw new KubeConflictException("stale") : Task.FromResult("ok");
        }, CancellationToken.None);
        Assert.Equal("ok", result);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task Rethrows_the_last_conflict_when_attempts_run_out()
    {
        var calls = 0;
        var e = await Assert.ThrowsAsync<KubeConflictException>(() => KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            throw new KubeConflictException("conflict " + calls);
        }, CancellationToken.None, maxAttempts: 4));
        Assert.Equal(4, calls);
        Assert.Equal("conflict 4", e.Message);
    }

    [Fact]
    public async Task Other_errors_are_not_retried()
    {
        var calls = 0;
        await Assert.ThrowsAsync<KubeNotFoundException>(() => KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            throw new KubeNotFoundException("gone");
        }, CancellationToken.None));
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task Backoff_starts_at_10ms_and_doubles()
    {
        var time = new ManualTimeProvider();
        var calls = 0;
        var task = KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            return calls < 3 ? throw new KubeConflictException("stale") : Task.FromResult(7);
        }, time, CancellationToken.None);
        Assert.Equal(1, calls);
        time.Advance(TimeSpan.FromMilliseconds(8.9)); // first delay is 10 ms ± 10 %
        Assert.Equal(1, calls);
        time.Advance(TimeSpan.FromMilliseconds(2.2));
        await Dgon.Testing.Eventually.Until(() => Task.FromResult(calls == 2 && time.ActiveTimers == 1), TimeSpan.FromSeconds(10), "second attempt and its backoff timer");
        // The second delay (20 ms ± 10 %) runs from when the first fired (9-11 ms): the third attempt is due at 27-33 ms.
        time.Advance(TimeSpan.FromMilliseconds(26.9 - 11.1));
        Assert.Equal(2, calls);
        time.Advance(TimeSpan.FromMilliseconds(33.1 - 26.9));
        Assert.Equal(7, await task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task Non_generic_overload_retries()
    {
        var calls = 0;
        await KubeRetry.OnConflictAsync(_ =>
        {
            calls++;
            return calls < 2 ? throw new KubeConflictException("stale") : Task.CompletedTask;
        }, CancellationToken.None);
        Assert.Equal(2, calls);
    }
}
