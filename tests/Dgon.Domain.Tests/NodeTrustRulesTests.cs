using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Validation;
using NSec.Cryptography;

namespace Dgon.Domain.Tests;

/// <summary>
/// Issue 9 node trust rules, table-driven: the v2 HMAC scheme, Ed25519 key proofs, join tokens and the validation
/// rules that guard them. Expected values are computed independently of the code under test where possible.
/// </summary>
public sealed partial class NodeTrustRulesTests
{
    // The v2 HMAC label and the key proof label; spelled out here so a silent change of either fails.
    private const string HmacLabel = "dgon-hmac-v2";
    private const string ProofLabel = "dgon-node-proof-v1";

    private const string Token = "3f1c0a7e9b2d4c6f8a1b3d5e7f9012345678abcdef0123456789abcdef012345";
    private const string Method = "POST";
    private const string Path = "/v1/nodes/heartbeat";
    private const string NodeId = "macbook-001";
    private const string Ts = "1763700000";
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("{\"ready\":true,\"note\":\"héllo\"}");

    private static byte[] Expected(string label, string ts, string method, string path, string nodeId, byte[] body) =>
        [.. Encoding.UTF8.GetBytes($"{label}\n{ts}\n{method}\n{path}\n{nodeId}\n"), .. body];

    // ---------------------------------------------------------------- v2 HMAC

    [Theory]
    [InlineData("dgon-hmac-v2", "1763700000", "POST", "/v1/nodes/heartbeat", "macbook-001", "{\"ready\":true}")]
    [InlineData("dgon-node-proof-v1", "0", "GET", "/v1/nodes/x", "a", "")]
    [InlineData("l", "", "", "", "", "")]
    [InlineData("label", "1", "PUT", "/v1/ünï", "n-1", "line1\nline2\n\n")]
    public void Canonical_message_is_label_ts_method_path_node_each_ended_by_lf_then_the_raw_body(
        string label, string ts, string method, string path, string nodeId, string body)
    {
        var bodyBytes = Encoding.UTF8.GetBytes(body);
        var message = NodeAuth.CanonicalMessage(label, ts, method, path, nodeId, bodyBytes);
        Assert.Equal(Expected(label, ts, method, path, nodeId, bodyBytes), message);
    }

    [Fact]
    public void Canonical_message_keeps_arbitrary_body_bytes_verbatim()
    {
        byte[] body = [0x00, 0xff, 0x0a, 0x0d, 0xc3, 0x28]; // NUL, invalid UTF-8, LF, CR
        var message = NodeAuth.CanonicalMessage("l", "1", "GET", "/p", "n", body);
        Assert.Equal([.. "l\n1\nGET\n/p\nn\n"u8, .. body], message);
    }

    [Theory]
    [InlineData("get", "GET")]
    [InlineData("Post", "POST")]
    [InlineData("PATCH", "PATCH")]
    public void Canonical_message_upper_cases_the_method(string method, string upper) =>
        Assert.Equal(Expected("l", "1", upper, "/p", "n", []), NodeAuth.CanonicalMessage("l", "1", method, "/p", "n", []));

    [Theory]
    [InlineData("label")]
    [InlineData("ts")]
    [InlineData("method")]
    [InlineData("path")]
    [InlineData("node")]
    public void Canonical_message_refuses_a_line_feed_in_any_field_before_the_body(string field)
    {
        string F(string name, string value) => name == field ? value[..1] + "\n" + value[1..] : value;
        Assert.Throws<ArgumentException>(() =>
            NodeAuth.CanonicalMessage(F("label", HmacLabel), F("ts", Ts), F("method", Method), F("path", Path), F("node", NodeId), Body));
    }

    [Theory]
    [InlineData("label")]
    [InlineData("ts")]
    [InlineData("method")]
    [InlineData("path")]
    [InlineData("node")]
    public void A_lone_trailing_line_feed_in_a_field_is_refused_too(string field)
    {
        // "a\n" in one field and "" in the next would otherwise make the same bytes as "a" then "\n…".
        string F(string name, string value) => name == field ? value + "\n" : value;
        Assert.Throws<ArgumentException>(() =>
            NodeAuth.CanonicalMessage(F("label", "l"), F("ts", "1"), F("method", "GET"), F("path", "/p"), F("node", "n"), []));
    }

    [Theory]
    [InlineData(Token, Method, Path, NodeId, "{\"ready\":true}", Ts)]
    [InlineData("secret", "GET", "/v1/nodes/a/status", "a", "", "0")]
    [InlineData("t", "PUT", "/v1/ünï", "node-9", "line1\nline2", "99999999999")]
    public void SignV2_is_v2_prefix_and_lowercase_hex_of_an_independently_computed_hmac(
        string token, string method, string path, string nodeId, string body, string ts)
    {
        var bodyBytes = Encoding.UTF8.GetBytes(body);
        var signature = NodeAuth.SignV2(token, method, path, nodeId, bodyBytes, ts);

        Assert.Matches("^v2=[0-9a-f]{64}$", signature);
        using var hmac = new HMACSHA256(Encoding.UTF8.GetBytes(token));
        var mac = hmac.ComputeHash(Expected(HmacLabel, ts, method.ToUpperInvariant(), path, nodeId, bodyBytes));
        Assert.Equal("v2=" + Convert.ToHexString(mac).ToLowerInvariant(), signature);
        Assert.Equal(SignatureScheme.V2, NodeAuth.SchemeOf(signature));
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.Verify(token, method, path, nodeId, bodyBytes, ts, signature, acceptV1: false));
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.Verify(token, method, path, nodeId, bodyBytes, ts, signature, acceptV1: true));
    }

    [Fact]
    public void SignV2_is_not_the_v1_mac()
    {
        var v2 = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts);
        var v1 = NodeAuth.Sign(Token, Body, Ts);
        Assert.NotEqual(v1, v2[NodeAuth.V2Prefix.Length..]);
    }

    [Fact]
    public void SignHeadersV2_sends_node_id_the_decimal_timestamp_and_a_signature_that_verifies()
    {
        var headers = NodeAuth.SignHeadersV2(NodeId, Token, Method, Path, Body, 1_763_700_000);
        Assert.Equal([NodeAuth.NodeIdHeader, NodeAuth.TimestampHeader, NodeAuth.SignatureHeader], headers.Select(h => h.Key));
        Assert.Equal(NodeId, headers[0].Value);
        Assert.Equal("1763700000", headers[1].Value);
        Assert.Equal(NodeAuth.SignV2(Token, Method, Path, NodeId, Body, "1763700000"), headers[2].Value);
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.Verify(Token, Method, Path, NodeId, Body, headers[1].Value, headers[2].Value, acceptV1: false));
    }

    [Theory]
    [InlineData("method", "PUT")]
    [InlineData("method", "GET")]
    [InlineData("path", "/v1/nodes/register")]
    [InlineData("path", "/v1/nodes/heartbeat/")]
    [InlineData("path", "/V1/nodes/heartbeat")]
    [InlineData("node", "macbook-002")]
    [InlineData("node", "macbook-0011")]
    [InlineData("ts", "1763700001")]
    [InlineData("ts", "01763700000")]
    [InlineData("body", "{\"ready\":false,\"note\":\"héllo\"}")]
    [InlineData("body", "{\"ready\":true,\"note\":\"héllo\"} ")]
    [InlineData("body", "")]
    [InlineData("token", "3f1c0a7e9b2d4c6f8a1b3d5e7f9012345678abcdef0123456789abcdef012346")]
    [InlineData("token", "3F1C0A7E9B2D4C6F8A1B3D5E7F9012345678ABCDEF0123456789ABCDEF012345")]
    public void Changing_any_one_signed_input_makes_a_v2_signature_bad(string field, string value)
    {
        var signature = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts);
        string F(string name, string original) => name == field ? value : original;
        var body = field == "body" ? Encoding.UTF8.GetBytes(value) : Body;

        var result = NodeAuth.Verify(F("token", Token), F("method", Method), F("path", Path), F("node", NodeId), body, F("ts", Ts), signature, acceptV1: true);
        Assert.Equal(NodeAuthResult.BadSignature, result);
    }

    [Theory]
    [InlineData("post")]
    [InlineData("Post")]
    public void The_method_is_compared_case_insensitively_because_it_is_upper_cased_before_signing(string method)
    {
        var signature = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts);
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.Verify(Token, method, Path, NodeId, Body, Ts, signature, acceptV1: false));
    }

    [Theory]
    [InlineData(true, NodeAuthResult.Ok)]
    [InlineData(false, NodeAuthResult.BadSignature)]
    public void A_v1_signature_verifies_only_while_v1_is_accepted(bool acceptV1, NodeAuthResult expected)
    {
        var v1 = NodeAuth.Sign(Token, Body, Ts);
        Assert.Equal(SignatureScheme.V1, NodeAuth.SchemeOf(v1));
        Assert.Equal(expected, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts, v1, acceptV1));
        // v1 binds neither method nor path nor node id: any of them verifies when v1 is accepted.
        Assert.Equal(expected, NodeAuth.Verify(Token, "DELETE", "/elsewhere", "other", Body, Ts, v1, acceptV1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_tampered_v1_signature_is_bad_either_way(bool acceptV1)
    {
        var v1 = NodeAuth.Sign(Token, Body, Ts);
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, NodeId, Body, "1763700001", v1, acceptV1));
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify("other", Method, Path, NodeId, Body, Ts, v1, acceptV1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_v1_mac_relabelled_as_v2_is_bad(bool acceptV1)
    {
        var relabelled = NodeAuth.V2Prefix + NodeAuth.Sign(Token, Body, Ts);
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts, relabelled, acceptV1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_v2_mac_without_its_prefix_is_bad(bool acceptV1)
    {
        var bare = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts)[NodeAuth.V2Prefix.Length..];
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts, bare, acceptV1));
    }

    [Fact]
    public void Upper_case_v2_hex_is_accepted()
    {
        // What the code does: the hex is parsed, not compared as text, so the case of the digits does not matter.
        var signature = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts);
        var upper = NodeAuth.V2Prefix + signature[NodeAuth.V2Prefix.Length..].ToUpperInvariant();
        Assert.NotEqual(signature, upper);
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts, upper, acceptV1: false));
    }

    [Theory]
    [InlineData("V2=")] // the prefix itself is case-sensitive: "V2=" is read as a (malformed) v1 value
    [InlineData("V2=", true)]
    [InlineData(" v2=")]
    [InlineData(" v2=", true)]
    public void The_v2_prefix_is_exact(string prefix, bool acceptV1 = false)
    {
        var hex = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts)[NodeAuth.V2Prefix.Length..];
        Assert.Equal(SignatureScheme.V1, NodeAuth.SchemeOf(prefix + hex));
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts, prefix + hex, acceptV1));
    }

    public static TheoryData<string, bool> MalformedSignatures()
    {
        var good = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts);
        var hex = good[3..];
        var data = new TheoryData<string, bool>();
        foreach (var acceptV1 in new[] { false, true })
        {
            data.Add("", acceptV1);
            data.Add("v2=", acceptV1);
            data.Add("v2", acceptV1);
            data.Add("v2=" + new string('z', 64), acceptV1);
            data.Add("v2=zz" + hex[2..], acceptV1);
            data.Add("v2=" + hex[..63], acceptV1);
            data.Add("v2=" + hex + "0", acceptV1);
            data.Add("v2=" + hex[..62], acceptV1);
            data.Add("v2=" + hex + hex, acceptV1);
            data.Add("v2=" + hex[..63] + " ", acceptV1);
            data.Add("v2= " + hex[..63], acceptV1);
            data.Add("v2=" + hex + "\n", acceptV1);
            data.Add("v2=v2=" + hex, acceptV1);
            data.Add("v2=" + hex[..62] + "é", acceptV1);
            data.Add("v2=" + new string('\0', 64), acceptV1);
            data.Add(hex[..63], acceptV1);
            data.Add("zz" + hex[2..], acceptV1);
            data.Add(new string('x', 10_000), acceptV1);
            data.Add("v2=" + new string('a', 10_000), acceptV1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(MalformedSignatures))]
    public void Malformed_signatures_are_bad_and_never_throw(string signature, bool acceptV1) =>
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts, signature, acceptV1));

    [Theory]
    [InlineData("GET\n")]
    [InlineData("\n")]
    public void Verify_does_not_throw_when_a_presented_field_holds_a_line_feed(string method)
    {
        var signature = NodeAuth.SignV2(Token, Method, Path, NodeId, Body, Ts);
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, method, Path, NodeId, Body, Ts, signature, acceptV1: false));
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, "n\nx", Body, Ts, signature, acceptV1: false));
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Token, Method, Path, NodeId, Body, Ts + "\n", signature, acceptV1: false));
    }

    // ---------------------------------------------------------------- Ed25519 key proof

    [Fact]
    public void A_key_proof_round_trips_and_has_the_wire_shape()
    {
        using var key = NodeKeyProof.NewKey();
        var proof = NodeKeyProof.Sign(key, Method, Path, NodeId, Body, Ts);

        Assert.StartsWith(NodeKeyProof.SignaturePrefix, proof, StringComparison.Ordinal);
        Assert.Equal(64, Convert.FromBase64String(proof[NodeKeyProof.SignaturePrefix.Length..]).Length);
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, Method, Path, NodeId, Body, Ts));
    }

    [Fact]
    public void A_key_proof_is_an_ed25519_signature_over_the_canonical_message_with_the_proof_label()
    {
        using var key = NodeKeyProof.NewKey();
        var proof = NodeKeyProof.Sign(key, Method, Path, NodeId, Body, Ts);
        var signature = Convert.FromBase64String(proof[NodeKeyProof.SignaturePrefix.Length..]);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(key.PublicKey, Expected(ProofLabel, Ts, Method, Path, NodeId, Body), signature));
    }

    [Fact]
    public void SignHeaders_sends_node_id_timestamp_and_a_proof_that_verifies()
    {
        using var key = NodeKeyProof.NewKey();
        var headers = NodeKeyProof.SignHeaders(key, NodeId, Method, Path, Body, 1_763_700_000);
        Assert.Equal([NodeAuth.NodeIdHeader, NodeAuth.TimestampHeader, NodeKeyProof.ProofHeader], headers.Select(h => h.Key));
        Assert.Equal(NodeId, headers[0].Value);
        Assert.Equal("1763700000", headers[1].Value);
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), headers[2].Value, Method, Path, NodeId, Body, "1763700000"));
    }

    [Theory]
    [InlineData("method", "PUT")]
    [InlineData("path", "/v1/nodes/register")]
    [InlineData("path", "/V1/nodes/heartbeat")]
    [InlineData("node", "macbook-002")]
    [InlineData("ts", "1763700001")]
    [InlineData("ts", " 1763700000")]
    [InlineData("body", "{\"ready\":false,\"note\":\"héllo\"}")]
    [InlineData("body", "")]
    [InlineData("proof", "flip-first-byte")]
    [InlineData("proof", "flip-last-byte")]
    public void Tampering_with_any_field_fails_the_key_proof(string field, string value)
    {
        using var key = NodeKeyProof.NewKey();
        var proof = NodeKeyProof.Sign(key, Method, Path, NodeId, Body, Ts);
        if (field == "proof")
        {
            var signature = Convert.FromBase64String(proof[NodeKeyProof.SignaturePrefix.Length..]);
            signature[value == "flip-first-byte" ? 0 : 63] ^= 0x01;
            proof = NodeKeyProof.SignaturePrefix + Convert.ToBase64String(signature);
        }

        string F(string name, string original) => name == field ? value : original;
        var body = field == "body" ? Encoding.UTF8.GetBytes(value) : Body;
        Assert.False(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, F("method", Method), F("path", Path), F("node", NodeId), body, F("ts", Ts)));
    }

    [Fact]
    public void A_proof_by_another_key_fails()
    {
        using var key = NodeKeyProof.NewKey();
        using var other = NodeKeyProof.NewKey();
        var proof = NodeKeyProof.Sign(other, Method, Path, NodeId, Body, Ts);
        Assert.NotEqual(NodeKeyProof.PublicKeyText(key), NodeKeyProof.PublicKeyText(other));
        Assert.False(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, Method, Path, NodeId, Body, Ts));
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(other), proof, Method, Path, NodeId, Body, Ts));
    }

    [Theory]
    [InlineData(HmacLabel, false)]
    [InlineData("", false)]
    [InlineData("dgon-node-proof-v2", false)]
    [InlineData(ProofLabel, true)] // control: the same construction with the proof label passes
    public void Only_a_signature_over_the_proof_label_passes_so_an_hmac_message_cannot_be_replayed_as_a_proof(string label, bool passes)
    {
        using var key = NodeKeyProof.NewKey();
        var message = NodeAuth.CanonicalMessage(label, Ts, Method, Path, NodeId, Body);
        var proof = NodeKeyProof.SignaturePrefix + Convert.ToBase64String(SignatureAlgorithm.Ed25519.Sign(key, message));
        Assert.Equal(passes, NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, Method, Path, NodeId, Body, Ts));
    }

    [Fact]
    public void Export_and_import_keep_the_key()
    {
        using var key = NodeKeyProof.NewKey();
        var raw = NodeKeyProof.ExportPrivateKey(key);
        Assert.Equal(32, raw.Length);

        using var imported = NodeKeyProof.ImportPrivateKey(raw);
        Assert.Equal(NodeKeyProof.PublicKeyText(key), NodeKeyProof.PublicKeyText(imported));
        Assert.Equal(raw, NodeKeyProof.ExportPrivateKey(imported));
        var proof = NodeKeyProof.Sign(imported, Method, Path, NodeId, Body, Ts);
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, Method, Path, NodeId, Body, Ts));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void Importing_a_private_key_of_the_wrong_size_is_a_format_error(int length) =>
        Assert.Throws<FormatException>(() => NodeKeyProof.ImportPrivateKey(new byte[length]));

    [Fact]
    public void PublicKeyText_is_the_prefix_and_44_base64_characters_of_the_raw_public_key()
    {
        using var key = NodeKeyProof.NewKey();
        var text = NodeKeyProof.PublicKeyText(key);

        Assert.Matches("^ed25519:[A-Za-z0-9+/]{43}=$", text);
        Assert.Equal(8 + 44, text.Length);
        Assert.Equal(key.PublicKey.Export(KeyBlobFormat.RawPublicKey), Convert.FromBase64String(text["ed25519:".Length..]));
        Assert.True(NodeKeyProof.IsValidPublicKey(text));
    }

    public static TheoryData<string?> InvalidPublicKeys()
    {
        using var key = NodeKeyProof.NewKey();
        var good = NodeKeyProof.PublicKeyText(key);
        var b64 = good[8..];
        return new TheoryData<string?>
        {
            null,
            "",
            "ed25519:",
            b64,                                                          // no prefix
            "ed25519=" + b64,                                             // signature prefix
            "ED25519:" + b64,                                             // prefix is case-sensitive
            "x25519:" + b64,
            " ed25519:" + b64,
            "ed25519: " + b64,
            good + " ",
            good + "=",
            "ed25519:" + b64[..43],                                       // 43 characters (padding dropped)
            "ed25519:" + b64[..42] + "==",                                // 31 bytes' worth of the key
            "ed25519:" + b64 + "AAAA",                                    // 48 characters
            "ed25519:" + Convert.ToBase64String(new byte[31]),            // 31 bytes (44 characters with "==")
            "ed25519:" + Convert.ToBase64String(new byte[33]),            // 33 bytes (44 characters, no padding)
            "ed25519:" + Convert.ToBase64String(new byte[64]),
            "ed25519:" + Convert.ToBase64String(Encoding.ASCII.GetBytes("not-a-key")),
            "ed25519:" + new string('!', 44),                             // not base64
            "ed25519:" + b64[..40] + "!!!=",
            "ed25519:" + b64[..42] + "-=",                                // base64url alphabet
            "ed25519:" + b64.Replace('=', '\0'),
        };
    }

    [Theory]
    [MemberData(nameof(InvalidPublicKeys))]
    public void IsValidPublicKey_rejects_everything_but_the_prefix_and_base64_of_32_bytes(string? text) =>
        Assert.False(NodeKeyProof.IsValidPublicKey(text));

    [Fact]
    public void IsValidPublicKey_accepts_fresh_keys()
    {
        for (var i = 0; i < 20; i++)
        {
            using var key = NodeKeyProof.NewKey();
            Assert.True(NodeKeyProof.IsValidPublicKey(NodeKeyProof.PublicKeyText(key)));
        }
    }

    public static TheoryData<string?> GarbageProofs()
    {
        using var key = NodeKeyProof.NewKey();
        var good = NodeKeyProof.Sign(key, Method, Path, NodeId, Body, Ts);
        var b64 = good[8..];
        return new TheoryData<string?>
        {
            null,
            "",
            "ed25519=",
            "ed25519",
            b64,                                                          // no prefix
            "ED25519=" + b64,
            "ed25519:" + b64,                                             // public key prefix
            "ed25519=" + b64[..^1],
            "ed25519=" + b64[..^4],
            "ed25519=" + b64 + "AAAA",
            "ed25519=" + Convert.ToBase64String(new byte[63]),
            "ed25519=" + Convert.ToBase64String(new byte[65]),
            "ed25519=" + Convert.ToBase64String(new byte[64]),            // right size, all zero
            "ed25519=" + Convert.ToBase64String(Enumerable.Repeat((byte)0xff, 64).ToArray()),
            "ed25519=" + new string('!', 88),
            "ed25519=" + new string('A', 100_000),
            "ed25519=" + b64.Replace('+', '-').Replace('/', '_'),
            "ed25519=\0",
            "v2=" + new string('a', 64),
        };
    }

    [Theory]
    [MemberData(nameof(GarbageProofs))]
    public void Verify_is_false_and_never_throws_for_garbage_proofs(string? proof)
    {
        using var key = NodeKeyProof.NewKey();
        Assert.False(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof!, Method, Path, NodeId, Body, Ts));
    }

    [Theory]
    [MemberData(nameof(InvalidPublicKeys))]
    public void Verify_is_false_and_never_throws_for_a_garbage_public_key(string? publicKey)
    {
        using var key = NodeKeyProof.NewKey();
        var proof = NodeKeyProof.Sign(key, Method, Path, NodeId, Body, Ts);
        Assert.False(NodeKeyProof.Verify(publicKey!, proof, Method, Path, NodeId, Body, Ts));
    }

    [Theory]
    [InlineData("method")]
    [InlineData("path")]
    [InlineData("node")]
    [InlineData("ts")]
    public void Verify_is_false_and_never_throws_when_a_field_holds_a_line_feed(string field)
    {
        using var key = NodeKeyProof.NewKey();
        var proof = NodeKeyProof.Sign(key, Method, Path, NodeId, Body, Ts);
        string F(string name, string original) => name == field ? original + "\n" : original;
        Assert.False(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, F("method", Method), F("path", Path), F("node", NodeId), Body, F("ts", Ts)));
    }

    // ---------------------------------------------------------------- join tokens

    [GeneratedRegex(@"^[a-z0-9]{6}\.[a-z0-9]{16}\z", RegexOptions.CultureInvariant)]
    private static partial Regex TokenShape();

    [Fact]
    public void New_tokens_have_the_bootstrap_token_shape_and_are_distinct()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 1000; i++)
        {
            var token = JoinTokens.New();
            var text = token.ToString();
            Assert.Matches(TokenShape(), text);
            Assert.Equal(token.Id + "." + token.Secret, text);
            Assert.True(JoinTokens.IsValidId(token.Id));
            Assert.True(JoinTokens.TryParse(text, out var parsed));
            Assert.Equal(token, parsed);
            Assert.True(seen.Add(text), $"duplicate token {text}");
        }

        // Across 1000 tokens every symbol of the 36-character alphabet shows up in the secrets.
        var symbols = seen.SelectMany(t => t[7..]).ToHashSet();
        Assert.Equal(36, symbols.Count);
    }

    [Theory]
    [InlineData("abc123.0123456789abcdef", "abc123", "0123456789abcdef")]
    [InlineData("000000.0000000000000000", "000000", "0000000000000000")]
    [InlineData("zzzzzz.zzzzzzzzzzzzzzzz", "zzzzzz", "zzzzzzzzzzzzzzzz")]
    public void TryParse_accepts_id_dot_secret(string text, string id, string secret)
    {
        Assert.True(JoinTokens.TryParse(text, out var credential));
        Assert.Equal(new JoinTokenCredential(id, secret), credential);
        Assert.Equal(text, credential.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("ABC123.0123456789abcdef")]      // upper-case id
    [InlineData("abc123.0123456789ABCDEF")]      // upper-case secret
    [InlineData("abc123.0123456789abcdeF")]
    [InlineData("abc12.0123456789abcdef")]       // 5-character id
    [InlineData("abc1234.0123456789abcdef")]     // 7-character id
    [InlineData("abc123.0123456789abcde")]       // 15-character secret
    [InlineData("abc123.0123456789abcdef0")]     // 17-character secret
    [InlineData("abc12.30123456789abcdef")]      // right length, dot one place early
    [InlineData("abc1230.123456789abcdef")]      // right length, dot one place late
    [InlineData("abc1230123456789abcdef")]       // no dot
    [InlineData("abc123x0123456789abcdef")]      // another character where the dot goes
    [InlineData("abc123-0123456789abcdef")]
    [InlineData("abc123:0123456789abcdef")]
    [InlineData("abc123..123456789abcdef")]
    [InlineData("abc123.0123456789abcdef.")]     // extra characters
    [InlineData("abc123.0123456789abcdefx")]
    [InlineData("xabc123.0123456789abcdef")]
    [InlineData(" abc123.0123456789abcdef")]     // whitespace
    [InlineData("abc123.0123456789abcdef ")]
    [InlineData("abc123.0123456789abcdef\n")]
    [InlineData("abc123.0123456789abcde\n")]     // 23 characters, the last a line feed
    [InlineData("abc123 .0123456789abcde")]
    [InlineData("abc123.0123456789 abcde")]
    [InlineData("\tbc123.0123456789abcdef")]
    [InlineData("abc_23.0123456789abcdef")]
    [InlineData("abc123.0123456789abcd-f")]
    [InlineData("abç123.0123456789abcdef")]      // non-ASCII letter
    [InlineData("abc١٢٣.0123456789abcdef")]      // Arabic-Indic digits
    [InlineData("abc123.0123456789abcdeｆ")]      // full-width letter
    public void TryParse_rejects_anything_else(string? text)
    {
        Assert.False(JoinTokens.TryParse(text, out var credential));
        Assert.Null(credential);
    }

    [Theory]
    [InlineData("abc123", true)]
    [InlineData("000000", true)]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("abc12", false)]
    [InlineData("abc1234", false)]
    [InlineData("ABC123", false)]
    [InlineData("abc 12", false)]
    [InlineData("abc12\n", false)]
    [InlineData("abc-12", false)]
    public void IsValidId_is_six_lowercase_letters_or_digits(string? id, bool valid) =>
        Assert.Equal(valid, JoinTokens.IsValidId(id));

    [Theory]
    [InlineData("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("0123456789abcdef", null)]
    [InlineData("héllo", null)]
    public void HashSecret_is_lowercase_hex_sha256_of_the_utf8_bytes(string secret, string? known)
    {
        var expected = known ?? Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret))).ToLowerInvariant();
        var hash = JoinTokens.HashSecret(secret);
        Assert.Matches("^[0-9a-f]{64}$", hash);
        Assert.Equal(expected, hash);
    }

    [Theory]
    [InlineData("0123456789abcdef", "0123456789abcdef", true)]
    [InlineData("0123456789abcdef", "0123456789abcdee", false)]
    [InlineData("0123456789abcdef", "0123456789ABCDEF", false)]
    [InlineData("0123456789abcdef", "0123456789abcdef0", false)]
    [InlineData("0123456789abcdef", "", false)]
    [InlineData("", "", true)]
    public void SecretMatches_is_true_only_for_the_hashed_secret(string presented, string stored, bool matches) =>
        Assert.Equal(matches, JoinTokens.SecretMatches(presented, JoinTokens.HashSecret(stored)));

    [Theory]
    [InlineData("upper-case stored hash", true)]
    [InlineData("truncated stored hash", false)]
    [InlineData("empty stored hash", false)]
    [InlineData("the secret itself as the stored hash", false)]
    [InlineData("hash of the hash", false)]
    public void SecretMatches_with_odd_stored_hashes(string storedForm, bool matches)
    {
        const string secret = "0123456789abcdef";
        var hash = JoinTokens.HashSecret(secret);
        var stored = storedForm switch
        {
            "upper-case stored hash" => hash.ToUpperInvariant(),
            "truncated stored hash" => hash[..63],
            "empty stored hash" => "",
            "the secret itself as the stored hash" => secret,
            _ => JoinTokens.HashSecret(hash),
        };
        Assert.Equal(matches, JoinTokens.SecretMatches(secret, stored));
    }

    private static readonly DateTimeOffset Now = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

    // flags: r = revoked, e = expired, u = used up, g = bound to another region.
    [Theory]
    [InlineData("", JoinTokenCheck.Ok)]
    [InlineData("r", JoinTokenCheck.Revoked)]
    [InlineData("e", JoinTokenCheck.Expired)]
    [InlineData("u", JoinTokenCheck.UsedUp)]
    [InlineData("g", JoinTokenCheck.RegionNotAllowed)]
    [InlineData("reug", JoinTokenCheck.Revoked)]
    [InlineData("re", JoinTokenCheck.Revoked)]
    [InlineData("ru", JoinTokenCheck.Revoked)]
    [InlineData("rg", JoinTokenCheck.Revoked)]
    [InlineData("eug", JoinTokenCheck.Expired)]
    [InlineData("eu", JoinTokenCheck.Expired)]
    [InlineData("eg", JoinTokenCheck.Expired)]
    [InlineData("ug", JoinTokenCheck.UsedUp)]
    public void Check_reports_revoked_before_expired_before_used_up_before_region(string flags, JoinTokenCheck expected)
    {
        var token = new JoinTokenRecord
        {
            Id = "abc123",
            CreatedAt = Now.AddDays(-2),
            ExpiresAt = flags.Contains('e', StringComparison.Ordinal) ? Now.AddSeconds(-1) : Now.AddHours(1),
            MaxUses = 3,
            Uses = flags.Contains('u', StringComparison.Ordinal) ? 3 : 2,
            RevokedAt = flags.Contains('r', StringComparison.Ordinal) ? Now.AddDays(-1) : null,
            Region = flags.Contains('g', StringComparison.Ordinal) ? "us-east" : "eu-west",
        };
        Assert.Equal(expected, JoinTokens.Check(token, "eu-west", Now));
    }

    [Theory]
    [InlineData(-1L, JoinTokenCheck.Ok)]                 // one tick before expiry
    [InlineData(0L, JoinTokenCheck.Expired)]             // at ExpiresAt: expiry is exclusive
    [InlineData(1L, JoinTokenCheck.Expired)]
    [InlineData(-TimeSpan.TicksPerDay, JoinTokenCheck.Ok)]
    public void Expiry_is_exclusive_at_ExpiresAt(long ticksFromExpiry, JoinTokenCheck expected)
    {
        var token = new JoinTokenRecord { Id = "abc123", CreatedAt = Now.AddDays(-1), ExpiresAt = Now };
        Assert.Equal(expected, JoinTokens.Check(token, "eu-west", Now.AddTicks(ticksFromExpiry)));
    }

    [Fact]
    public void Expiry_compares_instants_not_clock_faces()
    {
        // The same instant expressed in another offset is still "now == ExpiresAt".
        var token = new JoinTokenRecord { Id = "abc123", CreatedAt = Now.AddDays(-1), ExpiresAt = Now };
        Assert.Equal(JoinTokenCheck.Expired, JoinTokens.Check(token, "eu-west", Now.ToOffset(TimeSpan.FromHours(9))));
        Assert.Equal(JoinTokenCheck.Ok, JoinTokens.Check(token, "eu-west", Now.ToOffset(TimeSpan.FromHours(-5)).AddTicks(-1)));
    }

    [Theory]
    [InlineData(null, 0, JoinTokenCheck.Ok)]
    [InlineData(null, int.MaxValue, JoinTokenCheck.Ok)]
    [InlineData(1, 0, JoinTokenCheck.Ok)]
    [InlineData(1, 1, JoinTokenCheck.UsedUp)]
    [InlineData(5, 4, JoinTokenCheck.Ok)]
    [InlineData(5, 5, JoinTokenCheck.UsedUp)]
    [InlineData(5, 6, JoinTokenCheck.UsedUp)]
    [InlineData(0, 0, JoinTokenCheck.UsedUp)]
    public void Max_uses_bound_the_uses(int? maxUses, int uses, JoinTokenCheck expected)
    {
        var token = new JoinTokenRecord { Id = "abc123", CreatedAt = Now, ExpiresAt = Now.AddHours(1), MaxUses = maxUses, Uses = uses };
        Assert.Equal(expected, JoinTokens.Check(token, "eu-west", Now));
    }

    [Theory]
    [InlineData(null, "eu-west", JoinTokenCheck.Ok)]
    [InlineData(null, "ap-southeast", JoinTokenCheck.Ok)]
    [InlineData(null, "", JoinTokenCheck.Ok)]
    [InlineData("eu-west", "eu-west", JoinTokenCheck.Ok)]
    [InlineData("eu-west", "us-east", JoinTokenCheck.RegionNotAllowed)]
    [InlineData("eu-west", "EU-WEST", JoinTokenCheck.RegionNotAllowed)]  // ordinal: region case matters
    [InlineData("eu-west", "eu-west ", JoinTokenCheck.RegionNotAllowed)]
    [InlineData("eu-west", "", JoinTokenCheck.RegionNotAllowed)]
    public void A_null_region_admits_any_region_and_a_bound_one_only_itself(string? bound, string region, JoinTokenCheck expected)
    {
        var token = new JoinTokenRecord { Id = "abc123", CreatedAt = Now, ExpiresAt = Now.AddHours(1), Region = bound };
        Assert.Equal(expected, JoinTokens.Check(token, region, Now));
    }

    // ---------------------------------------------------------------- FindUnstorableText

    [Theory]
    [InlineData("\"\\u0000\"", "payload")]
    [InlineData("\"a\\u0000b\"", "payload")]
    [InlineData("{\"a\":\"\\u0000\"}", "payload.a")]
    [InlineData("{\"a\":{\"b\":[\"ok\",\"x\\u0000\"]}}", "payload.a.b[1]")]
    [InlineData("{\"a\":{\"b\":[\"ok\",\"\\ud800\"]}}", "payload.a.b[1]")]              // lone high surrogate
    [InlineData("{\"a\":{\"b\":[\"ok\",\"\\udc00\"]}}", "payload.a.b[1]")]              // lone low surrogate
    [InlineData("{\"a\":\"x\\ud800\"}", "payload.a")]                                  // high surrogate at the end
    [InlineData("{\"a\":\"\\ud800x\"}", "payload.a")]                                  // high surrogate, then no low
    [InlineData("{\"a\":\"\\ud800\\ud800\"}", "payload.a")]                            // two highs
    [InlineData("{\"a\":\"\\ude00\\ud83d\"}", "payload.a")]                            // pair in the wrong order
    [InlineData("{\"a\":\"\\ud83d\\ude00\\udc00\"}", "payload.a")]                     // valid pair, then a lone low
    [InlineData("[[\"ok\"],[\"ok\",[\"\\u0000\"]]]", "payload[1][1][0]")]
    [InlineData("[{\"k\":1},{\"k\":\"\\ud800\"}]", "payload[1].k")]
    [InlineData("{\"a\\u0000b\":1}", "payload.a?b")]                                   // NUL in a property name
    [InlineData("{\"a\":{\"b\\u0000\":\"fine\"}}", "payload.a.b?")]
    [InlineData("{\"ok\":\"fine\",\"x\":[1,true,null,{\"y\":\"\\u0000\"}]}", "payload.x[3].y")]
    [InlineData("{\"x\":\"\\u0000\",\"y\":\"\\u0000\"}", "payload.x")]                 // the first one found
    public void FindUnstorableText_names_the_first_unstorable_string(string json, string path)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(path, ContractValidator.FindUnstorableText(doc.RootElement, "payload"));
    }

    [Theory]
    [InlineData("{\"\\ud800\":1}", "payload.?")]
    [InlineData("{\"\\udc00\":\"fine\"}", "payload.?")]
    [InlineData("{\"a\":{\"\\udc00x\":\"v\"}}", "payload.a.?")]
    [InlineData("[0,{\"ok\":1,\"x\\ud800\":{}}]", "payload[1].?")]
    public void FindUnstorableText_finds_a_lone_surrogate_in_a_property_name(string json, string path)
    {
        // What the code does: .NET cannot decode such a name at all, so the path names it "?" under its parent.
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(path, ContractValidator.FindUnstorableText(doc.RootElement, "payload"));
    }

    [Fact]
    public void FindUnstorableText_finds_unstorable_text_in_elements_built_from_dotnet_strings()
    {
        // A NUL in a .NET string survives serialisation (as \u0000).
        var element = JsonSerializer.SerializeToElement(new Dictionary<string, object> { ["a"] = new[] { "ok", "x\0y" } });
        Assert.Equal("p.a[1]", ContractValidator.FindUnstorableText(element, "p"));
    }

    [Theory]
    [InlineData("\udc00")]
    [InlineData("a\ud800")]
    public void A_lone_surrogate_in_a_dotnet_string_reaches_json_as_a_replacement_character(string text)
    {
        // System.Text.Json writes U+FFFD for it, so only escaped JSON text can carry a lone surrogate to the check.
        var element = JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["a"] = text });
        Assert.Contains("\ufffd", element.GetProperty("a").GetString()!, StringComparison.Ordinal);
        Assert.Null(ContractValidator.FindUnstorableText(element, "payload"));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("[]")]
    [InlineData("\"\"")]
    [InlineData("null")]
    [InlineData("0")]
    [InlineData("true")]
    [InlineData("{\"a\":\"\\ud83d\\ude00\"}")]                                         // escaped emoji (a valid pair)
    [InlineData("{\"a\":\"😀 héllo ñ 中文\"}")]                                          // raw UTF-8
    [InlineData("{\"😀\":{\"\\ud83d\\ude00\":[\"\\ud83d\\ude00\"]}}")]
    [InlineData("{\"a\":\"\\u0001\\u001f\\u007f\\t\\n\"}")]                            // control characters other than NUL are storable
    [InlineData("{\"a\":\"\\\\u0000\"}")]                                              // an escaped backslash, not a NUL
    [InlineData("{\"a\":\"\\\\ud800\"}")]
    [InlineData("{\"a\":\"\\uffff\\ufffd\\ue000\"}")]
    [InlineData("{\"a\":[1,2.5,-3e10,null,false,{\"b\":[]}]}")]
    public void FindUnstorableText_is_null_for_storable_documents(string json)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.Null(ContractValidator.FindUnstorableText(doc.RootElement, "payload"));
    }

    [Fact]
    public void A_receipt_with_unstorable_payload_text_is_refused_under_the_path()
    {
        using var doc = JsonDocument.Parse("{\"a\":{\"b\":[\"ok\",\"\\ud800\"]}}");
        var receipt = new ReceiptRequest { Id = "r-1", NodeId = "n1", Region = "eu-west", ModelId = "m", Payload = doc.RootElement.Clone() };
        var errors = ContractValidator.Validate(receipt);
        Assert.Equal(["payload.a.b[1]"], errors.Keys);
        Assert.Equal([ContractValidator.UnstorableTextMessage], errors["payload.a.b[1]"]);
    }

    // ---------------------------------------------------------------- Validate(JoinTokenCreateRequest)

    [Theory]
    [InlineData(null, true)]
    [InlineData(59L, false)]
    [InlineData(60L, true)]
    [InlineData(86_400L, true)]
    [InlineData(31_536_000L, true)]
    [InlineData(31_536_001L, false)]
    [InlineData(0L, false)]
    [InlineData(-60L, false)]
    [InlineData(long.MaxValue, false)]
    [InlineData(long.MinValue, false)]
    public void Join_token_ttl_is_60_seconds_to_365_days(long? ttl, bool valid) =>
        AssertOnly(ContractValidator.Validate(new JoinTokenCreateRequest { TtlSeconds = ttl }), "ttl_seconds", valid);

    [Theory]
    [InlineData(null, true)]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(1_000_000, true)]
    [InlineData(1_000_001, false)]
    [InlineData(-1, false)]
    [InlineData(int.MaxValue, false)]
    [InlineData(int.MinValue, false)]
    public void Join_token_max_uses_is_1_to_a_million(int? maxUses, bool valid) =>
        AssertOnly(ContractValidator.Validate(new JoinTokenCreateRequest { MaxUses = maxUses }), "max_uses", valid);

    [Theory]
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("lab rack 3, ünïcode 😀", true)]
    [InlineData("tab\there", false)]
    [InlineData("line\nfeed", false)]
    [InlineData("nul\0", false)]
    [InlineData("del\u007f", false)]
    [InlineData("c1\u0085", false)]
    [InlineData("esc\u001b[31m", false)]
    public void Join_token_description_is_printable(string? description, bool valid) =>
        AssertOnly(ContractValidator.Validate(new JoinTokenCreateRequest { Description = description }), "description", valid);

    [Theory]
    [InlineData(256, true)]
    [InlineData(257, false)]
    [InlineData(10_000, false)]
    public void Join_token_description_is_at_most_256_characters(int length, bool valid) =>
        AssertOnly(ContractValidator.Validate(new JoinTokenCreateRequest { Description = new string('d', length) }), "description", valid);

    [Theory]
    [InlineData(null, true)]
    [InlineData("eu-west", true)]
    [InlineData("EU_West.1", true)]
    [InlineData("a", true)]
    [InlineData("", false)]
    [InlineData("-eu", false)]
    [InlineData("eu-", false)]
    [InlineData("eu west", false)]
    [InlineData("eu/west", false)]
    [InlineData("eu-west\n", false)]
    [InlineData("ëu", false)]
    public void Join_token_region_is_a_label_value(string? region, bool valid) =>
        AssertOnly(ContractValidator.Validate(new JoinTokenCreateRequest { Region = region }), "region", valid);

    [Theory]
    [InlineData(63, true)]
    [InlineData(64, false)]
    public void Join_token_region_is_at_most_63_characters(int length, bool valid) =>
        AssertOnly(ContractValidator.Validate(new JoinTokenCreateRequest { Region = new string('r', length) }), "region", valid);

    [Fact]
    public void Join_token_request_names_every_bad_field()
    {
        var errors = ContractValidator.Validate(new JoinTokenCreateRequest { TtlSeconds = 59, MaxUses = 0, Description = new string('d', 257), Region = "-" });
        Assert.Equal(["description", "max_uses", "region", "ttl_seconds"], errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Join_token_request_deserialised_from_snake_case_is_validated()
    {
        var request = JsonSerializer.Deserialize("{\"ttl_seconds\":31536001,\"max_uses\":1000001}", DgonJsonContext.Default.JoinTokenCreateRequest)!;
        Assert.Equal(["max_uses", "ttl_seconds"], ContractValidator.Validate(request).Keys.Order(StringComparer.Ordinal));
    }

    // ---------------------------------------------------------------- Validate(RegisterRequest).public_key

    private static RegisterRequest Register(string? publicKey) =>
        new() { NodeId = "macbook-001", Region = "ap-southeast", Runtime = "ollama", PublicKey = publicKey };

    [Fact]
    public void Register_without_a_public_key_is_valid() => Assert.Empty(ContractValidator.Validate(Register(null)));

    [Fact]
    public void Register_with_a_real_public_key_is_valid()
    {
        using var key = NodeKeyProof.NewKey();
        Assert.Empty(ContractValidator.Validate(Register(NodeKeyProof.PublicKeyText(key))));
    }

    [Theory]
    [MemberData(nameof(InvalidPublicKeys))]
    public void Register_with_a_malformed_public_key_names_public_key(string? publicKey)
    {
        var errors = ContractValidator.Validate(Register(publicKey));
        if (publicKey is null)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.Equal(["public_key"], errors.Keys);
        }
    }

    private static void AssertOnly(Dictionary<string, string[]> errors, string field, bool valid)
    {
        if (valid)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.Equal([field], errors.Keys);
            Assert.NotEmpty(errors[field]);
        }
    }
}
