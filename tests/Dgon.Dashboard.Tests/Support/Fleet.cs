using Dgon.Testing;
using Npgsql;

namespace Dgon.Dashboard.Tests.Support;

/// <summary>Nodes written straight into the API's <c>nodes</c> table (standalone mode reads it as is): faster than registering each.</summary>
public static class Fleet
{
    /// <summary>Regions the inserted nodes take in turn: node <c>i</c> is in <c>Regions[i % 3]</c>.</summary>
    public static readonly string[] Regions = ["ap-southeast", "eu-west", "us-east"];

    /// <summary>
    /// Inserts <c>node-000001</c> … <c>node-{count:D6}</c> (active, heartbeat a few seconds ago), with one
    /// <c>INSERT … SELECT generate_series</c> that also announces each node on the change feed, as every writer of the
    /// table must (the API keeps the nodes in memory); then waits until <paramref name="api"/>'s summary counts them.
    /// The API must have run its migrations on <paramref name="databaseUrl"/>.
    /// </summary>
    public static async Task InsertAsync(PostgresServer pg, string databaseUrl, int count, HttpClient api)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(pg);
        await using var db = new NpgsqlConnection(pg.ConnectionStringForUrl(databaseUrl));
        await db.OpenAsync();
        await using var insert = new NpgsqlCommand(
            """
            WITH inserted AS (
                INSERT INTO nodes (id, region, runtime, status, ready, last_heartbeat, last_seen_at, registered_at)
                SELECT 'node-' || lpad(i::text, 6, '0'), (@regions)[1 + i % 3], 'ollama', 'active', true, now(), now(), now()
                FROM generate_series(1, @n) AS i
                RETURNING id)
            SELECT count(pg_notify('dgon_node_changed', id)) FROM inserted
            """, db);
        insert.Parameters.AddWithValue("regions", Regions);
        insert.Parameters.AddWithValue("n", count);
        await insert.ExecuteNonQueryAsync();
        await Eventually.Until(async () =>
        {
            using var summary = await api.GetAsync("/v1/summary");
            using var doc = System.Text.Json.JsonDocument.Parse(await summary.Content.ReadAsStringAsync());
            return doc.RootElement.GetProperty("total_nodes").GetInt32() >= count;
        }, TimeSpan.FromSeconds(20), $"the API's node table holds the {count} inserted nodes");
    }

    /// <summary>The id of node <paramref name="i"/>, e.g. <c>node-000051</c>.</summary>
    public static string Id(int i) => $"node-{i:D6}";
}
