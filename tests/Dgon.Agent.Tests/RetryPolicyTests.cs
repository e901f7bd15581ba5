using System.Net;

namespace Dgon.Agent.Tests;

public sealed class RetryPolicyTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(2, 4)]
    [InlineData(5, 32)]
    [InlineData(6, 60)]
    [InlineData(40, 60)]
    [InlineData(int.MaxValue, 60)]
    public void Ceiling_doubles_from_1_s_up_to_60_s(int attempt, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), RetryPolicy.Ceiling(attempt));

    [Fact]
    public void Full_jitter_spans_zero_to_the_ceiling()
    {
        Assert.Equal(TimeSpan.Zero, RetryPolicy.Delay(null, 3, 0));
        Assert.Equal(TimeSpan.FromSeconds(4), RetryPolicy.Delay(null, 3, 0.5));
        Assert.True(RetryPolicy.Delay(null, 3, 0.999999) < TimeSpan.FromSeconds(8));
        Assert.True(RetryPolicy.Delay(null, 30, 0.999999) <= TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void Retry_after_is_honoured_and_capped()
    {
        var e = new NodeApiException("heartbeat", HttpStatusCode.TooManyRequests, null, TimeSpan.FromSeconds(90), null);
        Assert.Equal(TimeSpan.FromSeconds(90), RetryPolicy.Delay(e, 0, 0.1));
        var huge = new NodeApiException("heartbeat", HttpStatusCode.ServiceUnavailable, null, TimeSpan.FromHours(5), null);
        Assert.Equal(RetryPolicy.MaxRetryAfter, RetryPolicy.Delay(huge, 0, 0.1));
    }

    [Fact]
    public void Transient_failures_are_network_timeouts_5xx_408_429()
    {
        Assert.True(RetryPolicy.IsTransient(new HttpRequestException("refused"), CancellationToken.None));
        Assert.True(RetryPolicy.IsTransient(new TaskCanceledException("timeout"), CancellationToken.None));
        Assert.True(RetryPolicy.IsTransient(Api(HttpStatusCode.BadGateway), CancellationToken.None));
        Assert.True(RetryPolicy.IsTransient(Api(HttpStatusCode.RequestTimeout), CancellationToken.None));
        Assert.True(RetryPolicy.IsTransient(Api(HttpStatusCode.TooManyRequests), CancellationToken.None));
        Assert.False(RetryPolicy.IsTransient(Api(HttpStatusCode.UnprocessableEntity), CancellationToken.None));
        Assert.False(RetryPolicy.IsTransient(Api(HttpStatusCode.Conflict), CancellationToken.None));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.False(RetryPolicy.IsTransient(new TaskCanceledException(), cts.Token));
    }

    [Fact]
    public async Task Pipeline_retries_transient_failures_then_succeeds()
    {
        var attempts = 0;
        var delays = new List<TimeSpan>();
        var pipeline = RetryPolicy.Create(RetryPolicy.IsTransient, 5, TimeProvider.System, (_, _, d) => delays.Add(d), () => 0);
        var result = await pipeline.ExecuteAsync(_ =>
        {
            attempts++;
            return attempts < 3 ? throw new HttpRequestException("refused") : ValueTask.FromResult(42);
        }, CancellationToken.None);
        Assert.Equal(42, result);
        Assert.Equal(3, attempts);
        Assert.Equal([TimeSpan.Zero, TimeSpan.Zero], delays);
    }

    [Fact]
    public async Task Pipeline_does_not_retry_non_transient_failures()
    {
        var attempts = 0;
        var pipeline = RetryPolicy.Create(RetryPolicy.IsTransient, 5, TimeProvider.System, random: () => 0);
        await Assert.ThrowsAsync<NodeApiException>(async () => await pipeline.ExecuteAsync(_ =>
        {
            attempts++;
            throw Api(HttpStatusCode.UnprocessableEntity);
        }, CancellationToken.None));
        Assert.Equal(1, attempts);
    }

    [Fact]
    public async Task Pipeline_gives_up_after_the_bound()
    {
        var attempts = 0;
        var pipeline = RetryPolicy.Create(RetryPolicy.IsTransient, 2, TimeProvider.System, random: () => 0);
        await Assert.ThrowsAsync<HttpRequestException>(async () => await pipeline.ExecuteAsync(_ =>
        {
            attempts++;
            throw new HttpRequestException("refused");
        }, CancellationToken.None));
        Assert.Equal(3, attempts);
    }

    private static NodeApiException Api(HttpStatusCode status) => new("heartbeat", status, null, null, null);
}
