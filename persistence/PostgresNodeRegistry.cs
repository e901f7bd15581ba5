using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="INodeRegistry"/> on PostgreSQL (standalone mode). Every state change runs in a transaction that locks
/// the node's row (<c>SELECT … FOR UPDATE</c>) and applies <see cref="NodeLifecycle"/> to the locked state, so a
/// heartbeat and the timeout sweep cannot overwrite each other.
/// </summary>
public sealed partial class PostgresNodeRegistry(DgonDbContext db, NodeLifecycle lifecycle, NodeSecretProtector protector, ILogger<PostgresNodeRegistry> logger)
    : INodeRegistry, INodeLifecycleSweep
{
    private const int SweepBatchSize = 500;

    /// <inheritdoc />
    public async Task<NodeRecord> RegisterAsync(NodeRegistration registration, string nodeToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await RegisterOnceAsync(registration, nodeToken, cancellationToken);
            }
            catch (DbUpdateException e) when (attempt < 3 && e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
            {
                // Two first registrations of one id raced; the loser retries as an update.
                db.ChangeTracker.Clear();
            }
        }
    }

    private async Task<NodeRecord> RegisterOnceAsync(NodeRegistration registration, string nodeToken, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var now = lifecycle.Now.UtcDateTime;
        var node = await LockAsync(registration.NodeId, ct);
        if (node is null)
        {
            node = new NodeEntity
            {
                Id = registration.NodeId,
                Region = registration.Region,
                Runtime = registration.Runtime.ToWire(),
                Status = NodePhase.Pending.ToWire(),
                Reputation = NodeRecord.DefaultReputation,
                CreatedAt = now,
            };
            db.Nodes.Add(node);
        }

        var phase = ParsePhase(node.Status);
        node.Status = lifecycle.Apply(new NodeLifecycleState(phase, node.LastSeenAt), new NodeEvent.Registered()).Phase.ToWire();
        node.Region = registration.Region;
        node.Runtime = registration.Runtime.ToWire();
        node.AsnHint = registration.AsnHint;
        node.WalletAddress = registration.WalletAddress;
        node.GreenEnergy = registration.GreenEnergy;
        node.Ready = false;
        node.RegisteredAt = now;
        node.LastSeenAt = now;
        node.UpdatedAt = now;

        var secret = await db.NodeSecrets.FindAsync([registration.NodeId], ct);
        var ciphertext = protector.Protect(registration.NodeId, nodeToken);
        if (secret is null)
        {
            db.NodeSecrets.Add(new NodeSecretEntity { NodeId = registration.NodeId, Ciphertext = ciphertext, KeyId = protector.KeyId, CreatedAt = now });
        }
        else
        {
            secret.Ciphertext = ciphertext;
            secret.KeyId = protector.KeyId;
            secret.CreatedAt = now;
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return ToRecord(node);
    }

    /// <inheritdoc />
    /// <exception cref="System.Security.Cryptography.CryptographicException">The stored secret was encrypted with another DGON_SECRET_KEY.</exception>
    public async Task<string?> GetTokenAsync(string nodeId, CancellationToken cancellationToken)
    {
        var secret = await db.NodeSecrets.AsNoTracking().SingleOrDefaultAsync(s => s.NodeId == nodeId, cancellationToken);
        if (secret is null)
        {
            return null;
        }

        if (secret.KeyId != protector.KeyId)
        {
            throw new System.Security.Cryptography.CryptographicException(
                $"node secret of '{nodeId}' was encrypted with key {secret.KeyId}, but DGON_SECRET_KEY is key {protector.KeyId}");
        }

        return protector.Unprotect(nodeId, secret.Ciphertext);
    }

    /// <inheritdoc />
    public async Task<PhaseChange?> RecordHeartbeatAsync(string nodeId, NodeHeartbeat heartbeat, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var node = await LockAsync(nodeId, cancellationToken);
        if (node is null)
        {
            return null;
        }

        var now = lifecycle.Now.UtcDateTime;
        var from = ParsePhase(node.Status);
        var transition = lifecycle.Apply(new NodeLifecycleState(from, node.LastSeenAt), new NodeEvent.HeartbeatReceived(heartbeat.Ready));
        node.Status = transition.Phase.ToWire();
        node.Ready = heartbeat.Ready;
        node.GpuUtil = heartbeat.Metrics.GpuUtil;
        node.MemUsedGb = heartbeat.Metrics.MemUsedGb;
        node.P95Ms = heartbeat.Metrics.P95Ms;
        node.LastHeartbeat = now;
        node.LastSeenAt = now;
        node.UpdatedAt = now;
        await db.SaveChangesAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return new PhaseChange(nodeId, from, transition.Phase, transition.Reason);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<PhaseChange>> ExpireOverdueAsync(CancellationToken cancellationToken)
    {
        var cutoff = (lifecycle.Now - lifecycle.Timeout).UtcDateTime;
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        // SKIP LOCKED: a row being written by a heartbeat right now is not overdue anyway; other replicas skip ours.
        var overdue = await db.Nodes
            .FromSql($"""
                SELECT * FROM nodes
                WHERE status IN ('pending', 'active') AND last_seen_at < {cutoff}
                ORDER BY last_seen_at LIMIT {SweepBatchSize}
                FOR UPDATE SKIP LOCKED
                """)
            .ToListAsync(cancellationToken);
        var changes = new List<PhaseChange>();
        foreach (var node in overdue)
        {
            var from = ParsePhase(node.Status);
            var transition = lifecycle.Apply(new NodeLifecycleState(from, node.LastSeenAt), new NodeEvent.TimePassed());
            if (transition.Changed)
            {
                node.Status = transition.Phase.ToWire();
                node.Ready = false;
                node.UpdatedAt = lifecycle.Now.UtcDateTime;
                changes.Add(new PhaseChange(node.Id, from, transition.Phase, transition.Reason));
            }
        }

        await db.SaveChangesAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        db.ChangeTracker.Clear();
        return changes;
    }

    /// <inheritdoc />
    public async Task<DateTimeOffset?> NextOfflineDeadlineAsync(CancellationToken cancellationToken)
    {
        var live = new[] { NodePhase.Pending.ToWire(), NodePhase.Active.ToWire() };
        var earliest = await db.Nodes.AsNoTracking()
            .Where(n => live.Contains(n.Status))
            .OrderBy(n => n.LastSeenAt)
            .Select(n => (DateTime?)n.LastSeenAt)
            .FirstOrDefaultAsync(cancellationToken);
        return earliest is { } seen ? new DateTimeOffset(DateTime.SpecifyKind(seen, DateTimeKind.Utc)) + lifecycle.Timeout : null;
    }

    /// <inheritdoc />
    /// <remarks>Standalone mode has no operator to quarantine the node: the record is only logged (a warning).</remarks>
    public Task RecordAuthFailuresAsync(string nodeId, AuthFailureRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        LogAuthFailures(nodeId, record.Count, record.FirstFailureTime, record.LastReason);
        return Task.CompletedTask;
    }

    private Task<NodeEntity?> LockAsync(string nodeId, CancellationToken ct) =>
        db.Nodes.FromSql($"SELECT * FROM nodes WHERE id = {nodeId} FOR UPDATE").SingleOrDefaultAsync(ct);

    internal static NodePhase ParsePhase(string wire) =>
        NodePhases.TryParse(wire, out var phase) ? phase : throw new InvalidOperationException($"nodes.status holds unknown phase '{wire}'");

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));

    internal static NodeRecord ToRecord(NodeEntity n) => new()
    {
        Id = n.Id,
        Region = n.Region,
        Runtime = NodeRuntimes.TryParse(n.Runtime, out var runtime) ? runtime : throw new InvalidOperationException($"nodes.runtime holds unknown runtime '{n.Runtime}'"),
        Phase = ParsePhase(n.Status),
        Reputation = n.Reputation,
        GreenEnergy = n.GreenEnergy,
        AsnHint = n.AsnHint,
        WalletAddress = n.WalletAddress,
        Ready = n.Ready,
        LastHeartbeat = n.LastHeartbeat is { } hb ? Utc(hb) : null,
        Metrics = new NodeMetrics(n.GpuUtil, n.MemUsedGb, n.P95Ms),
        CreatedAt = Utc(n.CreatedAt),
        RegisteredAt = Utc(n.RegisteredAt),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId}: {Count} HMAC failures since {Since:o} (last: {Reason}); standalone mode does not quarantine")]
    private partial void LogAuthFailures(string nodeId, int count, DateTimeOffset since, string reason);
}
