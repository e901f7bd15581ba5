using System.Globalization;
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
    /// AES-256 key for node secrets at rest, from <c>DGON_SECRET_KEY</c> (base64, 32 bytes). Required in standalone
    /// mode; null in Kubernetes mode, where node secrets are Kubernetes Secrets.
    /// </summary>
    public required byte[]? SecretKey { get; init; }

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
        byte[]? key = null;
        if (registry == RegistryMode.Standalone && string.IsNullOrWhiteSpace(keyText))
        {
            throw new InvalidOperationException("DGON_SECRET_KEY is not set: give 32 random bytes in base64 (e.g. `openssl rand -base64 32`); it encrypts node secrets at rest");
        }

        if (registry == RegistryMode.Standalone)
        {
            try
            {
                key = Convert.FromBase64String(keyText!.Trim());
            }
            catch (FormatException)
            {
                throw new InvalidOperationException("DGON_SECRET_KEY is not valid base64: give 32 random bytes in base64");
            }

            if (key.Length != 32)
            {
                throw new InvalidOperationException($"DGON_SECRET_KEY decodes to {key.Length} bytes; it must be 32 (AES-256)");
            }
        }

        var grace = Settings.Seconds("DGON_HEARTBEAT_GRACE_SECONDS", configuration["DGON_HEARTBEAT_GRACE_SECONDS"], NodeLifecycleOptions.DefaultGracePeriod);
        var refresh = Settings.Seconds("DGON_STATUS_REFRESH_SECONDS", configuration["DGON_STATUS_REFRESH_SECONDS"], StatusWriteCoalescing.DefaultRefreshInterval);
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
            ConnectionString = DatabaseUrl.ToConnectionString(databaseUrl),
            SecretKey = key,
            CorsOrigins = origins,
            Registry = registry,
            // Kubernetes mode records heartbeats at most once per refresh interval (issue 3), hence the record lag.
            Lifecycle = new NodeLifecycleOptions { GracePeriod = grace, RecordLag = registry == RegistryMode.Kubernetes ? refresh : TimeSpan.Zero },
            Kubernetes = new KubernetesRegistryOptions
            {
                Kubeconfig = Settings.Optional(configuration["KUBECONFIG"]),
                Namespace = Settings.Optional(configuration["DGON_NAMESPACE"]),
                StatusRefreshInterval = refresh,
            },
            AuthFailures = new AuthFailureWindowOptions { Threshold = threshold, Window = failureWindow },
        };
    }

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
    /// Issue 3: with steady heartbeats the status is rewritten only when the recorded lastHeartbeatTime is older than
    /// this (<c>DGON_STATUS_REFRESH_SECONDS</c>, default 30).
    /// </summary>
    public TimeSpan StatusRefreshInterval { get; init; } = StatusWriteCoalescing.DefaultRefreshInterval;
}
