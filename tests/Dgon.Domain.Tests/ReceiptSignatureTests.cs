using System.Text;
using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Receipts;

namespace Dgon.Domain.Tests;

/// <summary>RFC 8785 canonical JSON, seed 002's proof of execution, and Ed25519 receipt and manifest signatures.</summary>
public sealed class ReceiptSignatureTests
{
    [Theory]
    // RFC 8785 §3.2.3's sorting and escaping, and §3.2.2.3's numbers (ECMAScript form).
    [InlineData("{\"b\":2,\"a\":1,\"c\":{\"z\":true,\"y\":null}}", "{\"a\":1,\"b\":2,\"c\":{\"y\":null,\"z\":true}}")]
    [InlineData("[56, {\"d\":true,\"10\":null,\"1\":[]}]", "[56,{\"1\":[],\"10\":null,\"d\":true}]")]
    [InlineData("{\"€\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"😀\":\"Smiley\",\"ö\":\"Latin Small Letter O With Diaeresis\"}",
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Smiley\"}")]
    [InlineData("[1E30, 4.50, 2e-3, 0.000001, 1e-7, 100, -0, 333333333.33333329, 1E21, 1e20]", "[1e+30,4.5,0.002,0.000001,1e-7,100,0,333333333.3333333,1e+21,100000000000000000000]")]
    [InlineData("\"\\u0007tab\\there \\\"quoted\\\" \\u2028\"", "\"\\u0007tab\\there \\\"quoted\\\" \u2028\"")]
    public void Canonical_form_follows_rfc_8785(string json, string canonical)
    {
        using var document = JsonDocument.Parse(json);
        Assert.Equal(canonical, JsonCanonicalizer.CanonicalString(document.RootElement));
    }

    [Fact]
    public void Duplicate_member_names_are_refused()
    {
        using var document = JsonDocument.Parse("{\"a\":1,\"a\":2}");
        Assert.Throws<FormatException>(() => JsonCanonicalizer.Canonicalize(document.RootElement));
    }

    [Fact]
    public void The_proof_is_sha256_of_task_result_and_node()
    {
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("t-1" + "hello world" + "node-a")));
        Assert.Equal("sha256:" + expected, ExecutionReceipts.Proof("t-1", "hello world", "node-a"));
        Assert.NotEqual(ExecutionReceipts.Proof("t-1", "hello world", "node-a"), ExecutionReceipts.Proof("t-1", "hello world!", "node-a"));
    }

    [Fact]
    public void A_signed_receipt_verifies_and_any_change_to_the_signed_part_breaks_it()
    {
        using var key = NodeKeyProof.NewKey();
        var receipt = Receipt(key, out var publicKey);
        Assert.True(ExecutionReceipts.Verify(publicKey, receipt).Valid);

        // Members outside the signed part (what the control plane adds) and key order do not matter.
        var extra = Mutate(receipt, o => { o["api_key_id"] = "0123456789ab"; o["signature_status"] = "valid"; });
        Assert.True(ExecutionReceipts.Verify(publicKey, extra).Valid);

        Assert.Equal("bad_signature", ExecutionReceipts.Verify(publicKey, Mutate(receipt, o => o["payload"]!["tokens_output"] = 93)).Reason);
        Assert.Equal("bad_signature", ExecutionReceipts.Verify(publicKey, Mutate(receipt, o => o["node_id"] = "other-node")).Reason);
        Assert.Equal("no_signature", ExecutionReceipts.Verify(publicKey, Mutate(receipt, o => o["payload"]!.AsObject().Remove("signature"))).Reason);
        Assert.Equal("malformed_signature", ExecutionReceipts.Verify(publicKey, Mutate(receipt, o => o["payload"]!["signature"] = "ed25519:base64...")).Reason);
        using var other = NodeKeyProof.NewKey();
        Assert.Equal("bad_signature", ExecutionReceipts.Verify(NodeKeyProof.PublicKeyText(other), receipt).Reason);
        Assert.Equal("bad_key", ExecutionReceipts.Verify("ed25519:short", receipt).Reason);
        using var notAnObject = JsonDocument.Parse("[1]");
        Assert.Equal("malformed_receipt", ExecutionReceipts.Verify(publicKey, notAnObject.RootElement).Reason);
    }

    [Fact]
    public void A_signed_manifest_verifies_and_a_changed_one_does_not()
    {
        using var key = NodeKeyProof.NewKey();
        var manifest = new CapabilityManifest
        {
            NodeId = "mac-1",
            ClientVersion = "1.0.0",
            IssuedAt = 1_765_000_000,
            MaxParallel = 2,
            Hardware = new HardwareManifest { Os = "macos", Arch = "arm64", AppleChip = "Apple M3 Max", MemoryGb = 64, Gpus = [new GpuManifest("apple", "Apple M3 Max", null)] },
            Runtime = new RuntimeManifest { Kind = "ollama", Models = [new ModelManifest("llama3.1:8b", 4_920_753_328, "Q4_K_M")] },
        };
        var signature = ManifestSignatures.Sign(key, manifest);
        Assert.True(ManifestSignatures.Verify(NodeKeyProof.PublicKeyText(key), manifest, signature));
        Assert.False(ManifestSignatures.Verify(NodeKeyProof.PublicKeyText(key), manifest with { MaxParallel = 64 }, signature));
        Assert.False(ManifestSignatures.Verify(NodeKeyProof.PublicKeyText(key), manifest, "ed25519:AAAA"));
        Assert.False(ManifestSignatures.Verify(null, manifest, signature));
    }

    private static JsonElement Receipt(NSec.Cryptography.Key key, out string publicKey)
    {
        publicKey = NodeKeyProof.PublicKeyText(key);
        using var unsigned = JsonDocument.Parse("""
            {"id":"t-1","node_id":"mac-1","region":"eu-west","model_id":"llama3.1:8b",
             "payload":{"version":"1.0","ts_start":1765000000,"ts_end":1765000002,"tokens_input":12,"tokens_output":92,"p95_ms":31.5,
                        "prompt_hash":"sha256:00","proof":"sha256:11"}}
            """);
        var signature = ExecutionReceipts.Sign(key, unsigned.RootElement);
        return Mutate(unsigned.RootElement, o => o["payload"]!["signature"] = signature);
    }

    private static JsonElement Mutate(JsonElement receipt, Action<System.Text.Json.Nodes.JsonObject> change)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(receipt.GetRawText())!.AsObject();
        change(node);
        using var document = JsonDocument.Parse(node.ToJsonString());
        return document.RootElement.Clone();
    }
}
