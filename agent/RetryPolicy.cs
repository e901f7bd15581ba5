using Polly;
using Polly.Retry;

namespace Dgon.Agent;

/// <summary>
/// Retries with exponential backoff and full jitter (Polly.Core <see cref="ResiliencePipeline"/>): the delay before
/// retry <c>n</c> (0-based) is uniform in <c>[0, min(60 s, 1 s × 2^n))</c>, unless the failed answer was a 429/503
/// with Retry-After, which is honoured (up to 10 minutes).
/// </summary>
public static class RetryPolicy
{
    /// <summary>Backoff base: 1 s.</summary>
    public static readonly TimeSpan BaseDelay = TimeSpan.FromSeconds(1);

    /// <summary>Backoff ceiling: 60 s.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(60);

    /// <summary>Longest Retry-After honoured: 10 minutes (a larger value is cut to this).</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromMinutes(10);

    /// <summary>Upper bound of the jittered delay before retry <paramref name="attempt"/> (0-based): min(60 s, 1 s × 2^attempt).</summary>
    public static TimeSpan Ceiling(int attempt)
    {
        var exponent = Math.Clamp(attempt, 0, 30);
        var seconds = Math.Min(MaxDelay.TotalSeconds, BaseDelay.TotalSeconds * Math.Pow(2, exponent));
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>
    /// The delay before retry <paramref name="attempt"/>: Retry-After when <paramref name="failure"/> carries one,
    /// else full jitter, <paramref name="random"/> × <see cref="Ceiling"/>.
    /// </summary>
    /// <param name="failure">The failure being retried, or null.</param>
    /// <param name="attempt">0-based retry number.</param>
    /// <param name="random">A uniform sample in [0, 1).</param>
    public static TimeSpan Delay(Exception? failure, int attempt, double random)
    {
        if (failure is NodeApiException { RetryAfter: { } retryAfter })
        {
            return retryAfter > MaxRetryAfter ? MaxRetryAfter : retryAfter;
        }

        return TimeSpan.FromTicks((long)(Math.Clamp(random, 0, 1) * Ceiling(attempt).Ticks));
    }

    /// <summary>
    /// Whether a failure is transient: a network error (<see cref="HttpRequestException"/>), a timeout (an
    /// <see cref="OperationCanceledException"/> while <paramref name="cancellationToken"/> is not cancelled), or an API
    /// answer of kind <see cref="ApiFailureKind.Transient"/> (5xx, 408, 429).
    /// </summary>
    public static bool IsTransient(Exception failure, CancellationToken cancellationToken) => failure switch
    {
        HttpRequestException => true,
        TimeoutException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        NodeApiException api => api.Kind == ApiFailureKind.Transient,
        _ => false,
    };

    /// <summary>Builds a retry pipeline.</summary>
    /// <param name="shouldRetry">Which failures to retry (given the failure and the call's cancellation token). Cancellation of the call is never retried.</param>
    /// <param name="maxRetries">Retries after the first attempt; <see cref="int.MaxValue"/> for unbounded.</param>
    /// <param name="time">Clock for the delays.</param>
    /// <param name="onRetry">Called before each delay with the failure, the 0-based retry number and the delay.</param>
    /// <param name="random">Source of uniform samples in [0, 1); <see cref="Random.Shared"/> by default.</param>
    public static ResiliencePipeline Create(
        Func<Exception, CancellationToken, bool> shouldRetry,
        int maxRetries,
        TimeProvider time,
        Action<Exception, int, TimeSpan>? onRetry = null,
        Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(shouldRetry);
        ArgumentNullException.ThrowIfNull(time);
        var sample = random ?? Random.Shared.NextDouble;
        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = maxRetries,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } e
                    && !(e is OperationCanceledException && args.Context.CancellationToken.IsCancellationRequested)
                    && shouldRetry(e, args.Context.CancellationToken)),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(Delay(args.Outcome.Exception, args.AttemptNumber, sample())),
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is { } e)
                    {
                        onRetry?.Invoke(e, args.AttemptNumber, args.RetryDelay);
                    }

                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }
}
