using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Persistence;

namespace Dgon.Api.Fleet;

/// <summary>
/// Standalone mode's <see cref="INodeRegistry"/> (issue 11): PostgreSQL (<see cref="PostgresNodeRegistry"/>) stays the
/// writer of everything durable, and <see cref="NodeTable"/> answers what the hot path reads.
/// <list type="bullet">
/// <item>Credentials come from memory (no query, no decryption per request) once the table is loaded.</item>
/// <item>A heartbeat whose phase stays the same, from a node seen within
/// <see cref="Configuration.FleetOptions.FastPathWindow"/>, is recorded in memory and written behind; any other one
/// (a phase change, a node silent for long) is written through before its response, batched with others
/// (<see cref="HeartbeatGroupCommit"/>) on the condition that the stored phase is still the one decided from; when it
/// is not (the sweep or another replica changed it), or the node is not in the table, it is written under the row
/// lock. So a phase the API reports is always durable.</item>
/// <item>Registration, rotation and reset write through, then update the table (and the change feed tells the other
/// replicas).</item>
/// </list>
/// </summary>
public sealed class CachedNodeRegistry(PostgresNodeRegistry inner, NodeTable table, INodeStore store, HeartbeatGroupCommit groupCommit, NodeLifecycle lifecycle, Configuration.FleetOptions fleet) : INodeRegistry
{
    /// <inheritdoc />
    public async Task<RegisterOutcome> RegisterAsync(NodeRegistration registration, string nodeToken, RegistrationPrecondition precondition, CancellationToken cancellationToken)
    {
        var outcome = await inner.RegisterAsync(registration, nodeToken, precondition, cancellationToken);
        if (outcome.Node is { } node)
        {
            table.Upsert(new StoredNode(node, nodeToken, null, null, SecretUnreadable: false));
        }

        return outcome;
    }

    /// <inheritdoc />
    public Task<NodeCredentials?> GetCredentialsAsync(string nodeId, CancellationToken cancellationToken)
    {
        if (!table.Loaded)
        {
            return inner.GetCredentialsAsync(nodeId, cancellationToken);
        }

        return Task.FromResult(table.Get(nodeId) is { } stored
            ? new NodeCredentials(stored.TokensAt(lifecycle.Now), stored.Node.PublicKey, stored.SecretUnreadable)
            : null);
    }

    /// <inheritdoc />
    public async Task<bool> RotateTokenAsync(string nodeId, string newToken, DateTimeOffset previousValidUntil, CancellationToken cancellationToken)
    {
        var rotated = await inner.RotateTokenAsync(nodeId, newToken, previousValidUntil, cancellationToken);
        await ReloadAsync(nodeId, cancellationToken);
        return rotated;
    }

    /// <inheritdoc />
    public async Task<bool> ResetIdentityAsync(string nodeId, CancellationToken cancellationToken)
    {
        var reset = await inner.ResetIdentityAsync(nodeId, cancellationToken);
        await ReloadAsync(nodeId, cancellationToken);
        return reset;
    }

    /// <inheritdoc />
    public async Task<PhaseChange?> RecordHeartbeatAsync(string nodeId, NodeHeartbeat heartbeat, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        var now = lifecycle.Now;
        NodeTransition Decide(NodeLifecycleState state) => lifecycle.Apply(state, new NodeEvent.HeartbeatReceived(heartbeat.Ready));
        if (table.Loaded && table.TryRecordHeartbeat(nodeId, heartbeat, now, fleet.FastPathWindow(lifecycle.GracePeriod), Decide, out var phase))
        {
            return new PhaseChange(nodeId, phase, phase, "Unchanged");
        }

        if (table.Loaded && table.TryDecide(nodeId, Decide, out var from, out var transition))
        {
            var write = new HeartbeatWrite(new HeartbeatObservation(nodeId, now, heartbeat.Ready, heartbeat.Metrics), from, transition.Phase);
            if (await groupCommit.WriteAsync(write, cancellationToken))
            {
                table.RecordWritten(nodeId, heartbeat, now, transition.Phase);
                return new PhaseChange(nodeId, from, transition.Phase, transition.Reason);
            }
        }

        var change = await inner.RecordHeartbeatAsync(nodeId, heartbeat, cancellationToken);
        if (change is null)
        {
            table.Remove(nodeId);
        }
        else
        {
            table.RecordWritten(nodeId, heartbeat, now, change.To);
        }

        return change;
    }

    /// <inheritdoc />
    public Task RecordAuthFailuresAsync(string nodeId, AuthFailureRecord record, CancellationToken cancellationToken) =>
        inner.RecordAuthFailuresAsync(nodeId, record, cancellationToken);

    private async Task ReloadAsync(string nodeId, CancellationToken ct)
    {
        var found = await store.LoadAsync([nodeId], ct);
        if (found.Count == 1)
        {
            table.Upsert(found[0]);
        }
        else
        {
            table.Remove(nodeId);
        }
    }
}

/// <summary>
/// Standalone mode's <see cref="INodeQueries"/> (issue 11): pages come from PostgreSQL by primary-key range (never a
/// scan; heartbeats there lag by at most one flush interval), counts per phase from <see cref="NodeTable"/>'s
/// incremental counters (phase changes are written through and announced, so every replica's counts agree).
/// </summary>
public sealed class NodeTableQueries(PostgresNodeQueries inner, NodeTable table) : INodeQueries
{
    /// <inheritdoc />
    public Task<NodePage> ListAsync(NodeListQuery query, CancellationToken cancellationToken) => inner.ListAsync(query, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<NodePhase, int>> CountByPhaseAsync(CancellationToken cancellationToken) =>
        table.Loaded ? Task.FromResult(table.CountByPhase()) : inner.CountByPhaseAsync(cancellationToken);

    /// <inheritdoc />
    /// <remarks>One owner's nodes are few: counted in PostgreSQL (index <c>ix_nodes_owner_id</c>).</remarks>
    public Task<IReadOnlyDictionary<NodePhase, int>> CountOwnedByPhaseAsync(string ownerId, CancellationToken cancellationToken) =>
        inner.CountOwnedByPhaseAsync(ownerId, cancellationToken);
}
