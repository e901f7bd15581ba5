using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Dgon.Domain.Auth;

/// <summary>
/// Node request authentication of seed 000 ("HMAC Verification Rules"): the node sends
/// <c>X-Node-Id</c>, <c>X-Node-Ts</c> (unix seconds) and <c>X-Node-Auth</c> =
/// lowercase hex HMAC-SHA256 keyed with the UTF-8 bytes of its node token over <c>body bytes ‖ ts</c>.
/// </summary>
public static class NodeAuth
{
    /// <summary>Header carrying the node id.</summary>
    public const string NodeIdHeader = "X-Node-Id";

    /// <summary>Header carrying the signing time, decimal unix seconds.</summary>
    public const string TimestampHeader = "X-Node-Ts";

    /// <summary>Header carrying the hex HMAC-SHA256 signature.</summary>
    public const string SignatureHeader = "X-Node-Auth";

    /// <summary>Seed 000: the server accepts <c>|now − ts| ≤ 120 s</c>.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromSeconds(120);

    /// <summary>Length of a node token in bytes before hex encoding: 32 (256 bits, as the seed's <c>token_hex(32)</c>).</summary>
    public const int TokenBytes = 32;

    /// <summary>Creates a fresh node token: 32 random bytes from the OS CSPRNG, as 64 lowercase hex characters.</summary>
    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(TokenBytes));

    /// <summary>
    /// Computes the signature of a request: lowercase hex HMAC-SHA256(key = UTF-8(token), message = body ‖ ASCII(timestamp)).
    /// </summary>
    /// <param name="token">The node token as issued by register (the hex string itself is the key material, as in the seed agent).</param>
    /// <param name="body">The raw request body bytes, exactly as sent.</param>
    /// <param name="timestamp">The <c>X-Node-Ts</c> header value, exactly as sent.</param>
    /// <returns>64 lowercase hex characters.</returns>
    public static string Sign(string token, ReadOnlySpan<byte> body, string timestamp)
    {
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(timestamp);
        return Convert.ToHexStringLower(ComputeMac(token, body, timestamp));
    }

    /// <summary>The three signing headers for a body signed now (what an agent sends).</summary>
    /// <returns>(name, value) pairs for <c>X-Node-Id</c>, <c>X-Node-Ts</c>, <c>X-Node-Auth</c>.</returns>
    public static IReadOnlyList<KeyValuePair<string, string>> SignHeaders(string nodeId, string token, ReadOnlySpan<byte> body, DateTimeOffset now)
    {
        var ts = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return
        [
            new(NodeIdHeader, nodeId),
            new(TimestampHeader, ts),
            new(SignatureHeader, Sign(token, body, ts)),
        ];
    }

    /// <summary>
    /// Checks the headers' presence and the timestamp's form and freshness, before any secret lookup.
    /// </summary>
    /// <param name="nodeId">X-Node-Id value or null.</param>
    /// <param name="timestamp">X-Node-Ts value or null.</param>
    /// <param name="signature">X-Node-Auth value or null.</param>
    /// <param name="now">The server's current time.</param>
    /// <returns><see cref="NodeAuthResult.Ok"/> or the first failure found.</returns>
    public static NodeAuthResult CheckHeaders(string? nodeId, string? timestamp, string? signature, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(nodeId) || string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(signature))
        {
            return NodeAuthResult.MissingHeaders;
        }

        if (timestamp.Length > 19
            || !long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return NodeAuthResult.InvalidTimestamp;
        }

        var skew = Math.Abs(now.ToUnixTimeSeconds() - seconds);
        return skew > (long)MaxClockSkew.TotalSeconds ? NodeAuthResult.StaleTimestamp : NodeAuthResult.Ok;
    }

    /// <summary>
    /// Verifies a signature in constant time (<see cref="CryptographicOperations.FixedTimeEquals"/>).
    /// Hex case is ignored; a signature that is not 64 hex characters fails.
    /// </summary>
    /// <returns><see cref="NodeAuthResult.Ok"/> or <see cref="NodeAuthResult.BadSignature"/>.</returns>
    public static NodeAuthResult VerifySignature(string token, ReadOnlySpan<byte> body, string timestamp, string signature)
    {
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(signature);
        Span<byte> presented = stackalloc byte[HMACSHA256.HashSizeInBytes];
        if (signature.Length != presented.Length * 2
            || Convert.FromHexString(signature, presented, out _, out var written) != System.Buffers.OperationStatus.Done
            || written != presented.Length)
        {
            return NodeAuthResult.BadSignature;
        }

        var expected = ComputeMac(token, body, timestamp);
        return CryptographicOperations.FixedTimeEquals(expected, presented) ? NodeAuthResult.Ok : NodeAuthResult.BadSignature;
    }

    private static byte[] ComputeMac(string token, ReadOnlySpan<byte> body, string timestamp)
    {
        var key = Encoding.UTF8.GetBytes(token);
        var tsBytes = Encoding.ASCII.GetBytes(timestamp);
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(body);
        hmac.AppendData(tsBytes);
        return hmac.GetHashAndReset();
    }
}

/// <summary>Outcome of node request authentication. Every value other than <see cref="Ok"/> maps to HTTP 401 (seed 000).</summary>
public enum NodeAuthResult
{
    /// <summary>Authenticated.</summary>
    Ok,

    /// <summary>X-Node-Id, X-Node-Ts or X-Node-Auth absent or empty.</summary>
    MissingHeaders,

    /// <summary>X-Node-Ts is not a decimal integer of unix seconds.</summary>
    InvalidTimestamp,

    /// <summary>|now − ts| &gt; 120 s.</summary>
    StaleTimestamp,

    /// <summary>No secret is registered for X-Node-Id.</summary>
    UnknownNode,

    /// <summary>The HMAC does not match.</summary>
    BadSignature,
}
