using System.Globalization;
using NSec.Cryptography;

namespace Dgon.Domain.Auth;

/// <summary>
/// Proof of possession of a node's Ed25519 key (issue 9, after Kubernetes TLS bootstrapping: a short-lived join
/// token first, then a per-node credential). The agent generates the key pair on first run (RFC 8032 Ed25519 through
/// libsodium, NSec) and sends the public key at registration; the server stores only the public key.
/// Re-registering an existing node, rotating its token or changing its wallet needs a request signed with the key:
/// headers <c>X-Node-Id</c>, <c>X-Node-Ts</c> (unix seconds, ±120 s and later than the node's last accepted signed
/// request) and <c>X-Node-Proof: ed25519=&lt;base64 signature&gt;</c> over
/// <see cref="NodeAuth.CanonicalMessage"/> with the label <c>dgon-node-proof-v1</c>.
/// </summary>
public static class NodeKeyProof
{
    /// <summary>Header carrying the Ed25519 signature.</summary>
    public const string ProofHeader = "X-Node-Proof";

    /// <summary>Prefix of a public key on the wire: <c>ed25519:</c> + base64 of the 32-byte raw key.</summary>
    public const string PublicKeyPrefix = "ed25519:";

    /// <summary>Prefix of an <c>X-Node-Proof</c> value: <c>ed25519=</c> + base64 of the 64-byte signature.</summary>
    public const string SignaturePrefix = "ed25519=";

    private const string Label = "dgon-node-proof-v1";
    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;

    /// <summary>Creates a new key pair whose private key can be exported (to the agent's 0600 key file).</summary>
    public static Key NewKey() => Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    /// <summary>Exports the private key as RFC 8410 PKCS#8 PEM-less raw bytes (NSec <see cref="KeyBlobFormat.RawPrivateKey"/>, 32 bytes).</summary>
    public static byte[] ExportPrivateKey(Key key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.Export(KeyBlobFormat.RawPrivateKey);
    }

    /// <summary>Imports a private key exported by <see cref="ExportPrivateKey"/>.</summary>
    /// <exception cref="FormatException">Not a 32-byte Ed25519 private key.</exception>
    public static Key ImportPrivateKey(ReadOnlySpan<byte> raw)
    {
        if (!Key.TryImport(Algorithm, raw, KeyBlobFormat.RawPrivateKey, out var key, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }) || key is null)
        {
            throw new FormatException("not a 32-byte Ed25519 private key");
        }

        return key;
    }

    /// <summary>The public key in wire form: <c>ed25519:</c> + base64 (44 characters).</summary>
    public static string PublicKeyText(Key key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return PublicKeyPrefix + Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
    }

    /// <summary>Whether <paramref name="text"/> is a public key in wire form (<c>ed25519:</c> + base64 of 32 bytes).</summary>
    public static bool IsValidPublicKey(string? text) => TryParsePublicKey(text, out _);

    /// <summary>The proof header value of a request: <c>ed25519=</c> + base64 signature over the canonical message.</summary>
    public static string Sign(Key key, string method, string path, string nodeId, ReadOnlySpan<byte> body, string timestamp)
    {
        ArgumentNullException.ThrowIfNull(key);
        var signature = Algorithm.Sign(key, NodeAuth.CanonicalMessage(Label, timestamp, method, path, nodeId, body));
        return SignaturePrefix + Convert.ToBase64String(signature);
    }

    /// <summary>The four headers of a key-signed request at <paramref name="unixSeconds"/>.</summary>
    /// <returns>(name, value) pairs for <c>X-Node-Id</c>, <c>X-Node-Ts</c> and <c>X-Node-Proof</c>.</returns>
    public static IReadOnlyList<KeyValuePair<string, string>> SignHeaders(Key key, string nodeId, string method, string path, ReadOnlySpan<byte> body, long unixSeconds)
    {
        var ts = unixSeconds.ToString(CultureInfo.InvariantCulture);
        return
        [
            new(NodeAuth.NodeIdHeader, nodeId),
            new(NodeAuth.TimestampHeader, ts),
            new(ProofHeader, Sign(key, method, path, nodeId, body, ts)),
        ];
    }

    /// <summary>
    /// Verifies a proof against the stored public key. False for a malformed key or proof, or a wrong signature;
    /// never throws for attacker-controlled input. Freshness and replay are the caller's (see <see cref="NodeAuth.CheckHeaders"/>).
    /// </summary>
    public static bool Verify(string publicKeyText, string proof, string method, string path, string nodeId, ReadOnlySpan<byte> body, string timestamp)
    {
        if (!TryParsePublicKey(publicKeyText, out var publicKey) || proof is null || !proof.StartsWith(SignaturePrefix, StringComparison.Ordinal))
        {
            return false;
        }

        Span<byte> signature = stackalloc byte[Algorithm.SignatureSize];
        if (!Convert.TryFromBase64String(proof[SignaturePrefix.Length..], signature, out var written) || written != signature.Length)
        {
            return false;
        }

        byte[] message;
        try
        {
            message = NodeAuth.CanonicalMessage(Label, timestamp, method, path, nodeId, body);
        }
        catch (ArgumentException)
        {
            return false;
        }

        return Algorithm.Verify(publicKey!, message, signature);
    }

    /// <summary>
    /// Parses a public key in wire form (<c>ed25519:</c> + base64 of 32 bytes); false for anything else. Shared by the
    /// key proofs here and the receipt and manifest signatures (<c>Dgon.Domain.Receipts</c>).
    /// </summary>
    public static bool TryParsePublicKey(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PublicKey? key)
    {
        key = null;
        if (text is null || text.Length != PublicKeyPrefix.Length + 44 || !text.StartsWith(PublicKeyPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        Span<byte> raw = stackalloc byte[32];
        return Convert.TryFromBase64String(text[PublicKeyPrefix.Length..], raw, out var written) && written == 32
            && PublicKey.TryImport(Algorithm, raw, KeyBlobFormat.RawPublicKey, out key);
    }
}
