using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="INodeStore"/> on the PostgreSQL tables <c>nodes</c> and <c>node_secrets</c> (standalone mode), with raw
/// Npgsql on the shared <see cref="NpgsqlDataSource"/>: the bulk load streams every row once at start-up, and
/// <see cref="WriteHeartbeatsAsync"/> is one <c>UPDATE … FROM unnest(…)</c> per batch.
/// </summary>
public sealed partial class PostgresNodeStore(NpgsqlDataSource dataSource, NodeSecretProtector protector, ILogger<PostgresNodeStore> logger) : INodeStore
{
    private const string SelectNodes = """
        SELECT n.id, n.region, n.runtime, n.status, n.reputation, n.green_energy, n.asn_hint, n.wallet_address,
               n.public_key, n.ready, n.gpu_util, n.mem_used_gb, n.p95_ms, n.last_heartbeat, n.created_at,
               n.registered_at, s.ciphertext, s.key_id, s.previous_ciphertext, s.previous_key_id,
               s.previous_valid_until
        FROM nodes n LEFT JOIN node_secrets s ON s.node_id = n.id
        """;

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredNode> LoadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectNodes + " ORDER BY n.id");
        var rewrap = new List<(string Id, string OldKeyId, string Token)>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var stored = Read(reader);
                if (stored.Token is { } token && reader.GetString(17) is var keyId && keyId != protector.KeyId)
                {
                    rewrap.Add((stored.Node.Id, keyId, token));
                }

                yield return stored;
            }
        }

        foreach (var (id, oldKeyId, token) in rewrap)
        {
            await RewrapAsync(id, oldKeyId, token, cancellationToken);
        }
    }

    // A secret stored under an older key of the ring is re-wrapped under the current key, guarded by its key id so a
    // concurrent registration is never overwritten (the previous token, if any, stays under its own key).
    private async Task RewrapAsync(string nodeId, string oldKeyId, string token, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("UPDATE node_secrets SET ciphertext = $1, key_id = $2 WHERE node_id = $3 AND key_id = $4");
        command.Parameters.Add(new NpgsqlParameter { Value = protector.Protect(nodeId, token) });
        command.Parameters.Add(new NpgsqlParameter { Value = protector.KeyId });
        command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
        command.Parameters.Add(new NpgsqlParameter { Value = oldKeyId });
        if (await command.ExecuteNonQueryAsync(ct) > 0)
        {
            LogRewrapped(nodeId, oldKeyId, protector.KeyId);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredNode>> LoadAsync(IReadOnlyCollection<string> nodeIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodeIds);
        if (nodeIds.Count == 0)
        {
            return [];
        }

        await using var command = dataSource.CreateCommand(SelectNodes + " WHERE n.id = ANY($1)");
        command.Parameters.Add(new NpgsqlParameter { Value = nodeIds.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var nodes = new List<StoredNode>(nodeIds.Count);
        while (await reader.ReadAsync(cancellationToken))
        {
            nodes.Add(Read(reader));
        }

        return nodes;
    }

    /// <inheritdoc />
    /// <remarks>
    /// <c>updated_at</c> is left alone: it records changes of what the node declared or of its phase, not heartbeats.
    /// </remarks>
    public async Task<int> WriteHeartbeatsAsync(IReadOnlyList<HeartbeatObservation> observations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observations);
        if (observations.Count == 0)
        {
            return 0;
        }

        await using var command = dataSource.CreateCommand("""
            UPDATE nodes n SET last_heartbeat = v.at, last_seen_at = v.at, ready = v.ready,
                               gpu_util = v.gpu, mem_used_gb = v.mem, p95_ms = v.p95
            FROM unnest($1::text[], $2::timestamptz[], $3::boolean[], $4::float8[], $5::float8[], $6::float8[])
                 AS v(id, at, ready, gpu, mem, p95)
            WHERE n.id = v.id AND n.last_seen_at <= v.at
            """);
        AddObservationParameters(command, observations);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlySet<string>> WriteThroughAsync(IReadOnlyList<HeartbeatWrite> writes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writes);
        var written = new HashSet<string>(StringComparer.Ordinal);
        if (writes.Count == 0)
        {
            return written;
        }

        // One statement, one commit: the rows whose phase is still the one decided from, and a NOTIFY per changed phase.
        await using var command = dataSource.CreateCommand($"""
            WITH v AS (
                SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::boolean[], $4::float8[], $5::float8[], $6::float8[], $7::text[], $8::text[])
                    AS v(id, at, ready, gpu, mem, p95, from_status, to_status)),
            upd AS (
                UPDATE nodes n SET status = v.to_status, last_heartbeat = v.at, last_seen_at = v.at, ready = v.ready,
                                   gpu_util = v.gpu, mem_used_gb = v.mem, p95_ms = v.p95,
                                   updated_at = CASE WHEN v.from_status <> v.to_status THEN v.at ELSE n.updated_at END
                FROM v WHERE n.id = v.id AND n.status = v.from_status AND n.last_seen_at <= v.at
                RETURNING n.id, v.from_status <> v.to_status AS changed)
            SELECT id, CASE WHEN changed THEN pg_notify('{PostgresNodeChangeFeed.NodeChannel}', id) END FROM upd
            """);
        AddObservationParameters(command, [.. writes.Select(w => w.Observation)]);
        command.Parameters.Add(new NpgsqlParameter { Value = writes.Select(w => w.From.ToWire()).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = writes.Select(w => w.To.ToWire()).ToArray() });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            written.Add(reader.GetString(0));
        }

        return written;
    }

    // $1..$6 of both heartbeat statements: id, at, ready, gpu, mem, p95 as parallel arrays for unnest.
    private static void AddObservationParameters(NpgsqlCommand command, IReadOnlyList<HeartbeatObservation> observations)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = observations.Select(o => o.NodeId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = observations.Select(o => o.At.UtcDateTime).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = observations.Select(o => o.Ready).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = observations.Select(o => o.Metrics.GpuUtil).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = observations.Select(o => o.Metrics.MemUsedGb).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = observations.Select(o => o.Metrics.P95Ms).ToArray() });
    }

    private StoredNode Read(NpgsqlDataReader r)
    {
        var id = r.GetString(0);
        var node = new NodeRecord
        {
            Id = id,
            Region = r.GetString(1),
            Runtime = NodeRuntimes.TryParse(r.GetString(2), out var runtime) ? runtime : throw new InvalidOperationException($"nodes.runtime holds unknown runtime '{r.GetString(2)}'"),
            Phase = PostgresNodeRegistry.ParsePhase(r.GetString(3)),
            Reputation = r.GetDouble(4),
            GreenEnergy = r.GetBoolean(5),
            AsnHint = r.IsDBNull(6) ? null : r.GetString(6),
            WalletAddress = r.IsDBNull(7) ? null : r.GetString(7),
            PublicKey = r.IsDBNull(8) ? null : r.GetString(8),
            Ready = r.GetBoolean(9),
            Metrics = NodeMetricsOf(r.IsDBNull(10) ? null : r.GetDouble(10), r.IsDBNull(11) ? null : r.GetDouble(11), r.IsDBNull(12) ? null : r.GetDouble(12)),
            LastHeartbeat = r.IsDBNull(13) ? null : Utc(r.GetDateTime(13)),
            CreatedAt = Utc(r.GetDateTime(14)),
            RegisteredAt = Utc(r.GetDateTime(15)),
        };
        if (r.IsDBNull(16))
        {
            return new StoredNode(node, null, null, null, SecretUnreadable: false);
        }

        try
        {
            var token = protector.Unprotect(id, r.GetFieldValue<byte[]>(16), r.GetString(17));
            string? previous = null;
            DateTimeOffset? until = null;
            if (!r.IsDBNull(18) && !r.IsDBNull(19) && !r.IsDBNull(20))
            {
                previous = protector.Unprotect(id, r.GetFieldValue<byte[]>(18), r.GetString(19));
                until = Utc(r.GetDateTime(20));
            }

            return new StoredNode(node, token, previous, until, SecretUnreadable: false);
        }
        catch (CryptographicException e)
        {
            LogSecretUnreadable(id, r.GetString(17), e.Message);
            return new StoredNode(node, null, null, null, SecretUnreadable: true);
        }
    }

    private static NodeMetrics NodeMetricsOf(double? gpu, double? mem, double? p95) =>
        gpu is null && mem is null && p95 is null ? NodeMetrics.None : new NodeMetrics(gpu, mem, p95);

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId}: secret re-wrapped from key {OldKeyId} to {NewKeyId}")]
    private partial void LogRewrapped(string nodeId, string oldKeyId, string newKeyId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId}: its secret (key {KeyId}) cannot be decrypted with DGON_SECRET_KEY ({Error}); it must re-register with its node key")]
    private partial void LogSecretUnreadable(string nodeId, string keyId, string error);
}
