using System.Globalization;
using Dgon.Domain.Nodes;

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

    /// <summary>AES-256 key for node secrets at rest, from <c>DGON_SECRET_KEY</c> (base64, 32 bytes).</summary>
    public required byte[] SecretKey { get; init; }

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

        var keyText = configuration["DGON_SECRET_KEY"];
        if (string.IsNullOrWhiteSpace(keyText))
        {
            throw new InvalidOperationException("DGON_SECRET_KEY is not set: give 32 random bytes in base64 (e.g. `openssl rand -base64 32`); it encrypts node secrets at rest");
        }

        byte[] key;
        try
        {
            key = Convert.FromBase64String(keyText.Trim());
        }
        catch (FormatException)
        {
            throw new InvalidOperationException("DGON_SECRET_KEY is not valid base64: give 32 random bytes in base64");
        }

        if (key.Length != 32)
        {
            throw new InvalidOperationException($"DGON_SECRET_KEY decodes to {key.Length} bytes; it must be 32 (AES-256)");
        }

        var graceText = configuration["DGON_HEARTBEAT_GRACE_SECONDS"];
        var grace = NodeLifecycleOptions.DefaultGracePeriod;
        if (!string.IsNullOrWhiteSpace(graceText))
        {
            if (!double.TryParse(graceText, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > 86_400)
            {
                throw new InvalidOperationException($"DGON_HEARTBEAT_GRACE_SECONDS must be a number of seconds in (0, 86400]; got '{graceText}'");
            }

            grace = TimeSpan.FromSeconds(seconds);
        }

        var origins = (configuration["CORS_ORIGIN"] ?? DefaultCorsOrigins)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        return new DgonApiOptions
        {
            ConnectionString = DatabaseUrl.ToConnectionString(databaseUrl),
            SecretKey = key,
            CorsOrigins = origins,
            Lifecycle = new NodeLifecycleOptions { GracePeriod = grace },
        };
    }
}
