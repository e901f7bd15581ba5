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
    : INodeRegistry, INodeLifecycleSweep, INodeAdministration
{
    private const int SweepBatchSize = 500;

    /// <inheritdoc />
    public async Task<RegisterOutcome> RegisterAsync(NodeRegistration registration, string nodeToken, RegistrationPrecondition precondition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentNullException.ThrowIfNull(precondition);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await RegisterOnceAsync(registration, nodeToken, precondition, cancellationToken);
            }
            catch (Exception e) when (attempt < 3 && (e as PostgresException ?? e.InnerException as PostgresException) is { SqlState: PostgresErrorCodes.UniqueViolation })
            {
                // Two first registrations of one id raced; the loser retries as an update (and meets the precondition).
                db.ChangeTracker.Clear();
            }
        }
    }

    // Three round trips in one transaction: the locking read (FOR UPDATE, untracked), one statement that writes the
    // node (INSERT for a new id: a concurrent first registration then fails with a unique violation and retries as an
    // update; UPDATE for a locked row), upserts its secret (clearing a rotation's previous token) and queues the change
    // notification, and COMMIT. Before this it was five (lock, FindAsync on the secret, SaveChanges, pg_notify, COMMIT)
    // plus EF change tracking; the rules (precondition, lifecycle, key choice) are the same and still applied to the
    // locked state (bench/README.md section 4 has the measurement).
    private async Task<RegisterOutcome> RegisterOnceAsync(NodeRegistration registration, string nodeToken, RegistrationPrecondition precondition, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var now = lifecycle.Now.UtcDateTime;
        var id = registration.NodeId;
        var node = await db.Nodes.FromSql($"SELECT * FROM nodes WHERE id = {id} FOR UPDATE").AsNoTracking().SingleOrDefaultAsync(ct);
        if (!precondition.Unconditional && !string.Equals(node?.PublicKey, precondition.ExpectedPublicKey, StringComparison.Ordinal))
        {
            // The node changed since the API read it (or it never matched): nothing is written.
            return new RegisterOutcome(null);
        }

        var isNew = node is null;
        node ??= new NodeEntity
        {
            Id = id,
            Region = registration.Region,
            Runtime = registration.Runtime.ToWire(),
            Status = NodePhase.Pending.ToWire(),
            Reputation = NodeRecord.DefaultReputation,
            CreatedAt = now,
        };

        var phase = ParsePhase(node.Status);
        node.Status = lifecycle.Apply(new NodeLifecycleState(phase, node.LastSeenAt), new NodeEvent.Registered()).Phase.ToWire();
        node.Region = registration.Region;
        node.Runtime = registration.Runtime.ToWire();
        node.AsnHint = registration.AsnHint;
        node.WalletAddress = registration.WalletAddress;
        node.GreenEnergy = registration.GreenEnergy;
        node.PublicKey = precondition switch
        {
            { Unconditional: true } => registration.PublicKey ?? node.PublicKey,
            { ExpectedPublicKey: null } => registration.PublicKey, // enrollment: the key it brings
            _ => node.PublicKey, // proven re-registration keeps the enrolled key
        };
        node.EnrolledWith = registration.EnrolledWith ?? node.EnrolledWith;
        node.OwnerId = registration.OwnerId ?? (registration.EnrolledWith is null ? node.OwnerId : null);
        node.Ready = false;
        node.RegisteredAt = now;
        node.LastSeenAt = now;
        node.UpdatedAt = now;

        var ciphertext = protector.Protect(id, nodeToken);
        var keyId = protector.KeyId;
        const string channel = PostgresNodeChangeFeed.NodeChannel;
        _ = isNew
            ? await db.Database.ExecuteSqlAsync($"""
                WITH n AS (
                    INSERT INTO nodes (id, region, runtime, status, reputation, green_energy, asn_hint, wallet_address, ready,
                                       public_key, enrolled_with, owner_id, last_seen_at, registered_at, created_at, updated_at)
                    VALUES ({id}, {node.Region}, {node.Runtime}, {node.Status}, {node.Reputation}, {node.GreenEnergy}, {node.AsnHint},
                            {node.WalletAddress}, false, {node.PublicKey}, {node.EnrolledWith}, {node.OwnerId}, {now}, {now}, {now}, {now})
                    RETURNING id)
                , s AS (
                    INSERT INTO node_secrets (node_id, ciphertext, key_id, created_at) SELECT id, {ciphertext}, {keyId}, {now} FROM n
                    ON CONFLICT (node_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, key_id = EXCLUDED.key_id, created_at = EXCLUDED.created_at,
                        previous_ciphertext = NULL, previous_key_id = NULL, previous_valid_until = NULL)
                SELECT pg_notify({channel}, id) FROM n
                """, ct)
            : await db.Database.ExecuteSqlAsync($"""
                WITH n AS (
                    UPDATE nodes SET status = {node.Status}, region = {node.Region}, runtime = {node.Runtime}, asn_hint = {node.AsnHint},
                        wallet_address = {node.WalletAddress}, green_energy = {node.GreenEnergy}, public_key = {node.PublicKey},
                        enrolled_with = {node.EnrolledWith}, owner_id = {node.OwnerId}, ready = false, registered_at = {now}, last_seen_at = {now}, updated_at = {now}
                    WHERE id = {id}
                    RETURNING id)
                , s AS (
                    INSERT INTO node_secrets (node_id, ciphertext, key_id, created_at) SELECT id, {ciphertext}, {keyId}, {now} FROM n
                    ON CONFLICT (node_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, key_id = EXCLUDED.key_id, created_at = EXCLUDED.created_at,
                        previous_ciphertext = NULL, previous_key_id = NULL, previous_valid_until = NULL)
                SELECT pg_notify({channel}, id) FROM n
                """, ct);
        await tx.CommitAsync(ct);
        return new RegisterOutcome(ToRecord(node));
    }

    /// <inheritdoc />
    /// <remarks>
    /// A secret stored under an older key of the ring is re-wrapped under the current key (best effort, guarded by
    /// its key id so a concurrent registration is never overwritten). A secret no key of the ring can decrypt is
    /// reported as <see cref="NodeCredentials.SecretUnreadable"/>, not thrown.
    /// </remarks>
    public async Task<NodeCredentials?> GetCredentialsAsync(string nodeId, CancellationToken cancellationToken)
    {
        var row = await db.Nodes.AsNoTracking()
            .Where(n => n.Id == nodeId)
            .Select(n => new { n.PublicKey, Secret = db.NodeSecrets.FirstOrDefault(s => s.NodeId == n.Id) })
            .SingleOrDefaultAsync(cancellationToken);
        if (row is null)
        {
            return null;
        }

        if (row.Secret is not { } secret)
        {
            return new NodeCredentials([], row.PublicKey);
        }

        var tokens = new List<string>(2);
        try
        {
            tokens.Add(protector.Unprotect(nodeId, secret.Ciphertext, secret.KeyId));
            if (secret.PreviousCiphertext is { } previous && secret.PreviousKeyId is { } previousKey
                && secret.PreviousValidUntil is { } until && Utc(until) > lifecycle.Now)
            {
                tokens.Add(protector.Unprotect(nodeId, previous, previousKey));
            }
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            LogSecretUnreadable(nodeId, secret.KeyId, e.Message);
            return new NodeCredentials([], row.PublicKey, SecretUnreadable: true);
        }

        if (secret.KeyId != protector.KeyId)
        {
            await RewrapAsync(nodeId, secret.KeyId, tokens[0], cancellationToken);
        }

        return new NodeCredentials(tokens, row.PublicKey);
    }

    private async Task RewrapAsync(string nodeId, string oldKeyId, string token, CancellationToken ct)
    {
        var ciphertext = protector.Protect(nodeId, token);
        var rows = await db.Database.ExecuteSqlAsync(
            $"UPDATE node_secrets SET ciphertext = {ciphertext}, key_id = {protector.KeyId} WHERE node_id = {nodeId} AND key_id = {oldKeyId}", ct);
        if (rows > 0)
        {
            LogRewrapped(nodeId, oldKeyId, protector.KeyId);
        }
    }

    /// <inheritdoc />
    public async Task<bool> RotateTokenAsync(string nodeId, string newToken, DateTimeOffset previousValidUntil, CancellationToken cancellationToken)
    {
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        if (await LockAsync(nodeId, cancellationToken) is null)
        {
            return false;
        }

        var now = lifecycle.Now.UtcDateTime;
        var ciphertext = protector.Protect(nodeId, newToken);
        var secret = await db.NodeSecrets.FindAsync([nodeId], cancellationToken);
        if (secret is null)
        {
            db.NodeSecrets.Add(new NodeSecretEntity { NodeId = nodeId, Ciphertext = ciphertext, KeyId = protector.KeyId, CreatedAt = now });
        }
        else
        {
            secret.PreviousCiphertext = secret.Ciphertext;
            secret.PreviousKeyId = secret.KeyId;
            secret.PreviousValidUntil = previousValidUntil.UtcDateTime;
            secret.Ciphertext = ciphertext;
            secret.KeyId = protector.KeyId;
            secret.CreatedAt = now;
        }

        await db.SaveChangesAsync(cancellationToken);
        await NotifyAsync(nodeId, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> ResetIdentityAsync(string nodeId, CancellationToken cancellationToken)
    {
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var node = await LockAsync(nodeId, cancellationToken);
        if (node is null)
        {
            return false;
        }

        node.PublicKey = null;
        node.UpdatedAt = lifecycle.Now.UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync($"DELETE FROM node_secrets WHERE node_id = {nodeId}", cancellationToken);
        await NotifyAsync(nodeId, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return true;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Standalone mode has no operator: the phase itself is written here, under the row lock (quarantine; on release
    /// offline, from which the node's next heartbeat makes it pending or active), and announced on the change feed
    /// so every replica's node table follows.
    /// </remarks>
    public async Task<bool> SetQuarantineAsync(string nodeId, bool quarantine, CancellationToken cancellationToken)
    {
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var node = await LockAsync(nodeId, cancellationToken);
        if (node is null)
        {
            return false;
        }

        var held = node.Status == NodePhase.Quarantine.ToWire();
        if (held != quarantine)
        {
            node.Status = (quarantine ? NodePhase.Quarantine : NodePhase.Offline).ToWire();
            node.UpdatedAt = lifecycle.Now.UtcDateTime;
            await db.SaveChangesAsync(cancellationToken);
            await NotifyAsync(nodeId, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return true;
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string nodeId, CancellationToken cancellationToken)
    {
        // node_secrets go with ON DELETE CASCADE; the request clock has no foreign key and goes explicitly.
        var ids = await db.Database.SqlQuery<string>($"""
            WITH gone AS (DELETE FROM nodes WHERE id = {nodeId} RETURNING id)
            , clock AS (DELETE FROM node_request_clock c USING gone WHERE c.node_id = gone.id)
            SELECT id AS "Value" FROM gone, pg_notify('dgon_node_changed', gone.id) AS notified
            """).ToListAsync(cancellationToken);
        return ids.Count > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> DeleteNeverSeenAsync(DateTimeOffset registeredBefore, CancellationToken cancellationToken)
    {
        var cutoff = registeredBefore.UtcDateTime;
        // node_secrets go with ON DELETE CASCADE; the request clock has no foreign key and goes explicitly.
        var ids = await db.Database.SqlQuery<string>($"""
            WITH gone AS (
                DELETE FROM nodes WHERE status = 'pending' AND last_heartbeat IS NULL AND registered_at < {cutoff}
                RETURNING id)
            , clock AS (DELETE FROM node_request_clock c USING gone WHERE c.node_id = gone.id)
            SELECT id AS "Value" FROM gone, pg_notify('dgon_node_changed', gone.id) AS notified
            """).ToListAsync(cancellationToken);
        return ids;
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
        if (transition.Changed)
        {
            await NotifyAsync(nodeId, cancellationToken);
        }

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
        if (changes.Count > 0)
        {
            var ids = changes.Select(c => c.NodeId).ToArray();
            await db.Database.ExecuteSqlAsync($"SELECT pg_notify('dgon_node_changed', id) FROM unnest({ids}) AS id", cancellationToken);
        }

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

    // Announced to every replica's node table when the transaction commits (PostgresNodeChangeFeed.NodeChannel).
    private Task NotifyAsync(string nodeId, CancellationToken ct) =>
        db.Database.ExecuteSqlRawAsync(PostgresNodeChangeFeed.Notify, [nodeId], ct);

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
        PublicKey = n.PublicKey,
        OwnerId = n.OwnerId,
        Ready = n.Ready,
        LastHeartbeat = n.LastHeartbeat is { } hb ? Utc(hb) : null,
        Metrics = new NodeMetrics(n.GpuUtil, n.MemUsedGb, n.P95Ms),
        CreatedAt = Utc(n.CreatedAt),
        RegisteredAt = Utc(n.RegisteredAt),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId}: its secret (key {KeyId}) cannot be decrypted with DGON_SECRET_KEY ({Error}); it must re-register with its node key")]
    private partial void LogSecretUnreadable(string nodeId, string keyId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId}: secret re-wrapped from key {OldKeyId} to {NewKeyId}")]
    private partial void LogRewrapped(string nodeId, string oldKeyId, string newKeyId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId}: {Count} key-bound failures (replays) since {Since:o} (last: {Reason}); standalone mode does not quarantine")]
    private partial void LogAuthFailures(string nodeId, int count, DateTimeOffset since, string reason);
}
