using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dgon.Domain.Auth;
using Dgon.Domain.Ports;
using Dgon.Persistence;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Dgon.Fleet;

/// <summary>
/// <c>seed</c>: bench set-up only. Inserts nodes <c>{prefix}-000001</c> … straight into PostgreSQL with binary COPY
/// (<c>nodes</c>, then <c>node_secrets</c>, one transaction) in the state a fresh registration leaves them in
/// (<c>pending</c>, reputation <see cref="NodeRecord.DefaultReputation"/>, not ready, never heartbeated, no public key),
/// each with a token from <see cref="NodeAuth.NewToken"/> encrypted by <see cref="NodeSecretProtector"/> under the
/// same <c>DGON_SECRET_KEY</c> ring the API gets, so the API decrypts them when it loads its node table. Applies the
/// migrations first (<see cref="SqlMigrator"/>), so it runs before the API has ever started. Writes the same
/// <c>id TAB token</c> file as <c>register --out</c>. It bypasses the API's rules (enrollment, preconditions): never a
/// way to register real nodes. Fails (Npgsql <see cref="PostgresException"/>) if an id already exists.
/// </summary>
internal static class SeedCommand
{
    public sealed record Options(string DatabaseUrl, string SecretKey, int Nodes, string OutFile, string Prefix, string Region, string Runtime, int First);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var keys = o.SecretKey.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Convert.FromBase64String).ToArray();
        var protector = new NodeSecretProtector(keys);
        var connectionString = Dgon.Persistence.DatabaseUrl.ToConnectionString(o.DatabaseUrl);
        var clock = Stopwatch.StartNew();
        await new SqlMigrator(connectionString, NullLogger<SqlMigrator>.Instance).MigrateAsync(ct);

        var ids = new string[o.Nodes];
        var tokens = new string[o.Nodes];
        for (var i = 0; i < o.Nodes; i++)
        {
            ids[i] = RegisterCommand.NodeId(o.Prefix, o.First + i);
            tokens[i] = NodeAuth.NewToken();
        }

        var now = DateTime.UtcNow;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var nodes = await connection.BeginBinaryImportAsync(
            "COPY nodes (id, region, runtime, status, reputation, green_energy, ready, last_seen_at, registered_at, created_at, updated_at) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var id in ids)
            {
                await nodes.StartRowAsync(ct);
                await nodes.WriteAsync(id, NpgsqlDbType.Text, ct);
                await nodes.WriteAsync(o.Region, NpgsqlDbType.Text, ct);
                await nodes.WriteAsync(o.Runtime, NpgsqlDbType.Text, ct);
                await nodes.WriteAsync("pending", NpgsqlDbType.Text, ct);
                await nodes.WriteAsync(NodeRecord.DefaultReputation, NpgsqlDbType.Double, ct);
                await nodes.WriteAsync(false, NpgsqlDbType.Boolean, ct);
                await nodes.WriteAsync(false, NpgsqlDbType.Boolean, ct);
                for (var c = 0; c < 4; c++)
                {
                    await nodes.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                }
            }

            await nodes.CompleteAsync(ct);
        }

        await using (var secrets = await connection.BeginBinaryImportAsync(
            "COPY node_secrets (node_id, ciphertext, key_id, created_at) FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var i = 0; i < ids.Length; i++)
            {
                await secrets.StartRowAsync(ct);
                await secrets.WriteAsync(ids[i], NpgsqlDbType.Text, ct);
                await secrets.WriteAsync(protector.Protect(ids[i], tokens[i]), NpgsqlDbType.Bytea, ct);
                await secrets.WriteAsync(protector.KeyId, NpgsqlDbType.Text, ct);
                await secrets.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            }

            await secrets.CompleteAsync(ct);
        }

        await tx.CommitAsync(ct);
        var seconds = clock.Elapsed.TotalSeconds;
        await using (var writer = new StreamWriter(o.OutFile, append: false, new UTF8Encoding(false)))
        {
            for (var i = 0; i < ids.Length; i++)
            {
                await writer.WriteAsync($"{ids[i]}\t{tokens[i]}\n");
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"seed: {o.Nodes} nodes and secrets by binary COPY in {seconds:F1} s = {o.Nodes / seconds:F0} rows/s (set-up only; not a registration rate)"));
        Console.WriteLine($"  tokens written to {o.OutFile}");
        return 0;
    }
}
