using System.Net;
using System.Text;
using System.Text.Json;
using Dgon.Testing;
using Npgsql;

namespace Dgon.Api.Tests;

/// <summary>
/// Two API processes on one PostgreSQL with the product's default timings (grace 30 s, write-behind 500 ms), as
/// issue 11 asks: what one replica changes takes effect on the other, the replay rule holds across them, heartbeats
/// are written behind and phase changes through, and a kill -9 loses no phase change it answered.
/// </summary>
public sealed class FleetReplicaFixture : IAsyncLifetime
{
    public PostgresServer Postgres { get; private set; } = null!;

    public string DatabaseUrl { get; private set; } = null!;

    public ApiHost A { get; private set; } = null!;

    public ApiHost B { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Postgres = await SharedPostgres.GetAsync();
        DatabaseUrl = await Postgres.CreateDatabaseAsync();
        A = await StartReplicaAsync();
        B = await StartReplicaAsync();
    }

    public Task<ApiHost> StartReplicaAsync() => ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = DatabaseUrl, GraceSeconds = 30 });

    public async Task DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
    }

    /// <summary>Runs a scalar query against the replicas' database (null for SQL NULL or no row).</summary>
    public async Task<object?> ScalarAsync(string sql, params object[] args)
    {
        await using var conn = new NpgsqlConnection(Postgres.ConnectionStringForUrl(DatabaseUrl));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is DBNull ? null : value;
    }
}

public sealed class FleetReplicaTests(FleetReplicaFixture fx) : IClassFixture<FleetReplicaFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static async Task<string> StatusOfAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("status").GetString()!;
    }

    [Fact]
    public async Task A_node_enrolled_on_one_replica_heartbeats_on_the_other()
    {
        var node = await TestNode.RegisterAsync(fx.A.Client, ApiFixture.NewNodeId("fr"));
        var viaB = node.Via(fx.B.Client);
        await Eventually.Until(async () =>
        {
            using var r = await viaB.HeartbeatAsync(ready: true);
            return r.StatusCode == HttpStatusCode.OK;
        }, Deadline, "replica B accepts the heartbeat of a node enrolled on A");
    }

    [Fact]
    public async Task A_heartbeat_accepted_by_one_replica_is_refused_as_a_replay_by_the_other()
    {
        var node = await TestNode.RegisterAsync(fx.A.Client, ApiFixture.NewNodeId("fr"));
        var body = Encoding.UTF8.GetBytes("{\"ready\":true}");

        // The node's first request at A claims its clock in PostgreSQL: a copy sent to B meets the claimed value.
        var first = node.Sign("/v1/nodes/heartbeat", body, node.NextTs());
        using (var accepted = await node.SendAsync("/v1/nodes/heartbeat", body, first))
        {
            Assert.Equal("active", await StatusOfAsync(accepted));
        }

        await Eventually.Until(async () =>
        {
            using var r = await node.Via(fx.B.Client).SendAsync("/v1/nodes/heartbeat", body, first);
            if (r.StatusCode == HttpStatusCode.OK)
            {
                Assert.Fail("replica B accepted a heartbeat replica A had accepted (first claim)");
            }

            return r.StatusCode == HttpStatusCode.Unauthorized
                && (await r.Content.ReadAsStringAsync()).Contains("replayed", StringComparison.Ordinal);
        }, Deadline, "B refuses the replayed first heartbeat as replayed (once it knows the node)");

        // Later heartbeats are accepted from A's memory; once written behind, a copy sent to B is refused too.
        var ts = node.NextTs() + 1;
        var second = node.Sign("/v1/nodes/heartbeat", body, ts);
        using (var accepted = await node.SendAsync("/v1/nodes/heartbeat", body, second))
        {
            Assert.Equal("active", await StatusOfAsync(accepted));
        }

        await Eventually.Until(async () => await fx.ScalarAsync("SELECT last_ts FROM node_request_clock WHERE node_id = $1", node.NodeId) is long stored && stored >= ts,
            Deadline, "A writes its in-memory request clock behind");
        using var replay = await node.Via(fx.B.Client).SendAsync("/v1/nodes/heartbeat", body, second);
        await Json.AssertProblemAsync(replay, 401, "replayed");
    }

    [Fact]
    public async Task A_key_signed_re_registration_replayed_to_the_other_replica_gets_no_token()
    {
        var node = await TestNode.RegisterAsync(fx.A.Client, ApiFixture.NewNodeId("fr"));
        using (var warm = await node.HeartbeatAsync(ready: true)) // A now holds the node's clock in memory
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        var ts = node.NextTs() + 1;
        using (var first = await node.ReRegisterAsync(ts: ts))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        // The very same request (same body, timestamp and signature) sent to B at once: refused, no token handed out.
        using var replay = await node.Via(fx.B.Client).ReRegisterAsync(ts: ts);
        var problem = await Json.AssertProblemAsync(replay, 401, "replayed");
        Assert.False(problem.TryGetProperty("node_token", out _));
    }

    [Fact]
    public async Task A_key_reset_on_one_replica_stops_the_nodes_heartbeats_on_the_other()
    {
        var node = await TestNode.RegisterAsync(fx.A.Client, ApiFixture.NewNodeId("fr"));
        var viaB = node.Via(fx.B.Client);
        await Eventually.Until(async () =>
        {
            using var r = await viaB.HeartbeatAsync(ready: true);
            return r.StatusCode == HttpStatusCode.OK;
        }, Deadline, "B knows the node");

        using (var reset = await AdminPostAsync(fx.A.Client, $"/v1/admin/nodes/{node.NodeId}/reset-key"))
        {
            Assert.True(reset.IsSuccessStatusCode, await reset.Content.ReadAsStringAsync());
        }

        await Eventually.Until(async () =>
        {
            using var r = await viaB.HeartbeatAsync(ready: true);
            return r.StatusCode == HttpStatusCode.Unauthorized;
        }, Deadline, "B refuses the reset node's heartbeats");
    }

    [Fact]
    public async Task A_token_rotated_on_one_replica_verifies_on_the_other()
    {
        var node = await TestNode.RegisterAsync(fx.A.Client, ApiFixture.NewNodeId("fr"));
        var old = node.Token;
        using (var rotated = await node.RotateTokenAsync())
        {
            Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        }

        Assert.NotEqual(old, node.Token);
        var viaB = node.Via(fx.B.Client);
        await Eventually.Until(async () =>
        {
            using var r = await viaB.HeartbeatAsync(ready: true);
            return r.StatusCode == HttpStatusCode.OK;
        }, Deadline, "B verifies the rotated token");
    }

    [Fact]
    public async Task A_phase_change_is_durable_before_its_response_and_plain_heartbeats_are_written_behind()
    {
        var node = await TestNode.RegisterAsync(fx.A.Client, ApiFixture.NewNodeId("fr"));
        using (var first = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal("active", await StatusOfAsync(first));
        }

        // No waiting: the response reported a phase change, so the row already holds it.
        Assert.Equal("active", await fx.ScalarAsync("SELECT status FROM nodes WHERE id = $1", node.NodeId));

        using (var steady = await node.HeartbeatAsync(ready: true, gpuUtil: 0.42))
        {
            Assert.Equal("active", await StatusOfAsync(steady));
            using var doc = JsonDocument.Parse(await steady.Content.ReadAsStringAsync());
            Assert.Equal(10, doc.RootElement.GetProperty("heartbeat_interval_s").GetInt32());
        }

        await Eventually.Until(async () => await fx.ScalarAsync("SELECT gpu_util FROM nodes WHERE id = $1", node.NodeId) is double gpu && Math.Abs(gpu - 0.42) < 1e-9,
            Deadline, "the steady heartbeat's metrics are written behind");

        // The other replica's summary counts the node as active (phase changes are announced).
        await Eventually.Until(async () =>
        {
            using var r = await fx.B.Admin.GetAsync("/v1/summary");
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            return doc.RootElement.GetProperty("active_nodes").GetInt32() >= 1;
        }, Deadline, "B's summary counts the node");
    }

    [Fact]
    public async Task A_kill_9_loses_no_answered_phase_change_and_a_restart_rebuilds_from_the_store()
    {
        await using var crashing = await fx.StartReplicaAsync();
        var node = await TestNode.RegisterAsync(crashing.Client, ApiFixture.NewNodeId("fr"));
        var body = Encoding.UTF8.GetBytes("{\"ready\":true}");
        using (var activated = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal("active", await StatusOfAsync(activated));
        }

        var ts = node.NextTs() + 1;
        var flushed = node.Sign("/v1/nodes/heartbeat", body, ts);
        using (var steady = await node.SendAsync("/v1/nodes/heartbeat", body, flushed))
        {
            Assert.Equal("active", await StatusOfAsync(steady));
        }

        await Eventually.Until(async () => await fx.ScalarAsync("SELECT last_ts FROM node_request_clock WHERE node_id = $1", node.NodeId) is long stored && stored >= ts,
            Deadline, "the request clock is written behind before the crash");
        crashing.Process.Kill();

        Assert.Equal("active", await fx.ScalarAsync("SELECT status FROM nodes WHERE id = $1", node.NodeId));
        await using var restarted = await ApiHost.StartAsync(crashing.Options with { Port = null });
        var after = node.Via(restarted.Client);
        using (var replay = await after.SendAsync("/v1/nodes/heartbeat", body, flushed))
        {
            await Json.AssertProblemAsync(replay, 401, "replayed");
        }

        using (var next = await after.SendSignedAsync("/v1/nodes/heartbeat", "{\"ready\":true}", DateTimeOffset.FromUnixTimeSeconds(ts + 1)))
        {
            Assert.Equal("active", await StatusOfAsync(next));
        }
    }

    [Fact]
    public async Task A_graceful_stop_writes_the_last_heartbeats_and_exits_0()
    {
        await using var stopping = await fx.StartReplicaAsync();
        var node = await TestNode.RegisterAsync(stopping.Client, ApiFixture.NewNodeId("fr"));
        using (var activated = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal("active", await StatusOfAsync(activated));
        }

        using (var steady = await node.HeartbeatAsync(ready: true, p95Ms: 123))
        {
            Assert.Equal("active", await StatusOfAsync(steady));
        }

        await stopping.StopAsync(); // SIGTERM: the write-behind flushes once more before the process ends
        Assert.Equal(0, stopping.Process.ExitCode);
        Assert.Equal(123.0, await fx.ScalarAsync("SELECT p95_ms FROM nodes WHERE id = $1", node.NodeId));
    }

    private static Task<HttpResponseMessage> AdminPostAsync(HttpClient client, string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new("Bearer", ApiHost.AdminToken);
        return client.SendAsync(request);
    }
}
