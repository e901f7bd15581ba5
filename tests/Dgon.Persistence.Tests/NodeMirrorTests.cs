using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dgon.Persistence.Tests;

/// <summary>The operator's PostgreSQL mirror against a real PostgreSQL, read back through the API's queries.</summary>
public sealed class NodeMirrorTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
    private string _connectionString = null!;

    public async Task InitializeAsync()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        _connectionString = pg.ConnectionStringForUrl(url);
        await new SqlMigrator(_connectionString, NullLogger<SqlMigrator>.Instance).MigrateAsync(CancellationToken.None);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private DgonDbContext Db() => new(new DbContextOptionsBuilder<DgonDbContext>().UseNpgsql(_connectionString).Options);

    private static NodeRecord Node(string id, NodePhase phase, DateTimeOffset? lastHeartbeat = null) => new()
    {
        Id = id,
        Region = "eu-west",
        Runtime = NodeRuntime.Ollama,
        Phase = phase,
        Ready = phase == NodePhase.Active,
        LastHeartbeat = lastHeartbeat,
        Metrics = new NodeMetrics(0.25, 12.5, null),
        WalletAddress = "0xabc",
        CreatedAt = T0,
        RegisteredAt = T0,
    };

    [Fact]
    public async Task Upsert_inserts_then_updates_and_queries_see_it()
    {
        await using (var db = Db())
        {
            var mirror = new PostgresNodeMirror(db);
            await mirror.UpsertAsync(Node("m1", NodePhase.Pending), CancellationToken.None);
            await mirror.UpsertAsync(Node("m2", NodePhase.Active, T0.AddSeconds(5)), CancellationToken.None);
            await mirror.UpsertAsync(Node("m1", NodePhase.Active, T0.AddSeconds(9)), CancellationToken.None); // update
        }

        await using (var db = Db())
        {
            var queries = new PostgresNodeQueries(db);
            var counts = await queries.CountByPhaseAsync(CancellationToken.None);
            Assert.Equal(2, counts[NodePhase.Active]);
            Assert.Equal(0, counts[NodePhase.Pending]);

            var page = await queries.ListAsync(new NodeListQuery(null, null, 10, null), CancellationToken.None);
            var m1 = Assert.Single(page.Items, n => n.Id == "m1");
            Assert.Equal(T0.AddSeconds(9), m1.LastHeartbeat);
            Assert.Equal(0.25, m1.Metrics.GpuUtil);
            Assert.Null(m1.Metrics.P95Ms);
            Assert.Equal("0xabc", m1.WalletAddress);
            Assert.Equal(T0, m1.CreatedAt);
        }
    }

    [Fact]
    public async Task Delete_removes_the_row_and_list_ids_reflects_it()
    {
        await using var db = Db();
        var mirror = new PostgresNodeMirror(db);
        await mirror.UpsertAsync(Node("d1", NodePhase.Offline), CancellationToken.None);
        await mirror.UpsertAsync(Node("d2", NodePhase.Offline), CancellationToken.None);
        Assert.Equal(["d1", "d2"], await mirror.ListIdsAsync(CancellationToken.None));

        Assert.True(await mirror.DeleteAsync("d1", CancellationToken.None));
        Assert.False(await mirror.DeleteAsync("d1", CancellationToken.None));
        Assert.Equal(["d2"], await mirror.ListIdsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_row_the_schema_refuses_is_not_half_written()
    {
        await using var db = Db();
        var mirror = new PostgresNodeMirror(db);
        var bad = Node("Bad_Id", NodePhase.Pending); // the table's CHECK enforces RFC 1123 ids
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => mirror.UpsertAsync(bad, CancellationToken.None));
        Assert.Empty(await mirror.ListIdsAsync(CancellationToken.None));
    }
}
