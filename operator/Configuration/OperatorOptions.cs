using System.Globalization;
using Dgon.Domain.Nodes;
using Dgon.Persistence;

namespace Dgon.Operator.Configuration;

/// <summary>
/// Operator settings, read from environment variables by <see cref="FromConfiguration"/>. The README's Kubernetes-mode
/// section lists the same names and defaults.
/// </summary>
public sealed record OperatorOptions
{
    /// <summary>Default listen address for <c>/healthz</c> and <c>/readyz</c> when <c>ASPNETCORE_URLS</c> is not set.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8002";

    /// <summary>Default name of the leader-election Lease.</summary>
    public const string DefaultLeaseName = "dgon-operator";

    /// <summary>Npgsql connection string derived from <c>DATABASE_URL</c> (the mirror's database; the API's).</summary>
    public required string ConnectionString { get; init; }

    /// <summary>Kubeconfig file (<c>KUBECONFIG</c>), or null for in-cluster / <c>~/.kube/config</c>.</summary>
    public string? Kubeconfig { get; init; }

    /// <summary>Namespace of the DgonNodes (<c>DGON_NAMESPACE</c>); null = the kubeconfig context's or the pod's.</summary>
    public string? Namespace { get; init; }

    /// <summary>
    /// Lifecycle: <c>DGON_HEARTBEAT_GRACE_SECONDS</c> (default 30), measured on the recorded
    /// <c>status.lastHeartbeatTime</c>, which the API keeps within its status refresh interval of the real last
    /// heartbeat (the API checks its refresh interval is at most half this grace period).
    /// </summary>
    public required NodeLifecycleOptions Lifecycle { get; init; }

    /// <summary>Lease name (<c>DGON_LEASE_NAME</c>, default <c>dgon-operator</c>).</summary>
    public string LeaseName { get; init; } = DefaultLeaseName;

    /// <summary>This replica's identity in the Lease (<c>POD_NAME</c>, else host name and process id).</summary>
    public required string Identity { get; init; }

    /// <summary>Lease duration (<c>DGON_LEADER_LEASE_SECONDS</c>, default 10; a standby takes over within about this plus the retry period).</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Renew deadline (<c>DGON_LEADER_RENEW_SECONDS</c>, default 7; must be below the lease duration).</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(7);

    /// <summary>Retry period (<c>DGON_LEADER_RETRY_SECONDS</c>, default 2; must be below the renew deadline).</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the mirror is checked for rows whose DgonNode is gone (besides at each leadership start).</summary>
    public TimeSpan MirrorResyncPeriod { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Default of <see cref="PendingNodeTtl"/>: 24 hours.</summary>
    public static readonly TimeSpan DefaultPendingNodeTtl = TimeSpan.FromHours(24);

    /// <summary>Longest <see cref="PendingNodeTtl"/>: 365 days.</summary>
    public static readonly TimeSpan MaxPendingNodeTtl = TimeSpan.FromDays(365);

    /// <summary>
    /// Issue 9, abandoned enrollments: a DgonNode that never recorded a heartbeat (no <c>status.lastHeartbeatTime</c>)
    /// and is not quarantined is deleted, with its Secret, this long after its creation
    /// (<c>DGON_PENDING_NODE_TTL_SECONDS</c>, default 86400, at most 365 days). Each node is requeued at its own
    /// deadline.
    /// </summary>
    public TimeSpan PendingNodeTtl { get; init; } = DefaultPendingNodeTtl;

    /// <summary>Default of <see cref="JoinTokenCleanupPeriod"/>: 60 seconds.</summary>
    public static readonly TimeSpan DefaultJoinTokenCleanupPeriod = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How often the leader deletes expired join-token Secrets and those revoked more than an hour ago, besides at
    /// each leadership start (<c>DGON_JOIN_TOKEN_CLEANUP_SECONDS</c>, default 60, at most 86400).
    /// </summary>
    public TimeSpan JoinTokenCleanupPeriod { get; init; } = DefaultJoinTokenCleanupPeriod;

    /// <summary>Reads and validates the settings.</summary>
    /// <exception cref="InvalidOperationException">A setting is missing or malformed; the message names it.</exception>
    public static OperatorOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var databaseUrl = configuration["DATABASE_URL"];
        if (string.IsNullOrWhiteSpace(databaseUrl))
        {
            throw new InvalidOperationException("DATABASE_URL is not set: give postgres://user:password@host:port/database (the API's database)");
        }

        var grace = Settings.Seconds("DGON_HEARTBEAT_GRACE_SECONDS", configuration["DGON_HEARTBEAT_GRACE_SECONDS"], NodeLifecycleOptions.DefaultGracePeriod);
        var lease = Settings.Seconds("DGON_LEADER_LEASE_SECONDS", configuration["DGON_LEADER_LEASE_SECONDS"], TimeSpan.FromSeconds(10));
        var renew = Settings.Seconds("DGON_LEADER_RENEW_SECONDS", configuration["DGON_LEADER_RENEW_SECONDS"], TimeSpan.FromSeconds(7));
        var retry = Settings.Seconds("DGON_LEADER_RETRY_SECONDS", configuration["DGON_LEADER_RETRY_SECONDS"], TimeSpan.FromSeconds(2));
        if (!(retry < renew && renew < lease))
        {
            throw new InvalidOperationException($"leader election needs DGON_LEADER_RETRY_SECONDS < DGON_LEADER_RENEW_SECONDS < DGON_LEADER_LEASE_SECONDS; got {retry.TotalSeconds} / {renew.TotalSeconds} / {lease.TotalSeconds}");
        }

        var pendingTtl = LongSeconds("DGON_PENDING_NODE_TTL_SECONDS", configuration["DGON_PENDING_NODE_TTL_SECONDS"], DefaultPendingNodeTtl, MaxPendingNodeTtl);
        var cleanup = Settings.Seconds("DGON_JOIN_TOKEN_CLEANUP_SECONDS", configuration["DGON_JOIN_TOKEN_CLEANUP_SECONDS"], DefaultJoinTokenCleanupPeriod);

        var identity = configuration["POD_NAME"] is { Length: > 0 } pod
            ? pod
            : $"{Environment.MachineName.ToLowerInvariant()}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}";

        return new OperatorOptions
        {
            ConnectionString = DatabaseUrl.ToConnectionString(databaseUrl),
            Kubeconfig = Settings.Optional(configuration["KUBECONFIG"]),
            Namespace = Settings.Optional(configuration["DGON_NAMESPACE"]),
            Lifecycle = new NodeLifecycleOptions { GracePeriod = grace },
            LeaseName = Settings.Optional(configuration["DGON_LEASE_NAME"]) ?? DefaultLeaseName,
            Identity = identity,
            LeaseDuration = lease,
            RenewDeadline = renew,
            RetryPeriod = retry,
            PendingNodeTtl = pendingTtl,
            JoinTokenCleanupPeriod = cleanup,
        };
    }

    /// <summary>A positive number of seconds up to <paramref name="max"/>, or the default when unset.</summary>
    /// <exception cref="InvalidOperationException">Not a number in (0, max].</exception>
    private static TimeSpan LongSeconds(string name, string? text, TimeSpan defaultValue, TimeSpan max)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > max.TotalSeconds)
        {
            throw new InvalidOperationException($"{name} must be a number of seconds in (0, {max.TotalSeconds.ToString(CultureInfo.InvariantCulture)}]; got '{text}'");
        }

        return TimeSpan.FromSeconds(seconds);
    }
}
