using System.Text.Json;
using Dgon.Domain.Contracts;
using NSec.Cryptography;

namespace Dgon.Domain.Receipts;

/// <summary>
/// Signatures of capability manifests (seed 002 §2.3.2, "signed by node.key"): <c>ed25519:</c> + base64 of an Ed25519
/// signature over the RFC 8785 form of the manifest's JSON (<see cref="LinkJsonContext"/>, snake_case).
/// </summary>
public static class ManifestSignatures
{
    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;

    /// <summary>The canonical bytes a manifest signature covers.</summary>
    public static byte[] SignedBytes(CapabilityManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        using var document = JsonDocument.Parse(JsonSerializer.Serialize(manifest, LinkJsonContext.Default.CapabilityManifest));
        return JsonCanonicalizer.Canonicalize(document.RootElement);
    }

    /// <summary>Signs a manifest with the node key.</summary>
    public static string Sign(Key key, CapabilityManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(key);
        return ExecutionReceipts.SignaturePrefix + Convert.ToBase64String(Algorithm.Sign(key, SignedBytes(manifest)));
    }

    /// <summary>Whether <paramref name="signature"/> is the node key's signature of <paramref name="manifest"/>; never throws for bad input.</summary>
    public static bool Verify(string? publicKeyText, CapabilityManifest manifest, string? signature)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var sig = new byte[Algorithm.SignatureSize];
        return signature is not null && signature.StartsWith(ExecutionReceipts.SignaturePrefix, StringComparison.Ordinal)
            && Auth.NodeKeyProof.TryParsePublicKey(publicKeyText, out var key)
            && Convert.TryFromBase64String(signature[ExecutionReceipts.SignaturePrefix.Length..], sig, out var m) && m == sig.Length
            && Algorithm.Verify(key, SignedBytes(manifest), sig);
    }
}
