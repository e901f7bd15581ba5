using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Dgon.Domain.Auth;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>
/// Issue 9, standalone mode: each attack from the issue is a test here (takeover, replay, strangers' bad requests,
/// join tokens, the admin credential, token rotation, reset, NUL bytes).
/// </summary>
public sealed class NodeTrustTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    private HttpClient Api => fx.Client;

    [Fact]
    public async Task A_takeover_attempt_leaves_token_wallet_and_phase_unchanged()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId("victim"));
        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var before = await RowAsync(node.NodeId);
        var joinToken = await TestNode.SharedJoinTokenAsync(Api);
        var attacker = NodeKeyProof.NewKey();
        var attempts = new List<(HttpRequestMessage Request, string Expected)>();
        foreach (var bearer in new string?[] { null, joinToken })
        {
            foreach (var withKey in new[] { false, true })
            {
                var request = Post("/v1/nodes/register", new { node_id = node.NodeId, region = "eu-west", runtime = "ollama", wallet_address = "0xATTACKER", public_key = withKey ? NodeKeyProof.PublicKeyText(attacker) : null });
                if (bearer is not null)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
                }

                attempts.Add((request, withKey ? "key-mismatch" : "proof-required"));
            }
        }

        foreach (var (attempt, expected) in attempts)
        {
            using var response = await Api.SendAsync(attempt);
            var problem = await Json.AssertProblemAsync(response, 409, expected);
            Assert.DoesNotContain("node_token", problem.ToString(), StringComparison.Ordinal);
        }

        // A proof signed with another key does not pass either.
        using (var forged = await node.ReRegisterAsync(region: "eu-west", walletAddress: "0xATTACKER", signWith: attacker))
        {
            await Json.AssertProblemAsync(forged, 409, "proof-required");
        }

        Assert.Equal(before, await RowAsync(node.NodeId));
        using var still = await node.HeartbeatAsync(ready: true);
        Assert.Equal("active", (await Json.ReadAsync(still)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_key_holder_may_change_its_wallet_by_re_registering()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using var response = await node.ReRegisterAsync(walletAddress: "0xNEW");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("0xNEW", await fx.ScalarAsync<string>("SELECT wallet_address FROM nodes WHERE id = $1", node.NodeId));
    }

    [Theory]
    [InlineData(Domain.Auth.SignatureScheme.V1)]
    [InlineData(Domain.Auth.SignatureScheme.V2)]
    public async Task A_replayed_or_older_heartbeat_is_401_replayed(Domain.Auth.SignatureScheme scheme)
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        node.Scheme = scheme;
        var body = "{\"ready\":true}"u8.ToArray();
        var ts = node.NextTs();
        var headers = node.Sign("/v1/nodes/heartbeat", body, ts);
        using (var first = await node.SendAsync("/v1/nodes/heartbeat", body, headers))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using (var replay = await node.SendAsync("/v1/nodes/heartbeat", body, headers))
        {
            await Json.AssertProblemAsync(replay, 401, "replayed");
        }

        using (var older = await node.SendAsync("/v1/nodes/heartbeat", body, node.Sign("/v1/nodes/heartbeat", body, ts - 5)))
        {
            await Json.AssertProblemAsync(older, 401, "replayed");
        }

        using var later = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, later.StatusCode);
    }

    [Fact]
    public async Task A_v2_signature_binds_the_path()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var body = "{\"ready\":true}"u8.ToArray();
        // Signed for /v1/receipts, sent to /v1/nodes/heartbeat.
        using var response = await node.SendAsync("/v1/nodes/heartbeat", body, node.Sign("/v1/receipts", body, node.NextTs()));
        await Json.AssertProblemAsync(response, 401, "bad-signature");
    }

    [Theory]
    [InlineData(5)]
    [InlineData(50)]
    public async Task Bad_requests_for_a_node_id_change_nothing(int count)
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var before = await RowAsync(node.NodeId);
        for (var i = 0; i < count; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/heartbeat") { Content = new StringContent("{\"ready\":false}", Encoding.UTF8, "application/json") };
            request.Headers.Add("X-Node-Id", node.NodeId);
            request.Headers.Add("X-Node-Ts", i % 2 == 0 ? "1" : DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add("X-Node-Auth", i % 3 == 0 ? "00" : "v2=" + new string('0', 64));
            using var response = await Api.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        Assert.Equal(before, await RowAsync(node.NodeId));
        using var valid = await node.HeartbeatAsync(ready: true);
        Assert.Equal("active", (await Json.ReadAsync(valid)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_new_node_needs_a_join_token()
    {
        var id = ApiFixture.NewNodeId();
        using (var none = await Api.SendAsync(Post("/v1/nodes/register", new { node_id = id, region = "eu", runtime = "ollama" })))
        {
            var problem = await Json.AssertProblemAsync(none, 401, "join-token-required");
            Assert.Contains("join token", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        foreach (var (bearer, slug) in new[] { ("not-a-token", "join-token-invalid"), ("abcdef.0123456789abcdef", "join-token-invalid") })
        {
            using var response = await Api.SendAsync(WithBearer(Post("/v1/nodes/register", new { node_id = id, region = "eu", runtime = "ollama" }), bearer));
            await Json.AssertProblemAsync(response, 401, slug);
        }

        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE id = $1", id));
    }

    [Fact]
    public async Task Join_tokens_expire_get_used_up_are_revoked_and_bind_a_region()
    {
        var once = await fx.Api.CreateJoinTokenAsync("{\"max_uses\":1,\"description\":\"one Mac\"}");
        await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId(), joinToken: once);
        await AssertRefusedAsync(once, 401, "join-token-used-up");

        var expiring = await fx.Api.CreateJoinTokenAsync("{\"ttl_seconds\":60}");
        await fx.ScalarAsync<int>("UPDATE join_tokens SET expires_at = now() - interval '1 second' WHERE id = $1 RETURNING 1", expiring[..6]);
        await AssertRefusedAsync(expiring, 401, "join-token-expired");

        var revoked = await fx.Api.CreateJoinTokenAsync();
        using (var delete = await Api.SendAsync(Admin(new HttpRequestMessage(HttpMethod.Delete, $"/v1/admin/join-tokens/{revoked[..6]}"))))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        await AssertRefusedAsync(revoked, 401, "join-token-revoked");

        var regional = await fx.Api.CreateJoinTokenAsync("{\"region\":\"eu-west\"}");
        await AssertRefusedAsync(regional, 403, "join-token-region");
        await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId(), region: "eu-west", joinToken: regional);

        using var list = await Api.SendAsync(Admin(new HttpRequestMessage(HttpMethod.Get, "/v1/admin/join-tokens")));
        var text = await list.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        foreach (var token in new[] { once, expiring, revoked, regional })
        {
            Assert.Contains($"\"id\":\"{token[..6]}\"", text, StringComparison.Ordinal);
            Assert.DoesNotContain(token[7..], text, StringComparison.Ordinal); // never the secret
        }

        var states = (await Json.ReadAsync(list)).EnumerateArray().ToDictionary(t => t.GetProperty("id").GetString()!, t => t.GetProperty("state").GetString());
        Assert.Equal("used_up", states[once[..6]]);
        Assert.Equal("expired", states[expiring[..6]]);
        Assert.Equal("revoked", states[revoked[..6]]);
        Assert.Equal("valid", states[regional[..6]]);
        Assert.Equal(StoredHash(once), await fx.ScalarAsync<string>("SELECT secret_sha256 FROM join_tokens WHERE id = $1", once[..6]));
    }

    [Fact]
    public async Task Concurrent_registrations_cannot_both_take_the_last_use()
    {
        var once = await fx.Api.CreateJoinTokenAsync("{\"max_uses\":1}");
        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ =>
            Api.SendAsync(WithBearer(Post("/v1/nodes/register", new { node_id = ApiFixture.NewNodeId("race"), region = "eu", runtime = "ollama" }), once))));
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.Equal(1, await fx.ScalarAsync<int>("SELECT uses FROM join_tokens WHERE id = $1", once[..6]));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-admin-token-0123456789abcdefghijklmnop")]
    public async Task Admin_endpoints_need_the_admin_token(string? bearer)
    {
        foreach (var request in new[]
        {
            new HttpRequestMessage(HttpMethod.Get, "/v1/admin/join-tokens"),
            Post("/v1/admin/join-tokens", new { }),
            new HttpRequestMessage(HttpMethod.Delete, "/v1/admin/join-tokens/abcdef"),
            Post("/v1/admin/nodes/some-node/reset-key", new { }),
        })
        {
            if (bearer is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            using var response = await Api.SendAsync(request);
            await Json.AssertProblemAsync(response, 401, bearer is null ? "credential-required" : "invalid-credential");
            Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        }
    }

    [Theory]
    [InlineData("{\"ttl_seconds\":10}", "ttl_seconds")]
    [InlineData("{\"ttl_seconds\":99999999999}", "ttl_seconds")]
    [InlineData("{\"max_uses\":0}", "max_uses")]
    [InlineData("{\"region\":\"not a region\"}", "region")]
    [InlineData("{\"description\":\"bell\\u0007\"}", "description")]
    public async Task A_bad_join_token_request_is_422_naming_the_field(string body, string field)
    {
        using var response = await Api.SendAsync(Admin(new HttpRequestMessage(HttpMethod.Post, "/v1/admin/join-tokens") { Content = new StringContent(body, Encoding.UTF8, "application/json") }));
        var problem = await Json.AssertProblemAsync(response, 422, "validation-failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task A_rotated_token_replaces_the_old_one_which_works_during_the_overlap()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var old = node.Token;
        using (var rotated = await node.RotateTokenAsync())
        {
            Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
            var body = await Json.ReadAsync(rotated);
            var until = body.GetProperty("previous_token_valid_until").GetDateTime();
            Assert.InRange(until, DateTime.UtcNow.AddSeconds(30), DateTime.UtcNow.AddSeconds(90));
        }

        Assert.NotEqual(old, node.Token);
        using (var withOld = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", token: old))
        {
            Assert.Equal(HttpStatusCode.OK, withOld.StatusCode);
        }

        using var withNew = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, withNew.StatusCode);
    }

    [Fact]
    public async Task Rotation_needs_the_node_key()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var body = "{}"u8.ToArray();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/rotate-token") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in NodeKeyProof.SignHeaders(NodeKeyProof.NewKey(), node.NodeId, "POST", "/v1/nodes/rotate-token", body, node.NextTs()))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await Api.SendAsync(request);
        await Json.AssertProblemAsync(response, 401, "bad-proof");
        using var hb = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
    }

    [Fact]
    public async Task A_replayed_key_proof_is_refused()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var ts = node.NextTs();
        using (var first = await node.ReRegisterAsync(ts: ts))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var token = node.Token;
        using (var replay = await node.ReRegisterAsync(ts: ts))
        {
            await Json.AssertProblemAsync(replay, 401, "replayed");
        }

        Assert.Equal(token, node.Token);
        using var hb = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
    }

    [Fact]
    public async Task An_admin_reset_forgets_the_key_and_the_node_enrolls_again_with_a_join_token()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using (var reset = await Api.SendAsync(Admin(Post($"/v1/admin/nodes/{node.NodeId}/reset-key", new { }))))
        {
            Assert.Equal(HttpStatusCode.NoContent, reset.StatusCode);
        }

        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, hb.StatusCode);
        }

        using (var byKey = await node.ReRegisterAsync())
        {
            await Json.AssertProblemAsync(byKey, 401, "join-token-required");
        }

        var again = await TestNode.RegisterAsync(Api, node.NodeId);
        again.ContinueClockOf(node);
        using var ok = await again.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(again.PublicKey, await fx.ScalarAsync<string>("SELECT public_key FROM nodes WHERE id = $1", node.NodeId));

        using var missing = await Api.SendAsync(Admin(Post("/v1/admin/nodes/no-such-node/reset-key", new { })));
        await Json.AssertProblemAsync(missing, 404, "not-found");
    }

    [Theory]
    [InlineData("{\"note\":\"a\\u0000b\"}", "payload.note")]
    [InlineData("{\"deep\":{\"list\":[1,\"\\u0000\"]}}", "payload.deep.list[1]")]
    public async Task A_receipt_payload_with_a_NUL_is_422_naming_the_field(string payload, string field)
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var id = "nul-" + Guid.NewGuid().ToString("N");
        using var response = await node.SendSignedAsync("/v1/receipts", $"{{\"id\":\"{id}\",\"node_id\":\"{node.NodeId}\",\"region\":\"eu\",\"model_id\":\"m\",\"payload\":{payload}}}");
        var problem = await Json.AssertProblemAsync(response, 422, "validation-failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM receipts WHERE id = $1", id));
    }

    [Fact]
    public async Task A_wallet_with_a_NUL_is_422_not_500()
    {
        using var response = await Api.SendAsync(WithBearer(Post("/v1/nodes/register", new { node_id = ApiFixture.NewNodeId(), region = "eu", runtime = "ollama", wallet_address = "0x\u0000" }), await TestNode.SharedJoinTokenAsync(Api)));
        var problem = await Json.AssertProblemAsync(response, 422, "validation-failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("wallet_address", out _), problem.ToString());
    }

    private async Task AssertRefusedAsync(string joinToken, int status, string slug)
    {
        var id = ApiFixture.NewNodeId("refused");
        using var response = await Api.SendAsync(WithBearer(Post("/v1/nodes/register", new { node_id = id, region = "ap-southeast", runtime = "ollama" }), joinToken));
        await Json.AssertProblemAsync(response, status, slug);
        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE id = $1", id));
    }

    private static string StoredHash(string token) => JoinTokens.HashSecret(token[7..]);

    private async Task<string> RowAsync(string id) => await fx.ScalarAsync<string>(
        "SELECT concat_ws('|', status, region, wallet_address, public_key, updated_at::text, (SELECT encode(ciphertext, 'hex') FROM node_secrets WHERE node_id = n.id)) FROM nodes n WHERE id = $1", id);

    internal static HttpRequestMessage Post(string path, object body) => new(HttpMethod.Post, path) { Content = JsonContent.Create(body) };

    internal static HttpRequestMessage WithBearer(HttpRequestMessage request, string bearer)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return request;
    }

    internal static HttpRequestMessage Admin(HttpRequestMessage request) => WithBearer(request, ApiHost.AdminToken);
}
