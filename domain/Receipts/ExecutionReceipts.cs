using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NSec.Cryptography;

namespace Dgon.Domain.Receipts;

/// <summary>Outcome of <see cref="ExecutionReceipts.Verify"/>.</summary>
/// <param name="Valid">Whether the signature verifies under the key.</param>
/// <param name="Reason">Why not (null when valid): <c>malformed_receipt</c>, <c>no_signature</c>, <c>malformed_signature</c>, <c>bad_key</c>, <c>bad_signature</c>.</param>
public sealed record ReceiptVerification(bool Valid, string? Reason)
{
    /// <summary>A valid signature.</summary>
    public static ReceiptVerification Ok { get; } = new(true, null);
}

/// <summary>
/// Proof of execution and signed receipts (issue 13; seed 002 §2.3.6–2.3.7, seed 000's receipt shape).
/// <list type="bullet">
/// <item>Proof: <c>sha256:</c> + hex SHA-256 over the UTF-8 bytes of <c>task_id ‖ result ‖ node_id</c> (seed 002 §2.3.6),
/// where result is the completion's text as the node returned it.</item>
/// <item>Prompt hash: <c>sha256:</c> + hex SHA-256 of the RFC 8785 form of the request's <c>messages</c> array (seed 000
/// names <c>blake3:</c>; SHA-256 is what both ends have without another dependency).</item>
/// <item>Signature: <c>ed25519:</c> + base64 of an Ed25519 signature (RFC 8032, the node's enrolled key) over the RFC 8785
/// canonical JSON of the receipt's signed part: the members <c>id</c>, <c>node_id</c>, <c>region</c>, <c>model_id</c> and
/// <c>payload</c> with <c>payload.signature</c> removed. Members outside these (what the control plane adds: the API
/// key, times of storage, verification status) are not signed.</item>
/// </list>
/// </summary>
public static class ExecutionReceipts
{
    /// <summary>Prefix of a receipt signature.</summary>
    public const string SignaturePrefix = "ed25519:";

    /// <summary>The members of a receipt that the signature covers.</summary>
    public static IReadOnlyList<string> SignedMembers { get; } = ["id", "node_id", "region", "model_id", "payload"];

    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;

    /// <summary>Seed 002 §2.3.6: <c>sha256:</c> + lowercase hex of SHA-256(task_id ‖ result ‖ node_id), UTF-8.</summary>
    public static string Proof(string taskId, string result, string nodeId)
    {
        ArgumentNullException.ThrowIfNull(taskId);
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(nodeId);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(taskId + result + nodeId)));
    }

    /// <summary><c>sha256:</c> + hex SHA-256 of the canonical (RFC 8785) form of a chat request's <c>messages</c>.</summary>
    /// <exception cref="FormatException">The messages hold duplicate member names.</exception>
    public static string PromptHash(JsonElement messages) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(JsonCanonicalizer.Canonicalize(messages)));

    /// <summary>The bytes a receipt's signature covers (see the type's remarks).</summary>
    /// <exception cref="FormatException">Not an object with an object <c>payload</c>, or duplicate member names.</exception>
    public static byte[] SignedBytes(JsonElement receipt)
    {
        if (receipt.ValueKind != JsonValueKind.Object || !receipt.TryGetProperty("payload", out var payload) || payload.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("a receipt is an object with an object payload");
        }

        var signed = new JsonObject();
        foreach (var name in SignedMembers)
        {
            if (!receipt.TryGetProperty(name, out var member))
            {
                continue;
            }

            if (name == "payload")
            {
                var copy = new JsonObject();
                foreach (var p in member.EnumerateObject().Where(p => p.Name != "signature"))
                {
                    copy[p.Name] = JsonNode.Parse(p.Value.GetRawText());
                }

                signed[name] = copy;
            }
            else
            {
                signed[name] = JsonNode.Parse(member.GetRawText());
            }
        }

        using var document = JsonDocument.Parse(signed.ToJsonString());
        return JsonCanonicalizer.Canonicalize(document.RootElement);
    }

    /// <summary>Signs a receipt with the node key: the value for <c>payload.signature</c>.</summary>
    /// <exception cref="FormatException">As <see cref="SignedBytes"/>.</exception>
    public static string Sign(Key key, JsonElement receipt)
    {
        ArgumentNullException.ThrowIfNull(key);
        return SignaturePrefix + Convert.ToBase64String(Algorithm.Sign(key, SignedBytes(receipt)));
    }

    /// <summary>
    /// Verifies <c>payload.signature</c> of <paramref name="receipt"/> under <paramref name="publicKeyText"/>
    /// (<c>ed25519:</c> + base64 of 32 bytes). Never throws for attacker-controlled input.
    /// </summary>
    public static ReceiptVerification Verify(string? publicKeyText, JsonElement receipt)
    {
        byte[] signed;
        try
        {
            signed = SignedBytes(receipt);
        }
        catch (FormatException)
        {
            return new(false, "malformed_receipt");
        }

        if (!receipt.GetProperty("payload").TryGetProperty("signature", out var signatureElement) || signatureElement.ValueKind != JsonValueKind.String)
        {
            return new(false, "no_signature");
        }

        var text = signatureElement.GetString()!;
        var signature = new byte[Algorithm.SignatureSize];
        if (!text.StartsWith(SignaturePrefix, StringComparison.Ordinal)
            || !Convert.TryFromBase64String(text[SignaturePrefix.Length..], signature, out var written) || written != signature.Length)
        {
            return new(false, "malformed_signature");
        }

        if (!Auth.NodeKeyProof.TryParsePublicKey(publicKeyText, out var publicKey))
        {
            return new(false, "bad_key");
        }

        return Algorithm.Verify(publicKey, signed, signature) ? ReceiptVerification.Ok : new(false, "bad_signature");
    }
}
