using Dgon.Domain.Ports;
using Npgsql;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="IRequestClockStore"/> on the PostgreSQL table <c>node_request_clock</c> (both modes). A claim is one
/// conditional upsert that also sends <c>NOTIFY</c> on <see cref="PostgresNodeChangeFeed.ClockChannel"/> in the same
/// statement, so the announcement is delivered exactly when the claim commits.
/// </summary>
public sealed class PostgresRequestClockStore(NpgsqlDataSource dataSource) : IRequestClockStore
{
    /// <inheritdoc />
    public async Task<bool> ClaimAsync(string nodeId, long unixSeconds, string holder, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"""
            WITH claimed AS (
                INSERT INTO node_request_clock (node_id, last_ts, holder) VALUES ($1, $2, $3)
                ON CONFLICT (node_id) DO UPDATE SET last_ts = EXCLUDED.last_ts, holder = EXCLUDED.holder, updated_at = now()
                    WHERE node_request_clock.last_ts < EXCLUDED.last_ts
                RETURNING node_id)
            SELECT pg_notify('{PostgresNodeChangeFeed.ClockChannel}', node_id || ' ' || $3) FROM claimed
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
        command.Parameters.Add(new NpgsqlParameter { Value = unixSeconds });
        command.Parameters.Add(new NpgsqlParameter { Value = holder });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task AdvanceAsync(IReadOnlyList<string> nodeIds, IReadOnlyList<long> unixSeconds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodeIds);
        ArgumentNullException.ThrowIfNull(unixSeconds);
        if (nodeIds.Count == 0)
        {
            return;
        }

        await using var command = dataSource.CreateCommand("""
            UPDATE node_request_clock c SET last_ts = v.ts, updated_at = now()
            FROM unnest($1::text[], $2::bigint[]) AS v(id, ts)
            WHERE c.node_id = v.id AND c.last_ts < v.ts
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = nodeIds.ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = unixSeconds.ToArray() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
