using System.Threading.RateLimiting;
using Dgon.Api.Configuration;

namespace Dgon.Api.Http;

/// <summary>
/// The rate limits that need to know the outcome of authentication (issue 9), on System.Threading.RateLimiting (the
/// limiters ASP.NET Core rate limiting is built on):
/// <list type="bullet">
/// <item>failed authentications per client address (<see cref="RateLimitOptions.AuthFailures"/>): each failure takes a
/// permit; once the bucket is empty every node request from that address gets 429 before any work;</item>
/// <item>authenticated heartbeats and receipts per node id (<see cref="RateLimitOptions.NodeRequests"/>), counted only
/// after the MAC verified, so a stranger cannot spend a node's budget;</item>
/// <item>registrations in progress at once (<see cref="RateLimitOptions.RegisterConcurrency"/>).</item>
/// </list>
/// Registrations and admin calls per address use the ASP.NET Core rate-limiting middleware (see
/// <see cref="ServiceCollectionExtensions"/>). With <c>DGON_RATE_LIMITS=off</c> every limiter admits everything.
/// </summary>
public sealed class NodeRequestLimits : IDisposable
{
    private readonly PartitionedRateLimiter<string> _authFailures;
    private readonly PartitionedRateLimiter<string> _nodeRequests;
    private readonly ConcurrencyLimiter? _registrations;
    private readonly TimeSpan _failureRetryAfter;

    /// <summary>Creates the limiters.</summary>
    public NodeRequestLimits(DgonApiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var limits = options.Trust.RateLimits;
        _authFailures = Partitioned(limits.Enabled, limits.AuthFailures);
        _nodeRequests = Partitioned(limits.Enabled, limits.NodeRequests);
        _registrations = limits.Enabled
            ? new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = limits.RegisterConcurrency, QueueLimit = limits.RegisterConcurrency * 8, QueueProcessingOrder = QueueProcessingOrder.OldestFirst })
            : null;
        _failureRetryAfter = PeriodOf(limits.AuthFailures);
    }

    /// <summary>A token bucket's replenishment period for one token (the honest Retry-After of an empty bucket).</summary>
    public static TimeSpan PeriodOf(TokenBucket bucket)
    {
        ArgumentNullException.ThrowIfNull(bucket);
        return TimeSpan.FromMinutes(1) / bucket.PerMinute;
    }

    /// <summary>The options of a token bucket limiter for <paramref name="bucket"/>, replenished every second (or slower when the rate is under one a second).</summary>
    public static TokenBucketRateLimiterOptions BucketOptions(TokenBucket bucket)
    {
        ArgumentNullException.ThrowIfNull(bucket);
        var period = PeriodOf(bucket);
        var perPeriod = 1;
        if (period < TimeSpan.FromSeconds(1))
        {
            perPeriod = (int)Math.Round(TimeSpan.FromSeconds(1) / period);
            period = TimeSpan.FromSeconds(1);
        }

        return new TokenBucketRateLimiterOptions
        {
            TokenLimit = bucket.Burst,
            TokensPerPeriod = perPeriod,
            ReplenishmentPeriod = period,
            QueueLimit = 0,
            AutoReplenishment = true,
        };
    }

    /// <summary>The address requests are limited by: the client's (after trusted forwarded headers), else "unknown".</summary>
    public static string ClientAddress(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Connection.RemoteIpAddress is { } ip ? (ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip).ToString() : "unknown";
    }

    /// <summary>Whether the address has spent its failed-authentication budget; then <paramref name="retryAfter"/> says how long to wait.</summary>
    public bool IsBlocked(string address, out TimeSpan retryAfter)
    {
        retryAfter = _failureRetryAfter;
        return _authFailures.GetStatistics(address) is { CurrentAvailablePermits: <= 0 };
    }

    /// <summary>Counts one failed authentication of <paramref name="address"/>.</summary>
    public void RecordFailure(string address)
    {
        using var lease = _authFailures.AttemptAcquire(address);
    }

    /// <summary>Takes a permit for an authenticated request of <paramref name="nodeId"/>.</summary>
    /// <returns>Null when admitted, else how long to wait.</returns>
    public TimeSpan? TryNodeRequest(string nodeId)
    {
        using var lease = _nodeRequests.AttemptAcquire(nodeId);
        return lease.IsAcquired ? null : lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
    }

    /// <summary>Waits for a registration slot (bounded queue).</summary>
    /// <returns>A lease to dispose when the registration is done, or null when the queue is full too.</returns>
    public async ValueTask<IDisposable?> RegistrationSlotAsync(CancellationToken cancellationToken)
    {
        if (_registrations is null)
        {
            return NoLease.Instance;
        }

        var lease = await _registrations.AcquireAsync(1, cancellationToken);
        if (lease.IsAcquired)
        {
            return lease;
        }

        lease.Dispose();
        return null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _authFailures.Dispose();
        _nodeRequests.Dispose();
        _registrations?.Dispose();
    }

    private static PartitionedRateLimiter<string> Partitioned(bool enabled, TokenBucket bucket) =>
        PartitionedRateLimiter.Create<string, string>(key => enabled
            ? RateLimitPartition.GetTokenBucketLimiter(key, _ => BucketOptions(bucket))
            : RateLimitPartition.GetNoLimiter(key));

    private sealed class NoLease : IDisposable
    {
        public static readonly NoLease Instance = new();

        public void Dispose()
        {
        }
    }
}
