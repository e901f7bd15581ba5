using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="INodeMirror"/> on the PostgreSQL <c>nodes</c> table (Kubernetes mode; the operator is its only writer).
/// Each upsert is one <c>INSERT … ON CONFLICT (id) DO UPDATE</c> statement, so it is atomic and idempotent: replaying
/// an informer event writes the same row again.
/// </summary>
public sealed class PostgresNodeMirror(DgonDbContext db) : INodeMirror
{
    /// <inheritdoc />
    public async Task UpsertAsync(NodeRecord node, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        var lastHeartbeat = node.LastHeartbeat?.UtcDateTime;
        var registeredAt = node.RegisteredAt.UtcDateTime;
        var lastSeen = lastHeartbeat is { } hb && hb > registeredAt ? hb : registeredAt;
        var createdAt = node.CreatedAt.UtcDateTime;
        await db.Database.ExecuteSqlAsync(
            $"""
            INSERT INTO nodes (id, region, runtime, status, reputation, green_energy, asn_hint, wallet_address, public_key, owner_id, ready,
                               gpu_util, mem_used_gb, p95_ms, last_heartbeat, last_seen_at, registered_at, created_at, updated_at)
            VALUES ({node.Id}, {node.Region}, {node.Runtime.ToWire()}, {node.Phase.ToWire()}, {node.Reputation}, {node.GreenEnergy},
                    {node.AsnHint}, {node.WalletAddress}, {node.PublicKey}, {node.OwnerId}, {node.Ready}, {node.Metrics.GpuUtil}, {node.Metrics.MemUsedGb},
                    {node.Metrics.P95Ms}, {lastHeartbeat}, {lastSeen}, {registeredAt}, {createdAt}, now())
            ON CONFLICT (id) DO UPDATE SET
                region = EXCLUDED.region, runtime = EXCLUDED.runtime, status = EXCLUDED.status,
                reputation = EXCLUDED.reputation, green_energy = EXCLUDED.green_energy, asn_hint = EXCLUDED.asn_hint,
                wallet_address = EXCLUDED.wallet_address, public_key = EXCLUDED.public_key, owner_id = EXCLUDED.owner_id, ready = EXCLUDED.ready, gpu_util = EXCLUDED.gpu_util,
                mem_used_gb = EXCLUDED.mem_used_gb, p95_ms = EXCLUDED.p95_ms, last_heartbeat = EXCLUDED.last_heartbeat,
                last_seen_at = EXCLUDED.last_seen_at, registered_at = EXCLUDED.registered_at,
                created_at = EXCLUDED.created_at, updated_at = now()
            """,
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string nodeId, CancellationToken cancellationToken)
    {
        // node_secrets rows (standalone leftovers) go with ON DELETE CASCADE.
        var deleted = await db.Database.ExecuteSqlAsync($"DELETE FROM nodes WHERE id = {nodeId}", cancellationToken);
        return deleted > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> ListIdsAsync(CancellationToken cancellationToken) =>
        await db.Nodes.AsNoTracking().OrderBy(n => n.Id).Select(n => n.Id).ToListAsync(cancellationToken);
}
