using System.Net;
using k8s.Autorest;

namespace Dgon.Kubernetes.Tests;

public sealed class KubeRetryTests
{
    /// <summary>An error response as KubernetesClient throws it: the status code and the Status body.</summary>
    private static HttpOperationException Error(HttpStatusCode code, string reason, string message) => new(message)
    {
        Response = new HttpResponseMessageWrapper(new HttpResponseMessage(code), $$"""{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"{{reason}}","code":{{(int)code}}}"""),
    };

    private static HttpOperationException Conflict(string message) => Error(HttpStatusCode.Conflict, "Conflict", message);

    [Fact]
    public async Task Reruns_the_whole_attempt_on_conflict_until_it_succeeds()
    {
        var calls = 0;
        var result = await KubeRetry.OnConflictAsync(_ =>
        {
            calls++;
            return calls < 3 ? throw Conflict("stale") : Task.FromResult("ok");
        }, CancellationToken.None);
        Assert.Equal("ok", result);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task Rethrows_the_last_conflict_when_attempts_run_out()
    {
        var calls = 0;
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            throw Conflict("conflict " + calls);
        }, CancellationToken.None, maxAttempts: 4));
        Assert.Equal(4, calls);
        Assert.Equal("conflict 4", e.Message);
    }

    [Fact]
    public async Task Other_errors_are_not_retried()
    {
        var calls = 0;
        await Assert.ThrowsAsync<HttpOperationException>(() => KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            throw Error(HttpStatusCode.NotFound, "NotFound", "gone");
        }, CancellationToken.None));
        Assert.Equal(1, calls);

        // 409 AlreadyExists is not a stale read: retrying cannot help.
        await Assert.ThrowsAsync<HttpOperationException>(() => KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            throw Error(HttpStatusCode.Conflict, "AlreadyExists", "exists");
        }, CancellationToken.None));
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task Backoff_starts_at_10ms_and_doubles()
    {
        var time = new CountingTimeProvider();
        var calls = 0;
        var task = KubeRetry.OnConflictAsync<int>(_ =>
        {
            calls++;
            return calls < 3 ? throw Conflict("stale") : Task.FromResult(7);
        }, time, CancellationToken.None);
        Assert.Equal(1, calls);
        time.Advance(TimeSpan.FromMilliseconds(8.9)); // first delay is 10 ms ± 10 %
        Assert.Equal(1, calls);
        time.Advance(TimeSpan.FromMilliseconds(2.2));
        await Dgon.Testing.Eventually.Until(() => Task.FromResult(calls == 2 && time.TimersCreated == 2), TimeSpan.FromSeconds(10), "second attempt and its backoff timer");
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
            return calls < 2 ? throw Conflict("stale") : Task.CompletedTask;
        }, CancellationToken.None);
        Assert.Equal(2, calls);
    }
}
