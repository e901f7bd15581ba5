using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Dgon.Domain.Auth;

/// <summary>
/// Node request authentication. The node sends <c>X-Node-Id</c>, <c>X-Node-Ts</c> (unix seconds) and
/// <c>X-Node-Auth</c>, an HMAC-SHA256 keyed with the UTF-8 bytes of its node token, in one of two schemes:
/// <list type="bullet">
/// <item><b>v1</b> (seed 000, "HMAC Verification Rules"): <c>X-Node-Auth</c> = lowercase hex of the MAC over
/// <c>body bytes ‖ ts</c>. It binds neither the method nor the path, and body and timestamp run together; kept for
/// the seed's agents (<c>DGON_ACCEPT_V1_SIGNATURES</c>).</item>
/// <item><b>v2</b> (ours, after Stripe's webhook signatures and AWS SigV4's canonical request): <c>X-Node-Auth</c> =
/// <c>v2=</c> + lowercase hex of the MAC over <see cref="CanonicalMessage"/>: the scheme label, the timestamp first,
/// then method, path and node id, each ended by a line feed, then the raw body. No field before the body can hold a
/// line feed, so the split is unambiguous.</item>
/// </list>
/// </summary>
public static class NodeAuth
{
    /// <summary>Header carrying the node id.</summary>
    public const string NodeIdHeader = "X-Node-Id";

    /// <summary>Header carrying the signing time, decimal unix seconds.</summary>
    public const string TimestampHeader = "X-Node-Ts";

    /// <summary>Header carrying the hex HMAC-SHA256 signature.</summary>
    public const string SignatureHeader = "X-Node-Auth";

    /// <summary>Prefix of a v2 <c>X-Node-Auth</c> value.</summary>
    public const string V2Prefix = "v2=";

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
    /// The v2 signed message: <c>"{label}\n{ts}\n{METHOD}\n{path}\n{node_id}\n" ‖ body</c> (UTF-8 before the body).
    /// <paramref name="path"/> is the API path as routed (<c>/v1/…</c>, no query); <paramref name="method"/> is upper-cased.
    /// The same layout with another label is the message of <see cref="NodeKeyProof"/>, so a MAC can never pass as a
    /// key signature or the other way round.
    /// </summary>
    /// <exception cref="ArgumentException">A field before the body contains a line feed.</exception>
    public static byte[] CanonicalMessage(string label, string timestamp, string method, string path, string nodeId, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(label);
        ArgumentNullException.ThrowIfNull(timestamp);
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(nodeId);
        var head = string.Concat(label, "\n", timestamp, "\n", method.ToUpperInvariant(), "\n", path, "\n", nodeId, "\n");
        if (head.Count(c => c == '\n') != 5)
        {
            throw new ArgumentException("signed header fields must not contain line feeds");
        }

        var headBytes = Encoding.UTF8.GetBytes(head);
        var message = new byte[headBytes.Length + body.Length];
        headBytes.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(headBytes.Length));
        return message;
    }

    /// <summary>The v2 <c>X-Node-Auth</c> value: <c>v2=</c> + 64 lowercase hex characters.</summary>
    public static string SignV2(string token, string method, string path, string nodeId, ReadOnlySpan<byte> body, string timestamp)
    {
        ArgumentNullException.ThrowIfNull(token);
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), CanonicalMessage(V2Label, timestamp, method, path, nodeId, body));
        return V2Prefix + Convert.ToHexStringLower(mac);
    }

    /// <summary>The three signing headers of a v2-signed request (what our agent sends).</summary>
    /// <returns>(name, value) pairs for <c>X-Node-Id</c>, <c>X-Node-Ts</c>, <c>X-Node-Auth</c>.</returns>
    public static IReadOnlyList<KeyValuePair<string, string>> SignHeadersV2(string nodeId, string token, string method, string path, ReadOnlySpan<byte> body, long unixSeconds)
    {
        var ts = unixSeconds.ToString(CultureInfo.InvariantCulture);
        return
        [
            new(NodeIdHeader, nodeId),
            new(TimestampHeader, ts),
            new(SignatureHeader, SignV2(token, method, path, nodeId, body, ts)),
        ];
    }

    /// <summary>The scheme of an <c>X-Node-Auth</c> value: v2 when it starts with <c>v2=</c>, else v1.</summary>
    public static SignatureScheme SchemeOf(string signature) =>
        signature is not null && signature.StartsWith(V2Prefix, StringComparison.Ordinal) ? SignatureScheme.V2 : SignatureScheme.V1;

    /// <summary>
    /// Verifies a v1 or v2 signature (by <see cref="SchemeOf"/>) in constant time. Returns
    /// <see cref="NodeAuthResult.BadSignature"/> for a malformed value, a wrong MAC, or a v1 signature when
    /// <paramref name="acceptV1"/> is false.
    /// </summary>
    public static NodeAuthResult Verify(string token, string method, string path, string nodeId, ReadOnlySpan<byte> body, string timestamp, string signature, bool acceptV1)
    {
        ArgumentNullException.ThrowIfNull(signature);
        if (SchemeOf(signature) == SignatureScheme.V1)
        {
            return acceptV1 ? VerifySignature(token, body, timestamp, signature) : NodeAuthResult.BadSignature;
        }

        Span<byte> presented = stackalloc byte[HMACSHA256.HashSizeInBytes];
        var hex = signature.AsSpan(V2Prefix.Length);
        if (hex.Length != presented.Length * 2
            || Convert.FromHexString(hex, presented, out _, out var written) != System.Buffers.OperationStatus.Done
            || written != presented.Length)
        {
            return NodeAuthResult.BadSignature;
        }

        byte[] message;
        try
        {
            message = CanonicalMessage(V2Label, timestamp, method, path, nodeId, body);
        }
        catch (ArgumentException)
        {
            return NodeAuthResult.BadSignature;
        }

        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), message);
        return CryptographicOperations.FixedTimeEquals(expected, presented) ? NodeAuthResult.Ok : NodeAuthResult.BadSignature;
    }

    private const string V2Label = "dgon-hmac-v2";

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

    /// <summary>
    /// The MAC is valid but its timestamp is not later than the node's last accepted signed request: a replay
    /// (issue 9). Unlike the other failures this one needs the node's token, so it is evidence against the node.
    /// </summary>
    Replayed,

    /// <summary>The node exists but its stored secret cannot be decrypted (key ring lost the key): re-register with the node key.</summary>
    SecretUnreadable,
}

/// <summary>Signature scheme of <c>X-Node-Auth</c>.</summary>
public enum SignatureScheme
{
    /// <summary>Seed 000: hex HMAC over body ‖ ts.</summary>
    V1,

    /// <summary><c>v2=</c> hex HMAC over <see cref="NodeAuth.CanonicalMessage"/>.</summary>
    V2,
}
