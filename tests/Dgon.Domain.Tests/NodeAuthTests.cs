using System.Text;
using Dgon.Domain.Auth;

namespace Dgon.Domain.Tests;

public sealed class NodeAuthTests
{
    // Vectors computed independently with Python: hmac.new(token.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
    // (the seed 001 agent's exact formula).
    [Theory]
    [InlineData("3f1c0a7e9b2d4c6f8a1b3d5e7f9012345678abcdef0123456789abcdef012345", "{\"gpu_util\":0.4,\"mem_used_gb\":6.0,\"p95_ms\":320,\"ready\":true}", "1736538502", "1bf57dc6d8d7678dc4699befd07c77867c3fdc42a8d94e879b4d3dc7e49fe7e2")]
    [InlineData("secret", "", "0", "1779fd3337dd353e424d808d9190aff8f09e46a8cbbe6469079b2d7f0e246e37")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "{\"ready\":false,\"note\":\"héllo\"}", "1763700000", "d8f0d47c2b2931a7f1a8abea73c1b7ce8330478dcde7482ba151d3cbc2cbf98f")]
    public void Sign_matches_python_reference_vectors(string token, string body, string ts, string expected)
    {
        Assert.Equal(expected, NodeAuth.Sign(token, Encoding.UTF8.GetBytes(body), ts));
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.VerifySignature(token, Encoding.UTF8.GetBytes(body), ts, expected));
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.VerifySignature(token, Encoding.UTF8.GetBytes(body), ts, expected.ToUpperInvariant()));
    }

    [Theory]
    [InlineData("tampered body")]
    [InlineData("different ts")]
    [InlineData("other token")]
    [InlineData("truncated")]
    [InlineData("not hex")]
    public void VerifySignature_rejects_any_change(string change)
    {
        var body = Encoding.UTF8.GetBytes("{\"ready\":true}");
        var good = NodeAuth.Sign("tok", body, "100");
        var result = change switch
        {
            "tampered body" => NodeAuth.VerifySignature("tok", Encoding.UTF8.GetBytes("{\"ready\":false}"), "100", good),
            "different ts" => NodeAuth.VerifySignature("tok", body, "101", good),
            "other token" => NodeAuth.VerifySignature("tok2", body, "100", good),
            "truncated" => NodeAuth.VerifySignature("tok", body, "100", good[..62]),
            _ => NodeAuth.VerifySignature("tok", body, "100", "zz" + good[2..]),
        };
        Assert.Equal(NodeAuthResult.BadSignature, result);
    }

    [Theory]
    [InlineData(null, "100", "sig", NodeAuthResult.MissingHeaders)]
    [InlineData("n", null, "sig", NodeAuthResult.MissingHeaders)]
    [InlineData("n", "100", "", NodeAuthResult.MissingHeaders)]
    [InlineData("n", "1e3", "sig", NodeAuthResult.InvalidTimestamp)]
    [InlineData("n", "-100", "sig", NodeAuthResult.InvalidTimestamp)]
    [InlineData("n", "100.5", "sig", NodeAuthResult.InvalidTimestamp)]
    [InlineData("n", "99999999999999999999999", "sig", NodeAuthResult.InvalidTimestamp)]
    public void CheckHeaders_rejects_missing_or_malformed(string? id, string? ts, string? sig, NodeAuthResult expected) =>
        Assert.Equal(expected, NodeAuth.CheckHeaders(id, ts, sig, DateTimeOffset.FromUnixTimeSeconds(100)));

    [Theory]
    [InlineData(0, NodeAuthResult.Ok)]
    [InlineData(120, NodeAuthResult.Ok)]
    [InlineData(-120, NodeAuthResult.Ok)]
    [InlineData(121, NodeAuthResult.StaleTimestamp)]
    [InlineData(-121, NodeAuthResult.StaleTimestamp)]
    public void CheckHeaders_enforces_the_120_second_window(int skewSeconds, NodeAuthResult expected)
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1_763_700_000);
        var ts = (now.ToUnixTimeSeconds() + skewSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(expected, NodeAuth.CheckHeaders("n", ts, "sig", now));
    }

    [Fact]
    public void NewToken_is_256_bits_of_lowercase_hex_and_unique()
    {
        var tokens = Enumerable.Range(0, 100).Select(_ => NodeAuth.NewToken()).ToList();
        Assert.All(tokens, t => Assert.Matches("^[0-9a-f]{64}$", t));
        Assert.Equal(tokens.Count, tokens.Distinct().Count());
    }

    [Fact]
    public void SignHeaders_produces_verifiable_headers()
    {
        var body = Encoding.UTF8.GetBytes("{}");
        var now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        var headers = NodeAuth.SignHeaders("node-1", "tok", body, now).ToDictionary(h => h.Key, h => h.Value);
        Assert.Equal("node-1", headers[NodeAuth.NodeIdHeader]);
        Assert.Equal("1700000000", headers[NodeAuth.TimestampHeader]);
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.VerifySignature("tok", body, "1700000000", headers[NodeAuth.SignatureHeader]));
    }
}
