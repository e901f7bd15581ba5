using System.Globalization;
using System.Net;
using Dgon.Domain.Nodes;
using Dgon.Domain.Validation;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent;

/// <summary>A secret setting (the join token): <see cref="ToString"/> never shows it, so neither does the options record's.</summary>
/// <param name="Value">The secret text.</param>
public sealed record SecretText(string Value)
{
    /// <summary>Always <c>[redacted]</c>.</summary>
    public override string ToString() => "[redacted]";
}

/// <summary>
/// The agent's resolved configuration. Each value comes from its command-line flag, else its environment
/// variable, else its default (flags win). Seed 000 names DGON_API, NODE_ID and REGION; the rest are the issue's.
/// </summary>
public sealed record AgentOptions
{
    /// <summary>Default API base URL (seed 000: backend on port 8001).</summary>
    public const string DefaultApi = "http://127.0.0.1:8001";

    /// <summary>Default Ollama base URL (seed 000: <c>http://127.0.0.1:11434</c>).</summary>
    public const string DefaultOllamaUrl = "http://127.0.0.1:11434";

    /// <summary>Default region.</summary>
    public const string DefaultRegion = "local";

    /// <summary>Default heartbeat interval in seconds (seed 000: every 10 s).</summary>
    public const double DefaultIntervalSeconds = 10;

    /// <summary>Smallest accepted heartbeat interval in seconds.</summary>
    public const double MinIntervalSeconds = 0.1;

    /// <summary>Largest accepted heartbeat interval in seconds.</summary>
    public const double MaxIntervalSeconds = 3600;

    /// <summary>Default <see cref="TokenMaxAge"/>: 86,400 s (24 h).</summary>
    public const long DefaultTokenMaxAgeSeconds = 86_400;

    /// <summary>Largest <see cref="TokenMaxAge"/>: 31,536,000 s (365 days).</summary>
    public const long MaxTokenMaxAgeSeconds = 31_536_000;

    /// <summary>
    /// API base URL (absolute http/https); requests go to <c>{Api}/v1/…</c>. Plain http is accepted only to a loopback
    /// host (<see cref="IsLoopback"/>) unless <see cref="InsecureHttp"/>.
    /// </summary>
    public required Uri Api { get; init; }

    /// <summary>Node id: a lowercase RFC 1123 label of 1–63 characters (checked with <see cref="ContractValidator.IsValidNodeId"/>).</summary>
    public required string NodeId { get; init; }

    /// <summary>Region sent at registration; validated by the API, not here (a bad one makes register answer 422).</summary>
    public required string Region { get; init; }

    /// <summary>Runtime the node serves with (seed 000: ollama|vllm|tensorrtllm|tgi).</summary>
    public required NodeRuntime Runtime { get; init; }

    /// <summary>Ollama base URL; readiness is <c>GET {OllamaUrl}/api/tags</c>.</summary>
    public required Uri OllamaUrl { get; init; }

    /// <summary>Heartbeat period, measured from tick start; between 0.1 s and 3600 s.</summary>
    public required TimeSpan Interval { get; init; }

    /// <summary>Directory holding the token files (created with mode 0700).</summary>
    public required string ConfigDir { get; init; }

    /// <summary>Whether to post one sample receipt after the first heartbeat answered <c>active</c>.</summary>
    public bool SampleReceipt { get; init; }

    /// <summary>Optional network hint sent at registration (ASN_HINT), e.g. <c>residential</c>.</summary>
    public string? AsnHint { get; init; }

    /// <summary>Optional payout wallet address sent at registration (WALLET_ADDRESS).</summary>
    public string? WalletAddress { get; init; }

    /// <summary>Optional green-energy declaration sent at registration (GREEN_ENERGY); null leaves it out.</summary>
    public bool? GreenEnergy { get; init; }

    /// <summary>
    /// Join token (DGON_JOIN_TOKEN, <c>--join-token</c>; issue 9), <c>&lt;id&gt;.&lt;secret&gt;</c>: sent as
    /// <c>Authorization: Bearer</c> when the node enrolls (no stored token and no key the API knows), and again only
    /// after the API answered that it no longer knows the node's key. Never logged. Null when not configured.
    /// </summary>
    public SecretText? JoinToken { get; init; }

    /// <summary>
    /// Age after which the agent rotates its node token (DGON_TOKEN_MAX_AGE, <c>--token-max-age</c>, whole seconds;
    /// default 24 h; <see cref="TimeSpan.Zero"/> disables rotation). Counted from the token's issue time in the token file.
    /// </summary>
    public TimeSpan TokenMaxAge { get; init; } = TimeSpan.FromSeconds(DefaultTokenMaxAgeSeconds);

    /// <summary>Whether plain <c>http://</c> to a non-loopback API host is allowed (DGON_INSECURE_HTTP, <c>--insecure-http</c>); default false.</summary>
    public bool InsecureHttp { get; init; }

    /// <summary>
    /// Dispatched tasks the node runs at once (DGON_MAX_PARALLEL, <c>--max-parallel</c>; default 1, from 1 to
    /// <see cref="MaxMaxParallel"/>; issue 13): the manifest's <c>max_parallel</c> and the executor's limit.
    /// </summary>
    public int MaxParallel { get; init; } = 1;

    /// <summary>Largest accepted <see cref="MaxParallel"/>: 256.</summary>
    public const int MaxMaxParallel = 256;

    /// <summary>Whether the coordinator link runs (issue 13); false with <c>--no-link</c> or DGON_LINK=off. Default true.</summary>
    public bool Link { get; init; } = true;

    /// <summary>Minimum log level (LOG_LEVEL); default Information.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>
    /// Derives a node id from a host name: the first DNS label, lowercased; every character outside
    /// <c>[a-z0-9-]</c> becomes '-', runs of '-' collapse, leading and trailing '-' are dropped, and the result is cut
    /// to 63 characters (RFC 1123 label, the rule of <see cref="ContractValidator.IsValidNodeId"/>).
    /// </summary>
    /// <param name="hostName">The machine's host name, e.g. <c>Johns-MacBook-Pro.local</c>.</param>
    /// <returns>The label, e.g. <c>johns-macbook-pro</c>; empty when nothing usable remains.</returns>
    public static string NodeIdFromHostName(string? hostName)
    {
        if (string.IsNullOrWhiteSpace(hostName))
        {
            return string.Empty;
        }

        var trimmed = hostName.Trim();
        var firstLabel = trimmed.Split('.', 2)[0];
        var id = Sanitise(firstLabel);
        return id.Length > 0 ? id : Sanitise(trimmed);
    }

    /// <summary>
    /// Whether <paramref name="uri"/> names this machine: the host <c>localhost</c>, an IPv4 address in 127.0.0.0/8,
    /// <c>::1</c>, or an IPv4-mapped IPv6 address in 127.0.0.0/8. Other names are not resolved (a DNS answer could change).
    /// </summary>
    public static bool IsLoopback(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var host = uri.IdnHost;
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (!IPAddress.TryParse(host.Trim('[', ']'), out var address))
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return address.Equals(IPAddress.IPv6Loopback)
            || (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && address.GetAddressBytes()[0] == 127);
    }

    /// <summary>Parses a boolean environment value: true/false, 1/0, yes/no, on/off (case-insensitive).</summary>
    /// <returns>The value, or null when <paramref name="text"/> is none of these.</returns>
    public static bool? ParseBool(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "true" or "1" or "yes" or "on" => true,
        "false" or "0" or "no" or "off" => false,
        _ => null,
    };

    /// <summary>Parses a decimal number of seconds with '.' as the separator, e.g. <c>0.5</c>.</summary>
    /// <returns>The value, or null when it is not a finite number.</returns>
    public static double? ParseSeconds(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : null;

    private static string Sanitise(string text)
    {
        var chars = new System.Text.StringBuilder(text.Length);
        foreach (var c in text.ToLowerInvariant())
        {
            var ok = c is >= 'a' and <= 'z' or >= '0' and <= '9';
            if (ok)
            {
                chars.Append(c);
            }
            else if (chars.Length > 0 && chars[^1] != '-')
            {
                chars.Append('-');
            }
        }

        var id = chars.ToString().Trim('-');
        if (id.Length > ContractValidator.MaxNodeIdLength)
        {
            id = id[..ContractValidator.MaxNodeIdLength].TrimEnd('-');
        }

        return id;
    }
}
