using Npgsql;
using NpgsqlTypes;

namespace Dgon.Persistence;

/// <summary>A node's link as recorded in <c>node_links</c>, with the models of its stored manifest.</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="Replica">Id of the API replica holding the link.</param>
/// <param name="Address">Base URL at which other replicas reach that replica (e.g. <c>http://10.0.0.5:8001</c>).</param>
/// <param name="ManifestJson">The node's latest manifest (snake_case JSON), or null when none is stored.</param>
public sealed record RemoteLink(string NodeId, string Replica, string Address, string? ManifestJson);

/// <summary>
/// The inference tables of migration 0006 (issue 13): <c>node_manifests</c> (latest verified manifest per node) and
/// <c>node_links</c> (which replica holds each node's link). Written by the replica that holds the link; read by the
/// other replicas to forward requests, and by the dashboard.
/// </summary>
public sealed class PostgresInferenceLinks(NpgsqlDataSource dataSource)
{
    /// <summary>How old a <c>node_links</c> row may be before readers ignore it (its replica stopped refreshing it).</summary>
    public static readonly TimeSpan LinkFreshness = TimeSpan.FromSeconds(45);

    /// <summary>Stores <paramref name="manifestJson"/> for the node unless a manifest with a later <c>issued_at</c> is stored.</summary>
    public async Task SaveManifestAsync(string nodeId, string manifestJson, long issuedAt, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO node_manifests (node_id, manifest, issued_at) VALUES ($1, $2, $3)
            ON CONFLICT (node_id) DO UPDATE SET manifest = EXCLUDED.manifest, issued_at = EXCLUDED.issued_at, received_at = now()
                WHERE node_manifests.issued_at <= EXCLUDED.issued_at
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
        command.Parameters.Add(new NpgsqlParameter { Value = manifestJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.Parameters.Add(new NpgsqlParameter { Value = issuedAt });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The stored manifest of a node (JSON), or null.</summary>
    public async Task<string?> GetManifestAsync(string nodeId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT manifest::text FROM node_manifests WHERE node_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>Records that <paramref name="replica"/> (reachable at <paramref name="address"/>) holds the node's link now.</summary>
    public async Task SaveLinkAsync(string nodeId, string replica, string address, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO node_links (node_id, replica, address) VALUES ($1, $2, $3)
            ON CONFLICT (node_id) DO UPDATE SET replica = EXCLUDED.replica, address = EXCLUDED.address, connected_at = now(), refreshed_at = now()
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
        command.Parameters.Add(new NpgsqlParameter { Value = replica });
        command.Parameters.Add(new NpgsqlParameter { Value = address });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Removes the node's link row if <paramref name="replica"/> still holds it (a newer link elsewhere stays).</summary>
    public async Task RemoveLinkAsync(string nodeId, string replica, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM node_links WHERE node_id = $1 AND replica = $2");
        command.Parameters.Add(new NpgsqlParameter { Value = nodeId });
        command.Parameters.Add(new NpgsqlParameter { Value = replica });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Renews <c>refreshed_at</c> of every link <paramref name="replica"/> holds among <paramref name="nodeIds"/>.</summary>
    public async Task RefreshLinksAsync(string replica, IReadOnlyCollection<string> nodeIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodeIds);
        if (nodeIds.Count == 0)
        {
            return;
        }

        await using var command = dataSource.CreateCommand("UPDATE node_links SET refreshed_at = now() WHERE replica = $1 AND node_id = ANY($2)");
        command.Parameters.Add(new NpgsqlParameter { Value = replica });
        command.Parameters.Add(new NpgsqlParameter { Value = nodeIds.ToArray() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Fresh links held by replicas other than <paramref name="replica"/>, with their nodes' manifests.</summary>
    public async Task<IReadOnlyList<RemoteLink>> OtherReplicasLinksAsync(string replica, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT l.node_id, l.replica, l.address, m.manifest::text
            FROM node_links l LEFT JOIN node_manifests m ON m.node_id = l.node_id
            WHERE l.replica <> $1 AND l.refreshed_at > now() - make_interval(secs => $2)
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = replica });
        command.Parameters.Add(new NpgsqlParameter { Value = LinkFreshness.TotalSeconds });
        var links = new List<RemoteLink>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            links.Add(new RemoteLink(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
        }

        return links;
    }
}
