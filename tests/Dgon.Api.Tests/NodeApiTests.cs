using System.Net;
using System.Net.Http.Json;
using System.Text;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>Seed 000 acceptance tests and the issue's negative cases for register and heartbeat.</summary>
public sealed class NodeApiTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    private HttpClient Api => fx.Client;

    [Fact]
    public async Task Register_returns_a_256_bit_token_and_the_node_is_pending()
    {
        var id = ApiFixture.NewNodeId();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/register") { Content = JsonContent.Create(new { node_id = id, region = "ap-southeast", runtime = "ollama" }) };
        request.Headers.Authorization = new("Bearer", await TestNode.SharedJoinTokenAsync(Api));
        using var response = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        var body = await Json.ReadAsync(response);
        Assert.Equal("registered", body.GetProperty("status").GetString());
        Assert.Equal(id, body.GetProperty("node_id").GetString());
        Assert.Matches("^[0-9a-f]{64}$", body.GetProperty("node_token").GetString());

        var node = await GetNodeAsync(id);
        Assert.Equal("pending", node.GetProperty("status").GetString());
        Assert.Equal(60, node.GetProperty("reputation").GetDouble());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, node.GetProperty("last_heartbeat").ValueKind);
    }

    [Fact]
    public async Task Heartbeat_turns_the_node_active_once_ready_and_records_metrics()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());

        using (var notReady = await node.HeartbeatAsync(ready: false))
        {
            Assert.Equal(HttpStatusCode.OK, notReady.StatusCode);
            Assert.Equal("pending", (await Json.ReadAsync(notReady)).GetProperty("status").GetString());
        }

        var before = DateTime.UtcNow;
        using (var ready = await node.HeartbeatAsync(ready: true, gpuUtil: 0.4, memUsedGb: 6, p95Ms: 320))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal("active", (await Json.ReadAsync(ready)).GetProperty("status").GetString());
        }

        var row = await GetNodeAsync(node.NodeId);
        Assert.Equal("active", row.GetProperty("status").GetString());
        Assert.Equal(0.4, row.GetProperty("gpu_util").GetDouble());
        Assert.Equal(6, row.GetProperty("mem_used_gb").GetDouble());
        Assert.Equal(320, row.GetProperty("p95_ms").GetDouble());
        var lastHeartbeat = row.GetProperty("last_heartbeat").GetString()!;
        Assert.EndsWith("Z", lastHeartbeat, StringComparison.Ordinal);
        Assert.InRange(DateTime.Parse(lastHeartbeat, null, System.Globalization.DateTimeStyles.AdjustToUniversal), before.AddSeconds(-5), DateTime.UtcNow.AddSeconds(5));

        using var back = await node.HeartbeatAsync(ready: false);
        Assert.Equal("pending", (await Json.ReadAsync(back)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_changed_secret_gets_401()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using var response = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", token: node.Token[..^1] + (node.Token[^1] == '0' ? '1' : '0'));
        await Json.AssertProblemAsync(response, 401, "bad-signature");
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "DGON-HMAC");
        Assert.Equal("pending", (await GetNodeAsync(node.NodeId)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Re_registering_with_the_node_key_issues_a_fresh_token_and_revokes_the_old_one()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var oldToken = node.Token;
        using (var again = await node.ReRegisterAsync(region: "eu-west"))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.NotEqual(oldToken, node.Token);
        using var old = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", token: oldToken);
        await Json.AssertProblemAsync(old, 401, "bad-signature");
        using var fresh = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal("eu-west", (await GetNodeAsync(node.NodeId)).GetProperty("region").GetString());
    }

    [Theory]
    [InlineData("X-Node-Id")]
    [InlineData("X-Node-Ts")]
    [InlineData("X-Node-Auth")]
    public async Task A_missing_auth_header_gets_401(string omitted)
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var body = Encoding.UTF8.GetBytes("{\"ready\":true}");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/heartbeat") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in Domain.Auth.NodeAuth.SignHeaders(node.NodeId, node.Token, body, DateTimeOffset.UtcNow).Where(h => h.Key != omitted))
        {
            request.Headers.Add(name, value);
        }

        using var response = await Api.SendAsync(request);
        await Json.AssertProblemAsync(response, 401, "missing-auth-headers");
    }

    [Fact]
    public async Task An_unknown_node_gets_401()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using var response = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", nodeIdHeader: ApiFixture.NewNodeId("ghost"));
        await Json.AssertProblemAsync(response, 401, "unknown-node");
    }

    [Fact]
    public async Task A_non_numeric_timestamp_gets_401()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/heartbeat") { Content = new StringContent("{\"ready\":true}", Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Node-Id", node.NodeId);
        request.Headers.Add("X-Node-Ts", "yesterday");
        request.Headers.Add("X-Node-Auth", new string('0', 64));
        using var response = await Api.SendAsync(request);
        await Json.AssertProblemAsync(response, 401, "invalid-timestamp");
    }

    [Theory]
    [InlineData("{\"ready\":tru", 400, "malformed-json", null)]
    [InlineData("", 400, "malformed-json", null)]
    [InlineData("{\"ready\":\"yes\"}", 422, "validation-failed", "ready")]
    [InlineData("{\"ready\":true,\"gpu_util\":\"0.4\"}", 422, "validation-failed", "gpu_util")]
    [InlineData("{\"gpu_util\":0.4}", 422, "validation-failed", "ready")]
    [InlineData("{\"ready\":true,\"gpu_util\":40}", 422, "validation-failed", "gpu_util")]
    [InlineData("[true]", 422, "validation-failed", "$")]
    public async Task A_bad_heartbeat_body_is_a_4xx_problem_naming_the_field(string body, int status, string type, string? field)
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using var response = await node.SendSignedAsync("/v1/nodes/heartbeat", body);
        var problem = await Json.AssertProblemAsync(response, status, type);
        if (field is not null)
        {
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        }

        Assert.Equal("pending", (await GetNodeAsync(node.NodeId)).GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("{\"node_id\":\"MacBook_1\",\"region\":\"ap-southeast\",\"runtime\":\"ollama\"}", "node_id")]
    [InlineData("{\"node_id\":\"ok-1\",\"region\":\"ap-southeast\",\"runtime\":\"llamacpp\"}", "runtime")]
    [InlineData("{\"node_id\":\"ok-1\",\"runtime\":\"ollama\"}", "region")]
    [InlineData("{\"node_id\":\"ok-1\",\"region\":\"ap-southeast\",\"runtime\":\"ollama\",\"green_energy\":\"yes\"}", "green_energy")]
    [InlineData("{\"node_id\":42,\"region\":\"ap-southeast\",\"runtime\":\"ollama\"}", "node_id")]
    public async Task A_bad_registration_is_422_naming_the_field_and_writes_nothing(string body, string field)
    {
        using var response = await Api.PostAsync("/v1/nodes/register", new StringContent(body, Encoding.UTF8, "application/json"));
        var problem = await Json.AssertProblemAsync(response, 422, "validation-failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE id = 'ok-1'"));
    }

    [Fact]
    public async Task The_node_id_limit_is_63_characters()
    {
        var node = await TestNode.RegisterAsync(Api, new string('a', 63), region: "eu", runtime: "vllm");
        Assert.Equal(63, node.NodeId.Length);
        using var tooLong = await Api.PostAsJsonAsync("/v1/nodes/register", new { node_id = new string('b', 64), region = "eu", runtime = "vllm" });
        await Json.AssertProblemAsync(tooLong, 422, "validation-failed");
    }

    [Fact]
    public async Task A_body_over_64_KiB_is_413_and_writes_nothing()
    {
        var id = ApiFixture.NewNodeId();
        var huge = $"{{\"node_id\":\"{id}\",\"region\":\"eu\",\"runtime\":\"ollama\",\"asn_hint\":\"{new string('x', 70_000)}\"}}";
        using var response = await Api.PostAsync("/v1/nodes/register", new StringContent(huge, Encoding.UTF8, "application/json"));
        await Json.AssertProblemAsync(response, 413, "payload-too-large");
        Assert.True(response.Headers.ConnectionClose, "a 413 that leaves the body unread must close the connection");
        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE id = $1", id));

        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using var heartbeat = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true,\"pad\":\"" + new string('y', 70_000) + "\"}");
        await Json.AssertProblemAsync(heartbeat, 413, "payload-too-large");
    }

    [Fact]
    public async Task A_chunked_body_over_64_KiB_is_413()
    {
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("{\"pad\":\"" + new string('z', 80_000) + "\"}")));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/register") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await Api.SendAsync(request);
        await Json.AssertProblemAsync(response, 413, "payload-too-large");
    }

    [Fact]
    public async Task A_non_json_content_type_is_415()
    {
        using var response = await Api.PostAsync("/v1/nodes/register", new StringContent("node_id=a", Encoding.UTF8, "application/x-www-form-urlencoded"));
        await Json.AssertProblemAsync(response, 415, "unsupported-media-type");
    }

    [Theory]
    [InlineData("/v1/nodes/register")]
    [InlineData("/v1/nodes/heartbeat")]
    [InlineData("/v1/receipts")]
    [InlineData("/v1/nodes/rotate-token")]
    public async Task A_post_without_content_type_is_415_and_writes_nothing(string path)
    {
        // No Content-Type makes a "simple" cross-site request that needs no CORS preflight (issue 9).
        var id = ApiFixture.NewNodeId("nocontent");
        var joinToken = await TestNode.SharedJoinTokenAsync(Api);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes($"{{\"node_id\":\"{id}\",\"region\":\"eu\",\"runtime\":\"ollama\"}}"));
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.Authorization = new("Bearer", joinToken);
        using var response = await Api.SendAsync(request);
        await Json.AssertProblemAsync(response, 415, "unsupported-media-type");
        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE id = $1", id));
    }

    [Fact]
    public async Task Concurrent_first_registrations_of_one_id_with_different_keys_enroll_exactly_one()
    {
        var id = ApiFixture.NewNodeId();
        var joinToken = await TestNode.SharedJoinTokenAsync(Api);
        var keys = Enumerable.Range(0, 8).Select(_ => Domain.Auth.NodeKeyProof.PublicKeyText(Domain.Auth.NodeKeyProof.NewKey())).ToList();
        var responses = await Task.WhenAll(keys.Select(key =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/register")
            {
                Content = JsonContent.Create(new { node_id = id, region = "eu", runtime = "tgi", public_key = key }),
            };
            request.Headers.Authorization = new("Bearer", joinToken);
            return Api.SendAsync(request);
        }));
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.OK), r => Assert.Equal(HttpStatusCode.Conflict, r.StatusCode));
        Assert.Equal(1L, await fx.ScalarAsync<long>("SELECT count(*) FROM nodes WHERE id = $1", id));
        Assert.Equal(1L, await fx.ScalarAsync<long>("SELECT count(*) FROM node_secrets WHERE node_id = $1", id));
        var winner = keys[Array.FindIndex(responses, r => r.StatusCode == HttpStatusCode.OK)];
        Assert.Equal(winner, await fx.ScalarAsync<string>("SELECT public_key FROM nodes WHERE id = $1", id));
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task A_silent_node_goes_offline_after_the_grace_period_and_comes_back()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        // Grace is 3 s in this fixture; allow generous slack for a loaded machine.
        await Eventually.Until(
            async () => (await GetNodeAsync(node.NodeId)).GetProperty("status").GetString() == "offline",
            TimeSpan.FromSeconds(30),
            "node to go offline");

        using var back = await node.HeartbeatAsync(ready: true);
        Assert.Equal("active", (await Json.ReadAsync(back)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Node_secrets_are_encrypted_at_rest_and_never_logged()
    {
        var node = await TestNode.RegisterAsync(Api, ApiFixture.NewNodeId());
        var stored = await fx.ScalarAsync<byte[]>("SELECT ciphertext FROM node_secrets WHERE node_id = $1", node.NodeId);
        var tokenBytes = Encoding.UTF8.GetBytes(node.Token);
        Assert.True(stored.Length > tokenBytes.Length, "ciphertext carries a nonce and tag");
        Assert.Equal(-1, stored.AsSpan().IndexOf(tokenBytes));
        Assert.Equal(-1, stored.AsSpan().IndexOf(Convert.FromHexString(node.Token)));
        Assert.DoesNotContain(fx.Api.Output, line => line.Contains(node.Token, StringComparison.Ordinal));
    }

    private async Task<System.Text.Json.JsonElement> GetNodeAsync(string id)
    {
        // ids here are unique random strings; page through everything to find it.
        string? url = "/v1/nodes?limit=1000";
        while (url is not null)
        {
            using var response = await fx.Admin.GetAsync(url);
            response.EnsureSuccessStatusCode();
            foreach (var n in (await Json.ReadAsync(response)).EnumerateArray())
            {
                if (n.GetProperty("id").GetString() == id)
                {
                    return n;
                }
            }

            url = NextLink(response);
        }

        throw new Xunit.Sdk.XunitException($"node {id} not listed");
    }

    internal static string? NextLink(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Link", out var links)
            ? links.Select(l => System.Text.RegularExpressions.Regex.Match(l, "<([^>]+)>;\\s*rel=\"next\"")).FirstOrDefault(m => m.Success)?.Groups[1].Value
            : null;
}

/// <summary>
/// Seed 000's timestamp window, exactly and without wall-clock dependence: the API's <see cref="TimeProvider"/> is a
/// <see cref="FakeTimeProvider"/> that stands still, and it accepts <c>X-Node-Ts</c> within ±120 s of it (heartbeats
/// and key-signed re-registrations alike) and refuses 121 s on either side with 401 <c>stale-timestamp</c>.
/// </summary>
public sealed class ClockSkewTests(ClockSkewTests.Fixture fx) : IClassFixture<ClockSkewTests.Fixture>
{
    [Theory]
    [InlineData(-121, false)]
    [InlineData(-120, true)]
    [InlineData(0, true)]
    [InlineData(120, true)]
    [InlineData(121, false)]
    public async Task A_heartbeat_is_accepted_within_120_s_of_the_API_clock(int skewSeconds, bool accepted)
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, ApiFixture.NewNodeId("skew"));
        using var response = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", now: fx.Clock.GetUtcNow().AddSeconds(skewSeconds));
        await AssertWindowAsync(response, accepted);
    }

    [Theory]
    [InlineData(-121, false)]
    [InlineData(-120, true)]
    [InlineData(120, true)]
    [InlineData(121, false)]
    public async Task A_key_signed_re_registration_is_accepted_within_120_s_of_the_API_clock(int skewSeconds, bool accepted)
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, ApiFixture.NewNodeId("skew"));
        using var response = await node.ReRegisterAsync(ts: fx.Clock.GetUtcNow().AddSeconds(skewSeconds).ToUnixTimeSeconds());
        await AssertWindowAsync(response, accepted);
    }

    private static async Task AssertWindowAsync(HttpResponseMessage response, bool accepted)
    {
        if (accepted)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        else
        {
            await Json.AssertProblemAsync(response, 401, "stale-timestamp");
        }
    }

    /// <summary>One in-process API whose clock is frozen at a whole second (so ±120 s is exact in unix seconds).</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public FakeTimeProvider Clock { get; } = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

        public InProcessApiHost Api { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            var pg = await SharedPostgres.GetAsync();
            Api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await pg.CreateDatabaseAsync() }, Clock);
        }

        public async Task DisposeAsync() => await Api.DisposeAsync();
    }
}
