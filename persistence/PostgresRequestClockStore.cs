using Dgon.Domain.Ports;
using Npgsql;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="IRequestClockStore"/> on the PostgreSQL table <c>node_request_clock</c> (both modes). A batch of claims is one
/// conditional upsert that also sends <c>NOTIFY</c> on <see cref="PostgresNodeChangeFeed.ClockChannel"/> in the same
/// statement, so the announcement is delivered exactly when the claim commits.
/// </summary>
public sealed class PostgresRequestClockStore(NpgsqlDataSource dataSource) : IRequestClockStore
{
    /// <inheritdoc />
    public async Task<IReadOnlySet<string>> ClaimAsync(IReadOnlyList<ClockClaim> claims, string holder, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claims);
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        if (claims.Count == 0)
        {
            return claimed;
        }

        await using var command = dataSource.CreateCommand($"""
            WITH claimed AS (
                INSERT INTO node_request_clock (node_id, last_ts, holder)
                SELECT v.id, v.ts, $3 FROM unnest($1::text[], $2::bigint[]) AS v(id, ts)
                ON CONFLICT (node_id) DO UPDATE SET last_ts = EXCLUDED.last_ts, holder = EXCLUDED.holder, updated_at = now()
                    WHERE node_request_clock.last_ts < EXCLUDED.last_ts
                RETURNING node_id)
            SELECT node_id, pg_notify('{PostgresNodeChangeFeed.ClockChannel}', node_id || ' ' || $3) FROM claimed
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = claims.Select(c => c.NodeId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = claims.Select(c => c.UnixSeconds).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = holder });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            claimed.Add(reader.GetString(0));
        }

        return claimed;
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
