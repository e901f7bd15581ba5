using System.Globalization;
using System.Net;
using Dgon.Persistence;

namespace Dgon.Api.Configuration;

/// <summary>Node trust settings (issue 9). Every default is the secure one; the open modes are for local development.</summary>
public sealed record NodeTrustOptions
{
    /// <summary>Default rotation overlap: the replaced token keeps verifying 60 s.</summary>
    public static readonly TimeSpan DefaultRotationOverlap = TimeSpan.FromSeconds(60);

    /// <summary>Default time after which a pending node that never sent a heartbeat is removed: 24 h.</summary>
    public static readonly TimeSpan DefaultPendingNodeTtl = TimeSpan.FromHours(24);

    /// <summary>
    /// <c>DGON_OPEN_REGISTRATION=true</c>: seed 000's v1 semantics (register without a join token, re-register without
    /// proof). Anyone who reaches the API can then take over any node. Default false.
    /// </summary>
    public bool OpenRegistration { get; init; }

    /// <summary><c>DGON_ACCEPT_V1_SIGNATURES</c> (default true): accept seed 000's v1 HMAC (body ‖ ts) besides v2.</summary>
    public bool AcceptV1Signatures { get; init; } = true;

    /// <summary><c>DGON_TOKEN_ROTATION_OVERLAP_SECONDS</c>: how long a rotated-out token still verifies.</summary>
    public TimeSpan RotationOverlap { get; init; } = DefaultRotationOverlap;

    /// <summary><c>DGON_PENDING_NODE_TTL_SECONDS</c>: pending nodes without any heartbeat are deleted after this.</summary>
    public TimeSpan PendingNodeTtl { get; init; } = DefaultPendingNodeTtl;

    /// <summary>Admin token from <c>DGON_ADMIN_TOKEN</c>, or null to use (or generate) the one in <see cref="DataDirectory"/>.</summary>
    public string? AdminToken { get; init; }

    /// <summary>
    /// <c>DGON_DATA_DIR</c>: where a generated admin token is kept (file <c>admin-token</c>, mode 0600). Default
    /// <c>$XDG_DATA_HOME/dgon</c>, else <c>~/.local/share/dgon</c>.
    /// </summary>
    public required string DataDirectory { get; init; }

    /// <summary><c>DGON_HSTS=true</c>: send <c>Strict-Transport-Security</c> on requests that arrived over HTTPS (behind TLS).</summary>
    public bool Hsts { get; init; }

    /// <summary>
    /// <c>DGON_TRUSTED_PROXIES</c>: comma-separated addresses and CIDR networks whose <c>X-Forwarded-For</c> and
    /// <c>X-Forwarded-Proto</c> are believed. Empty (default): the connection's own address is the client's.
    /// </summary>
    public IReadOnlyList<string> TrustedProxies { get; init; } = [];

    /// <summary>Rate limits.</summary>
    public RateLimitOptions RateLimits { get; init; } = new();

    /// <summary>Adds <see cref="TrustedProxies"/> to forwarded-header options.</summary>
    /// <exception cref="InvalidOperationException">An entry is neither an IP address nor a CIDR network.</exception>
    public void ApplyTo(ForwardedHeadersOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.KnownIPNetworks.Clear();
        options.KnownProxies.Clear();
        foreach (var entry in TrustedProxies)
        {
            if (entry.Contains('/', StringComparison.Ordinal) && System.Net.IPNetwork.TryParse(entry, out var network))
            {
                options.KnownIPNetworks.Add(network);
            }
            else if (IPAddress.TryParse(entry, out var address))
            {
                options.KnownProxies.Add(address);
            }
            else
            {
                throw new InvalidOperationException($"DGON_TRUSTED_PROXIES: '{entry}' is neither an IP address nor a CIDR network");
            }
        }
    }

    /// <summary>Reads the settings.</summary>
    /// <exception cref="InvalidOperationException">A value is malformed; the message names the variable.</exception>
    public static NodeTrustOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var xdg = Settings.Optional(configuration["XDG_DATA_HOME"]);
        var options = new NodeTrustOptions
        {
            OpenRegistration = Flag(configuration, "DGON_OPEN_REGISTRATION", false),
            AcceptV1Signatures = Flag(configuration, "DGON_ACCEPT_V1_SIGNATURES", true),
            RotationOverlap = Settings.Seconds("DGON_TOKEN_ROTATION_OVERLAP_SECONDS", configuration["DGON_TOKEN_ROTATION_OVERLAP_SECONDS"], DefaultRotationOverlap),
            PendingNodeTtl = Settings.Seconds("DGON_PENDING_NODE_TTL_SECONDS", configuration["DGON_PENDING_NODE_TTL_SECONDS"], DefaultPendingNodeTtl),
            AdminToken = Settings.Optional(configuration["DGON_ADMIN_TOKEN"]),
            DataDirectory = Settings.Optional(configuration["DGON_DATA_DIR"]) ?? Path.Combine(xdg ?? Path.Combine(home, ".local", "share"), "dgon"),
            Hsts = Flag(configuration, "DGON_HSTS", false),
            TrustedProxies = (configuration["DGON_TRUSTED_PROXIES"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            RateLimits = RateLimitOptions.FromConfiguration(configuration),
        };
        if (options.AdminToken is { Length: < 32 })
        {
            throw new InvalidOperationException("DGON_ADMIN_TOKEN must be at least 32 characters (e.g. `openssl rand -base64 32`)");
        }

        options.ApplyTo(new ForwardedHeadersOptions()); // validates the entries now, at start-up
        return options;
    }

    /// <summary>Parses a boolean variable: true/false, 1/0, yes/no, on/off (case-insensitive); unset gives the default.</summary>
    /// <exception cref="InvalidOperationException">Any other value.</exception>
    public static bool Flag(IConfiguration configuration, string name, bool defaultValue)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var text = Settings.Optional(configuration[name]);
        return text?.ToLowerInvariant() switch
        {
            null => defaultValue,
            "true" or "1" or "yes" or "on" => true,
            "false" or "0" or "no" or "off" => false,
            _ => throw new InvalidOperationException($"{name} must be true or false; got '{text}'"),
        };
    }
}

/// <summary>
/// Rate limits (issue 9), token buckets partitioned by client address or node id: <c>burst</c> requests at once,
/// refilled at <c>per_minute</c> per minute. <c>DGON_RATE_LIMITS=off</c> disables them all (benchmarks on loopback).
/// </summary>
public sealed record RateLimitOptions
{
    /// <summary>Whether limits apply (<c>DGON_RATE_LIMITS</c>, default on).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Registrations per client address: <c>DGON_RATE_LIMIT_REGISTER</c> = <c>burst/per_minute</c>, default 20 at once, 20 per minute.</summary>
    public TokenBucket Register { get; init; } = new(20, 20);

    /// <summary>Failed authentications per client address before its requests get 429: <c>DGON_RATE_LIMIT_AUTH_FAILURES</c>, default 30 at once, 30 per minute.</summary>
    public TokenBucket AuthFailures { get; init; } = new(30, 30);

    /// <summary>Authenticated heartbeats and receipts per node id: <c>DGON_RATE_LIMIT_NODE</c>, default 60 at once, 120 per minute.</summary>
    public TokenBucket NodeRequests { get; init; } = new(60, 120);

    /// <summary>Admin requests per client address: <c>DGON_RATE_LIMIT_ADMIN</c>, default 60 at once, 120 per minute.</summary>
    public TokenBucket Admin { get; init; } = new(60, 120);

    /// <summary>Logins per client address (issue 12, seed 004's login rate limiting): <c>DGON_RATE_LIMIT_LOGIN</c>, default 10 at once, 10 per minute.</summary>
    public TokenBucket Login { get; init; } = new(10, 10);

    /// <summary>Self sign-ups per client address (when enabled): <c>DGON_RATE_LIMIT_SIGNUP</c>, default 3 at once, 3 per minute.</summary>
    public TokenBucket Signup { get; init; } = new(3, 3);

    /// <summary>Registrations in progress at once, across all addresses (<c>DGON_REGISTER_CONCURRENCY</c>, default 8), so a pile-up of registrations cannot take every database connection.</summary>
    public int RegisterConcurrency { get; init; } = 8;

    /// <summary>Reads the settings.</summary>
    /// <exception cref="InvalidOperationException">A value is malformed.</exception>
    public static RateLimitOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var defaults = new RateLimitOptions();
        var concurrencyText = Settings.Optional(configuration["DGON_REGISTER_CONCURRENCY"]);
        var concurrency = defaults.RegisterConcurrency;
        if (concurrencyText is not null
            && !(int.TryParse(concurrencyText, NumberStyles.None, CultureInfo.InvariantCulture, out concurrency) && concurrency is >= 1 and <= 1000))
        {
            throw new InvalidOperationException($"DGON_REGISTER_CONCURRENCY must be an integer from 1 to 1000; got '{concurrencyText}'");
        }

        return new RateLimitOptions
        {
            Enabled = NodeTrustOptions.Flag(configuration, "DGON_RATE_LIMITS", true),
            Register = TokenBucket.Parse("DGON_RATE_LIMIT_REGISTER", configuration["DGON_RATE_LIMIT_REGISTER"], defaults.Register),
            AuthFailures = TokenBucket.Parse("DGON_RATE_LIMIT_AUTH_FAILURES", configuration["DGON_RATE_LIMIT_AUTH_FAILURES"], defaults.AuthFailures),
            NodeRequests = TokenBucket.Parse("DGON_RATE_LIMIT_NODE", configuration["DGON_RATE_LIMIT_NODE"], defaults.NodeRequests),
            Admin = TokenBucket.Parse("DGON_RATE_LIMIT_ADMIN", configuration["DGON_RATE_LIMIT_ADMIN"], defaults.Admin),
            Login = TokenBucket.Parse("DGON_RATE_LIMIT_LOGIN", configuration["DGON_RATE_LIMIT_LOGIN"], defaults.Login),
            Signup = TokenBucket.Parse("DGON_RATE_LIMIT_SIGNUP", configuration["DGON_RATE_LIMIT_SIGNUP"], defaults.Signup),
            RegisterConcurrency = concurrency,
        };
    }
}

/// <summary>A token bucket: <paramref name="Burst"/> permits at once, refilled at <paramref name="PerMinute"/> per minute.</summary>
/// <param name="Burst">Bucket size, ≥ 1.</param>
/// <param name="PerMinute">Refill rate per minute, ≥ 1.</param>
public sealed record TokenBucket(int Burst, int PerMinute)
{
    /// <summary>Parses <c>burst/per_minute</c> (e.g. <c>20/20</c>).</summary>
    /// <exception cref="InvalidOperationException">Not two integers from 1 to 1,000,000 separated by '/'.</exception>
    public static TokenBucket Parse(string name, string? text, TokenBucket defaultValue)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }

        var parts = text.Split('/', 2, StringSplitOptions.TrimEntries);
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var burst) && burst is >= 1 and <= 1_000_000
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var perMinute) && perMinute is >= 1 and <= 1_000_000)
        {
            return new TokenBucket(burst, perMinute);
        }

        throw new InvalidOperationException($"{name} must be 'burst/per_minute', two integers from 1 to 1000000 (e.g. 20/20); got '{text}'");
    }
}
