using System.Net;
using Dgon.Domain.Auth;
using Dgon.Testing;
using Npgsql;

namespace Dgon.Api.Tests;

/// <summary>
/// Issue 9 behaviour that needs an API host of its own (settings, restarts; in-process on real Kestrel): rate limits, the secret key ring,
/// v1 signatures turned off, the rotation overlap ending, abandoned enrollments, the generated admin token.
/// </summary>
public sealed class NodeTrustHostTests
{
    [Fact]
    public async Task A_burst_of_200_registrations_from_one_address_gets_429s_with_Retry_After()
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await pg.CreateDatabaseAsync(), RateLimits = true });
        var joinToken = await api.CreateJoinTokenAsync();
        var started = DateTime.UtcNow;
        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            api.Client.SendAsync(NodeTrustTests.WithBearer(NodeTrustTests.Post("/v1/nodes/register", new { node_id = $"burst-{i}", region = "eu", runtime = "ollama" }), joinToken))));
        var elapsed = DateTime.UtcNow - started;
        var limited = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        var ok = responses.Count(r => r.StatusCode == HttpStatusCode.OK);
        Assert.True(limited.Count >= 150, $"{limited.Count} of 200 got 429 in {elapsed.TotalSeconds:0.0} s; {ok} got 200");
        Assert.InRange(ok, 1, 50);
        await Json.AssertProblemAsync(limited[0], 429, "rate-limited");
        Assert.True(limited[0].Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "429 carries Retry-After in seconds");
        Assert.Equal((long)ok, await ScalarAsync<long>(pg, api, "SELECT count(*) FROM nodes"));
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task An_address_that_keeps_failing_authentication_gets_429_and_the_node_is_untouched()
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await pg.CreateDatabaseAsync(),
            RateLimits = true,
            Environment = new Dictionary<string, string?> { ["DGON_RATE_LIMIT_AUTH_FAILURES"] = "10/1" },
        });
        var node = await TestNode.RegisterAsync(api.Client, "target-1");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 15; i++)
        {
            using var response = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", token: new string('0', 64));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                await Json.AssertProblemAsync(response, 429, "rate-limited");
            }
        }

        Assert.Equal(10, statuses.Count(s => s == HttpStatusCode.Unauthorized));
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.Equal("pending", await ScalarAsync<string>(pg, api, "SELECT status FROM nodes WHERE id = 'target-1'"));

        // The same address (a shared NAT) still gets its valid requests through.
        using var valid = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, valid.StatusCode);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task X_Forwarded_For_counts_only_behind_a_trusted_proxy_and_HSTS_follows_X_Forwarded_Proto(bool trusted)
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await pg.CreateDatabaseAsync(),
            RateLimits = true,
            Environment = new Dictionary<string, string?>
            {
                ["DGON_RATE_LIMIT_REGISTER"] = "2/1",
                ["DGON_TRUSTED_PROXIES"] = trusted ? "127.0.0.1" : "10.0.0.0/8",
                ["DGON_HSTS"] = "true",
            },
        });
        var joinToken = await api.CreateJoinTokenAsync();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            // Six "clients" behind the proxy: each its own address when the proxy is trusted, one address otherwise.
            using var request = NodeTrustTests.WithBearer(NodeTrustTests.Post("/v1/nodes/register", new { node_id = $"xff-{i}", region = "eu", runtime = "ollama" }), joinToken);
            request.Headers.Add("X-Forwarded-For", $"203.0.113.{i + 1}");
            request.Headers.Add("X-Forwarded-Proto", "https");
            request.Headers.Host = "dgon.example.com";
            using var response = await api.Client.SendAsync(request);
            statuses.Add(response.StatusCode);
            Assert.Equal(trusted, response.Headers.Contains("Strict-Transport-Security"));
        }

        Assert.Equal(trusted ? 6 : 2, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(trusted ? 0 : 4, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
    }

    [Fact]
    public async Task The_secret_key_ring_rotates_old_keys_decrypt_and_a_lost_key_means_401_then_re_enrollment_by_key()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        var k1 = NewKey();
        var k2 = NewKey();
        var k3 = NewKey();
        var port = FreePort.Next();
        // One client across the restarts (each ApiHost's own client goes with it).
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        TestNode node;
        await using (var api = await StartWithKeysAsync(url, k1, port))
        {
            node = await TestNode.RegisterAsync(client, "ring-1");
            using var hb = await node.HeartbeatAsync(ready: true);
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var k1Id = await ScalarAsync<string>(pg, url, "SELECT key_id FROM node_secrets WHERE node_id = 'ring-1'");
        await using (var api = await StartWithKeysAsync(url, $"{k2},{k1}", port))
        {
            using var hb = await node.HeartbeatAsync(ready: true);
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var k2Id = await ScalarAsync<string>(pg, url, "SELECT key_id FROM node_secrets WHERE node_id = 'ring-1'");
        Assert.NotEqual(k1Id, k2Id); // re-wrapped under the current key on first use

        await using (var api = await StartWithKeysAsync(url, k2, port))
        {
            using var hb = await node.HeartbeatAsync(ready: true);
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        await using (var api = await StartWithKeysAsync(url, k3, port))
        {
            using (var hb = await node.HeartbeatAsync(ready: true))
            {
                await Json.AssertProblemAsync(hb, 401, "secret-unavailable");
            }

            using (var again = await node.ReRegisterAsync())
            {
                Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            }

            using var ok = await node.HeartbeatAsync(ready: true);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    [Fact]
    public async Task With_v1_signatures_off_only_v2_verifies()
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await pg.CreateDatabaseAsync(),
            Environment = new Dictionary<string, string?> { ["DGON_ACCEPT_V1_SIGNATURES"] = "false" },
        });
        var node = await TestNode.RegisterAsync(api.Client, "v2-only");
        node.Scheme = SignatureScheme.V1;
        using (var v1 = await node.HeartbeatAsync(ready: true))
        {
            await Json.AssertProblemAsync(v1, 401, "bad-signature");
        }

        node.Scheme = SignatureScheme.V2;
        using var v2 = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, v2.StatusCode);
    }

    [Fact]
    public async Task The_previous_token_stops_working_when_the_overlap_ends_and_abandoned_enrollments_are_removed()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = url,
            Environment = new Dictionary<string, string?>
            {
                ["DGON_TOKEN_ROTATION_OVERLAP_SECONDS"] = "1",
                ["DGON_PENDING_NODE_TTL_SECONDS"] = "2",
            },
        });
        var node = await TestNode.RegisterAsync(api.Client, "rotating");
        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode); // it has a heartbeat: never removed as abandoned
        }

        var old = node.Token;
        using (var rotated = await node.RotateTokenAsync())
        {
            Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        }

        await Eventually.Until(
            async () =>
            {
                using var r = await node.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", token: old);
                return r.StatusCode == HttpStatusCode.Unauthorized;
            },
            TimeSpan.FromSeconds(30),
            "the rotated-out token to stop verifying");

        await TestNode.RegisterAsync(api.Client, "abandoned");
        await Eventually.Until(
            async () => await ScalarAsync<long>(pg, url, "SELECT count(*) FROM nodes WHERE id = 'abandoned'") == 0,
            TimeSpan.FromSeconds(30),
            "the abandoned enrollment to be removed");
        Assert.Equal(1L, await ScalarAsync<long>(pg, url, "SELECT count(*) FROM nodes WHERE id = 'rotating'"));
        using var stillOk = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, stillOk.StatusCode);
    }

    [Fact]
    public async Task Without_DGON_ADMIN_TOKEN_one_is_generated_0600_in_the_data_directory_and_kept()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        var dataDir = Path.Combine(Path.GetTempPath(), "dgon-data-" + Guid.NewGuid().ToString("N"));
        var env = new Dictionary<string, string?> { ["DGON_ADMIN_TOKEN"] = null, ["DGON_DATA_DIR"] = dataDir };
        try
        {
            string token;
            await using (var api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, Environment = env }))
            {
                var path = Path.Combine(dataDir, "admin-token");
                Assert.True(File.Exists(path), api.Dump());
                Assert.True(!OperatingSystem.IsWindows() && File.GetUnixFileMode(path) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), "admin-token is 0600");
                token = (await File.ReadAllTextAsync(path)).Trim();
                Assert.True(token.Length >= 32);
                Assert.DoesNotContain(api.Output, l => l.Contains(token, StringComparison.Ordinal));
                using var request = NodeTrustTests.WithBearer(new HttpRequestMessage(HttpMethod.Get, "/v1/admin/join-tokens"), token);
                using var response = await api.Client.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            await using (var api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, Environment = env }))
            {
                Assert.Equal(token, (await File.ReadAllTextAsync(Path.Combine(dataDir, "admin-token"))).Trim());
                using var request = NodeTrustTests.WithBearer(new HttpRequestMessage(HttpMethod.Get, "/v1/admin/join-tokens"), ApiHost.AdminToken);
                using var wrong = await api.Client.SendAsync(request);
                Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static string NewKey() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static Task<InProcessApiHost> StartWithKeysAsync(string url, string keys, int? port) =>
        InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, Port = port, Environment = new Dictionary<string, string?> { ["DGON_SECRET_KEY"] = keys } });

    private static Task<T> ScalarAsync<T>(PostgresServer pg, InProcessApiHost api, string sql) => ScalarAsync<T>(pg, api.Options.DatabaseUrl, sql);

    private static async Task<T> ScalarAsync<T>(PostgresServer pg, string url, string sql)
    {
        await using var conn = new NpgsqlConnection(pg.ConnectionStringForUrl(url));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}
