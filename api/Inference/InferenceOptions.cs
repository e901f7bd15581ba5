using System.Globalization;
using Dgon.Api.Configuration;
using Dgon.Persistence;

namespace Dgon.Api.Inference;

/// <summary>
/// Settings of the inference gateway and the coordinator link (issue 13), read from configuration (environment):
/// <list type="bullet">
/// <item><c>DGON_GATEWAY_TIMEOUT_SECONDS</c> (default 120, 1–3600): how long one chat completion may take end to end;
/// past it the node gets <c>cancel</c> and the client a 504 (or an error chunk once streaming).</item>
/// <item><c>DGON_GATEWAY_KEY_CONCURRENCY</c> (default 16, 1–10000): chat completions one credential may have in flight
/// on this replica; one more → 429.</item>
/// <item><c>DGON_GATEWAY_QUEUE_SECONDS</c> (default 2, 0–30): how long a request waits for a free slot when every
/// node serving its model is busy, before 429 with <c>Retry-After: 1</c>.</item>
/// <item><c>DGON_REPLICA_URL</c>: the base URL other replicas reach this one at (default: the first URL Kestrel
/// listens on, a wildcard host replaced by the machine's host name).</item>
/// <item><c>DGON_REPLICA_SECRET</c>: the shared secret of replica-to-replica forwarding (header
/// <see cref="ReplicaAuthHeader"/>). When unset, the admin token (<c>DGON_ADMIN_TOKEN</c>) is the shared secret; when
/// that is unset too (a generated admin token), this replica neither forwards nor accepts forwarded requests.</item>
/// </list>
/// </summary>
public sealed record InferenceOptions
{
    /// <summary>Header carrying the replica-to-replica secret on a forwarded request.</summary>
    public const string ReplicaAuthHeader = "X-DGON-Replica-Auth";

    /// <summary>Header naming, on a forwarded request, the API key id the entry replica authenticated (empty when none).</summary>
    public const string ForwardedKeyHeader = "X-DGON-Api-Key-Id";

    /// <summary>Optional request header: the region the client prefers (a routing tie-breaker).</summary>
    public const string RegionHeader = "X-DGON-Region";

    /// <summary>Largest chat-completions request body, bytes (1 MiB; the node endpoints keep 64 KiB).</summary>
    public const long MaxRequestBodyBytes = 1024 * 1024;

    /// <summary>Largest frame a node may send on its link, bytes (1 MiB; larger → close 1009).</summary>
    public const int MaxFrameBytes = 1024 * 1024;

    /// <summary>WebSocket keep-alive (ping) interval of the link, both ends (issue 13: 15 s).</summary>
    public static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);

    /// <summary>How long the API waits for the <c>hello</c> after accepting a link.</summary>
    public static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);

    /// <summary>End-to-end deadline of one chat completion.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Concurrent chat completions per credential on this replica.</summary>
    public int KeyConcurrency { get; init; } = 16;

    /// <summary>Bounded wait for a free slot before 429.</summary>
    public TimeSpan QueueWait { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// <c>DGON_GATEWAY_KEY_TOKENS_PER_MINUTE</c>: tokens (input + output) per minute per credential and replica
    /// (<see cref="KeyTokenBudget"/>); default 200,000; 0 turns the limit off.
    /// </summary>
    public int KeyTokensPerMinute { get; init; } = 200_000;

    /// <summary>Configured base URL of this replica, or null to use the first listening URL.</summary>
    public Uri? ReplicaUrl { get; init; }

    /// <summary>The replica-to-replica secret (<c>DGON_REPLICA_SECRET</c>, else <c>DGON_ADMIN_TOKEN</c>), or null: no forwarding.</summary>
    public string? ReplicaSecret { get; init; }

    /// <summary>Reads the settings.</summary>
    /// <exception cref="InvalidOperationException">A setting is out of range or malformed.</exception>
    public static InferenceOptions FromConfiguration(IConfiguration configuration, NodeTrustOptions trust)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(trust);
        Uri? url = null;
        if (Settings.Optional(configuration["DGON_REPLICA_URL"]) is { } text)
        {
            url = Uri.TryCreate(text, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https"
                ? parsed
                : throw new InvalidOperationException($"DGON_REPLICA_URL must be an absolute http(s) URL; got '{text}'");
        }

        return new InferenceOptions
        {
            Timeout = TimeSpan.FromSeconds(Integer(configuration, "DGON_GATEWAY_TIMEOUT_SECONDS", 120, 1, 3600)),
            KeyConcurrency = Integer(configuration, "DGON_GATEWAY_KEY_CONCURRENCY", 16, 1, 10_000),
            QueueWait = TimeSpan.FromSeconds(Integer(configuration, "DGON_GATEWAY_QUEUE_SECONDS", 2, 0, 30)),
            KeyTokensPerMinute = Integer(configuration, "DGON_GATEWAY_KEY_TOKENS_PER_MINUTE", 200_000, 0, 100_000_000),
            ReplicaUrl = url,
            ReplicaSecret = Settings.Optional(configuration["DGON_REPLICA_SECRET"]) ?? trust.AdminToken,
        };
    }

    private static int Integer(IConfiguration configuration, string name, int defaultValue, int min, int max)
    {
        var text = Settings.Optional(configuration[name]);
        if (text is null)
        {
            return defaultValue;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new InvalidOperationException($"{name} must be an integer from {min} to {max}; got '{text}'");
    }
}
