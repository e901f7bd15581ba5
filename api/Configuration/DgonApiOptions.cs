using System.Globalization;
using Dgon.Api.Accounts;
using Dgon.Domain.Auth;
using Dgon.Domain.Nodes;
using Dgon.Persistence;

namespace Dgon.Api.Configuration;

/// <summary>
/// API settings, read from environment variables (or any configuration source) by <see cref="FromConfiguration"/>.
/// The README's configuration reference lists the same names and defaults.
/// </summary>
public sealed record DgonApiOptions
{
    /// <summary>Default listen address when neither <c>ASPNETCORE_URLS</c> nor <c>--urls</c> is given (seed 000: backend on :8001).</summary>
    public const string DefaultUrls = "http://127.0.0.1:8001";

    /// <summary>Default <c>CORS_ORIGIN</c>: the local dashboard under both loopback names.</summary>
    public const string DefaultCorsOrigins = "http://localhost:3000,http://127.0.0.1:3000";

    /// <summary>Largest accepted request body: 64 KiB (issue 2); larger → 413.</summary>
    public const long MaxRequestBodyBytes = 64 * 1024;

    /// <summary>Npgsql connection string derived from <c>DATABASE_URL</c>.</summary>
    public required string ConnectionString { get; init; }

    /// <summary>
    /// AES-256 key ring for node secrets at rest, from <c>DGON_SECRET_KEY</c>: comma-separated base64 keys of 32
    /// bytes, the first one current (new secrets), the others still decrypting (issue 9). Required in standalone
    /// mode; empty in Kubernetes mode, where node secrets are Kubernetes Secrets.
    /// </summary>
    public required IReadOnlyList<byte[]> SecretKeys { get; init; }

    /// <summary>Node trust: join tokens, admin token, open modes, rate limits, proxies (issue 9).</summary>
    public required NodeTrustOptions Trust { get; init; }

    /// <summary>Accounts and access: open reads, sign-up, sessions, automatic bans, the management port (issue 12).</summary>
    public AccountOptions Accounts { get; init; } = new();

    /// <summary>Where nodes are written: <c>DGON_REGISTRY</c> = <c>standalone</c> (default) or <c>kubernetes</c>.</summary>
    public RegistryMode Registry { get; init; } = RegistryMode.Standalone;

    /// <summary>Kubernetes mode: settings of the DgonNode registry.</summary>
    public KubernetesRegistryOptions Kubernetes { get; init; } = new();

    /// <summary>Repeated-HMAC-failure counting (<c>DGON_AUTH_FAILURE_THRESHOLD</c>, <c>DGON_AUTH_FAILURE_WINDOW_SECONDS</c>).</summary>
    public AuthFailureWindowOptions AuthFailures { get; init; } = new();

    /// <summary>Origins allowed by CORS (<c>CORS_ORIGIN</c>, comma-separated; <c>*</c> = any).</summary>
    public required IReadOnlyList<string> CorsOrigins { get; init; }

    /// <summary>Lifecycle settings (<c>DGON_HEARTBEAT_GRACE_SECONDS</c>, default 30).</summary>
    public required NodeLifecycleOptions Lifecycle { get; init; }

    /// <summary>Fleet-scale settings: write-behind and the heartbeat interval told to nodes (issue 11).</summary>
    public FleetOptions Fleet { get; init; } = new();

    /// <summary>
    /// Reads and validates the settings.
    /// </summary>
    /// <exception cref="InvalidOperationException">A setting is missing or malformed; the message names the variable and the expected form.</exception>
    public static DgonApiOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var databaseUrl = configuration["DATABASE_URL"];
        if (string.IsNullOrWhiteSpace(databaseUrl))
        {
            throw new InvalidOperationException("DATABASE_URL is not set: give postgres://user:password@host:port/database (or an Npgsql connection string)");
        }

        var registryText = configuration["DGON_REGISTRY"] ?? "standalone";
        var registry = registryText.Trim().ToLowerInvariant() switch
        {
            "standalone" => RegistryMode.Standalone,
            "kubernetes" => RegistryMode.Kubernetes,
            _ => throw new InvalidOperationException($"DGON_REGISTRY must be 'standalone' (PostgreSQL) or 'kubernetes' (DgonNode resources); got '{registryText}'"),
        };

        var keyText = configuration["DGON_SECRET_KEY"];
        var keys = new List<byte[]>();
        if (registry == RegistryMode.Standalone && string.IsNullOrWhiteSpace(keyText))
        {
            throw new InvalidOperationException("DGON_SECRET_KEY is not set: give 32 random bytes in base64 (e.g. `openssl rand -base64 32`); it encrypts node secrets at rest");
        }

        if (registry == RegistryMode.Standalone)
        {
            foreach (var (part, index) in keyText!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select((p, i) => (p, i + 1)))
            {
                byte[] key;
                try
                {
                    key = Convert.FromBase64String(part);
                }
                catch (FormatException)
                {
                    throw new InvalidOperationException($"DGON_SECRET_KEY key {index} is not valid base64: give 32 random bytes in base64 (comma-separated, the current key first)");
                }

                if (key.Length != 32)
                {
                    throw new InvalidOperationException($"DGON_SECRET_KEY key {index} decodes to {key.Length} bytes; it must be 32 (AES-256)");
                }

                keys.Add(key);
            }
        }

        var grace = Settings.Seconds("DGON_HEARTBEAT_GRACE_SECONDS", configuration["DGON_HEARTBEAT_GRACE_SECONDS"], NodeLifecycleOptions.DefaultGracePeriod);
        var refresh = Settings.Seconds("DGON_STATUS_REFRESH_SECONDS", configuration["DGON_STATUS_REFRESH_SECONDS"], StatusWriteCoalescing.DefaultRefreshInterval);
        if (registry == RegistryMode.Kubernetes)
        {
            try
            {
                // The recorded lastHeartbeatTime lags by at most the refresh interval; it must stay well inside the grace period.
                StatusWriteCoalescing.Validate(refresh, grace);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new InvalidOperationException(e.Message, e);
            }
        }

        var statusWrites = StatusWritesPerSecond(configuration);
        var maxHeartbeats = PositiveNumber(configuration, "DGON_MAX_HEARTBEATS_PER_SECOND", HeartbeatIntervalPolicy.DefaultMaxHeartbeatsPerSecond);
        if (registry == RegistryMode.Kubernetes)
        {
            // Issue 11: a steady node costs N / max(interval, refresh) status writes a second, so the interval told to
            // nodes must stretch to keep the fleet within the status-write budget (or the smaller heartbeat budget).
            maxHeartbeats = Math.Min(maxHeartbeats, statusWrites);
        }

        var failureWindow = Settings.Seconds("DGON_AUTH_FAILURE_WINDOW_SECONDS", configuration["DGON_AUTH_FAILURE_WINDOW_SECONDS"], AuthFailureWindowOptions.DefaultWindow);
        var thresholdText = configuration["DGON_AUTH_FAILURE_THRESHOLD"];
        var threshold = AuthFailureWindowOptions.DefaultThreshold;
        if (!string.IsNullOrWhiteSpace(thresholdText)
            && !(int.TryParse(thresholdText, NumberStyles.None, CultureInfo.InvariantCulture, out threshold) && threshold is >= 1 and <= 1000))
        {
            throw new InvalidOperationException($"DGON_AUTH_FAILURE_THRESHOLD must be an integer from 1 to 1000; got '{thresholdText}'");
        }

        var origins = (configuration["CORS_ORIGIN"] ?? DefaultCorsOrigins)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        return new DgonApiOptions
        {
            ConnectionString = DatabaseConnection(configuration, DatabaseUrl.ToConnectionString(databaseUrl)),
            SecretKeys = keys,
            Trust = NodeTrustOptions.FromConfiguration(configuration),
            Accounts = AccountOptions.FromConfiguration(configuration),
            CorsOrigins = origins,
            Registry = registry,
            Lifecycle = new NodeLifecycleOptions { GracePeriod = grace },
            Kubernetes = new KubernetesRegistryOptions
            {
                Kubeconfig = Settings.Optional(configuration["KUBECONFIG"]),
                Namespace = Settings.Optional(configuration["DGON_NAMESPACE"]),
                StatusRefreshInterval = refresh,
                StatusWritesPerSecond = statusWrites,
            },
            AuthFailures = new AuthFailureWindowOptions { Threshold = threshold, Window = failureWindow },
            Fleet = new FleetOptions
            {
                FlushInterval = TimeSpan.FromMilliseconds(Milliseconds(configuration, "DGON_WRITE_BEHIND_MS", (int)FleetOptions.DefaultFlushInterval.TotalMilliseconds)),
                HeartbeatInterval = new HeartbeatIntervalPolicy(
                    Settings.Seconds("DGON_HEARTBEAT_INTERVAL_SECONDS", configuration["DGON_HEARTBEAT_INTERVAL_SECONDS"], HeartbeatIntervalPolicy.DefaultBaseInterval),
                    maxHeartbeats,
                    grace),
            },
        };
    }

    private static int StatusWritesPerSecond(IConfiguration configuration)
    {
        var text = Settings.Optional(configuration["DGON_STATUS_WRITES_PER_SECOND"]);
        if (text is null)
        {
            return KubernetesRegistryOptions.DefaultStatusWritesPerSecond;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value is >= 1 and <= 1_000_000
            ? value
            : throw new InvalidOperationException($"DGON_STATUS_WRITES_PER_SECOND must be an integer from 1 to 1000000 (DgonNode status writes a second per API replica); got '{text}'");
    }

    private static double PositiveNumber(IConfiguration configuration, string name, double defaultValue)
    {
        var text = Settings.Optional(configuration[name]);
        if (text is null)
        {
            return defaultValue;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && value <= 10_000_000
            ? value
            : throw new InvalidOperationException($"{name} must be a positive number up to 10000000; got '{text}'");
    }


    /// <summary>
    /// Adds the API's session limits to the connection string (issue 9): <c>lock_timeout</c> 2 s
    /// (<c>DGON_DB_LOCK_TIMEOUT_MS</c>) and <c>statement_timeout</c> 10 s (<c>DGON_DB_STATEMENT_TIMEOUT_MS</c>), so a pile-up
    /// on one row fails fast with 503 instead of holding connections; pool size <c>DGON_DB_POOL_SIZE</c> (default 30)
    /// unless the URL sets one. The pool must fit in the server's <c>max_connections</c> for all replicas together;
    /// the API warns at start-up when one replica's pool alone does not.
    /// </summary>
    private static string DatabaseConnection(IConfiguration configuration, string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var lockTimeout = Milliseconds(configuration, "DGON_DB_LOCK_TIMEOUT_MS", 2000);
        var statementTimeout = Milliseconds(configuration, "DGON_DB_STATEMENT_TIMEOUT_MS", 10000);
        var session = $"-c lock_timeout={lockTimeout} -c statement_timeout={statementTimeout}";
        builder.Options = string.IsNullOrEmpty(builder.Options) ? session : builder.Options + " " + session;
        if (Settings.Optional(configuration["DGON_DB_POOL_SIZE"]) is { } poolText)
        {
            builder.MaxPoolSize = int.TryParse(poolText, NumberStyles.None, CultureInfo.InvariantCulture, out var pool) && pool is >= 2 and <= 1000
                ? pool
                : throw new InvalidOperationException($"DGON_DB_POOL_SIZE must be an integer from 2 to 1000; got '{poolText}'");
        }
        else if (!connectionString.Contains("Maximum Pool Size", StringComparison.OrdinalIgnoreCase))
        {
            builder.MaxPoolSize = DefaultPoolSize;
        }

        return builder.ConnectionString;
    }

    /// <summary>Default PostgreSQL connection pool size per API replica.</summary>
    public const int DefaultPoolSize = 30;

    private static int Milliseconds(IConfiguration configuration, string name, int defaultValue)
    {
        var text = Settings.Optional(configuration[name]);
        if (text is null)
        {
            return defaultValue;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms is >= 1 and <= 600_000
            ? ms
            : throw new InvalidOperationException($"{name} must be milliseconds from 1 to 600000; got '{text}'");
    }
}

/// <summary>Fleet-scale settings of the API (issue 11).</summary>
public sealed record FleetOptions
{
    /// <summary>Default write-behind interval: 500 ms.</summary>
    public static readonly TimeSpan DefaultFlushInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How often heartbeats accepted from memory (and request-clock values) are written to PostgreSQL in one batch
    /// (<c>DGON_WRITE_BEHIND_MS</c>, default 500): the most a kill -9 of the API can lose, and what the standalone
    /// offline detection may lag behind the grace period.
    /// </summary>
    public TimeSpan FlushInterval { get; init; } = DefaultFlushInterval;

    /// <summary>
    /// The interval told to nodes in each heartbeat response (<c>DGON_HEARTBEAT_INTERVAL_SECONDS</c>, default 10;
    /// <c>DGON_MAX_HEARTBEATS_PER_SECOND</c>, default 10000, fleet-wide).
    /// </summary>
    public HeartbeatIntervalPolicy HeartbeatInterval { get; init; } = new(HeartbeatIntervalPolicy.DefaultBaseInterval, HeartbeatIntervalPolicy.DefaultMaxHeartbeatsPerSecond, NodeLifecycleOptions.DefaultGracePeriod);

    /// <summary>
    /// Longest silence after which a heartbeat may still be answered from memory: the grace period less three flush
    /// intervals and a second, so the write-behind lands well before the lifecycle sweep could find the node overdue.
    /// A node silent longer (or whose phase changes) is written through before its response.
    /// </summary>
    public TimeSpan FastPathWindow(TimeSpan gracePeriod) => gracePeriod - (3 * FlushInterval) - TimeSpan.FromSeconds(1);
}

/// <summary>Where the API writes nodes (<c>DGON_REGISTRY</c>).</summary>
public enum RegistryMode
{
    /// <summary>PostgreSQL rows (issue 2; the default).</summary>
    Standalone,

    /// <summary>DgonNode custom resources and owned Secrets (issue 3); the operator mirrors them into PostgreSQL.</summary>
    Kubernetes,
}

/// <summary>Kubernetes-mode settings of the API.</summary>
public sealed record KubernetesRegistryOptions
{
    /// <summary>
    /// Kubeconfig file (<c>KUBECONFIG</c>; the first existing file of a path list). Null: in-cluster config when
    /// <c>KUBERNETES_SERVICE_HOST</c> is set, else <c>~/.kube/config</c>.
    /// </summary>
    public string? Kubeconfig { get; init; }

    /// <summary>Namespace of the DgonNodes and Secrets (<c>DGON_NAMESPACE</c>); null = the kubeconfig context's or the pod's namespace.</summary>
    public string? Namespace { get; init; }

    /// <summary>
    /// Issue 10: heartbeat observations are written to the DgonNode status at most once per this interval per node,
    /// and the last held one always one interval after the previous write (<c>DGON_STATUS_REFRESH_SECONDS</c>,
    /// default 10, at most half the grace period; see <see cref="StatusWriteCoalescing"/>).
    /// </summary>
    public TimeSpan StatusRefreshInterval { get; init; } = StatusWriteCoalescing.DefaultRefreshInterval;

    /// <summary>
    /// Default status-write budget: 500 writes/s per API replica, what Kubernetes' own node heartbeats cost the API
    /// server at its largest supported cluster (5,000 nodes renewing a Lease every 10 s, KEP-589).
    /// </summary>
    public const int DefaultStatusWritesPerSecond = 500;

    /// <summary>
    /// Issue 11: heartbeat status writes a second this replica may make (<c>DGON_STATUS_WRITES_PER_SECOND</c>, default
    /// 500, 1 to 1,000,000), enforced by a token bucket (<c>StatusWriteBudget</c>); writes that change the operator's
    /// decision go first, refresh writes wait. In Kubernetes mode the heartbeat interval told to nodes is stretched to
    /// fleet / this budget (capped at a third of the grace period): 100,000 nodes at 500 writes/s need a 200 s interval
    /// and a grace period of at least 600 s; at the default grace of 30 s (interval cap 10 s) the budget holds up to
    /// 5,000 nodes.
    /// </summary>
    public int StatusWritesPerSecond { get; init; } = DefaultStatusWritesPerSecond;
}
