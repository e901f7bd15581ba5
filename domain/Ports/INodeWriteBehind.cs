using Dgon.Domain.Nodes;

namespace Dgon.Domain.Ports;

/// <summary>
/// A heartbeat accepted from memory, waiting to be written behind (issue 11): only observation fields, never the
/// phase (a phase change is written through <see cref="INodeRegistry.RecordHeartbeatAsync"/> before its response).
/// </summary>
/// <param name="NodeId">Node id.</param>
/// <param name="At">When the API accepted it (UTC); becomes <c>last_heartbeat</c> and <c>last_seen_at</c>.</param>
/// <param name="Ready">Ready flag reported.</param>
/// <param name="Metrics">Metrics reported.</param>
public sealed record HeartbeatObservation(string NodeId, DateTimeOffset At, bool Ready, NodeMetrics Metrics);

/// <summary>
/// A node as stored with its secrets in clear, for the API's in-memory node table (standalone mode: PostgreSQL rows
/// and their decrypted <c>node_secrets</c>).
/// </summary>
/// <param name="Node">The node.</param>
/// <param name="Token">Current HMAC token, or null (none, or it cannot be decrypted).</param>
/// <param name="PreviousToken">The token replaced by the last rotation, or null.</param>
/// <param name="PreviousValidUntil">Until when <paramref name="PreviousToken"/> verifies (UTC), or null.</param>
/// <param name="SecretUnreadable">A stored secret exists that no key of the key ring decrypts.</param>
public sealed record StoredNode(NodeRecord Node, string? Token, string? PreviousToken, DateTimeOffset? PreviousValidUntil, bool SecretUnreadable)
{
    /// <summary>The tokens that verify at <paramref name="now"/>: current first, then the previous one while its overlap lasts.</summary>
    public IReadOnlyList<string> TokensAt(DateTimeOffset now) =>
        (Token, PreviousToken, PreviousValidUntil) switch
        {
            (null, _, _) => [],
            ({ } t, { } p, { } until) when until > now => [t, p],
            ({ } t, _, _) => [t],
        };
}

/// <summary>
/// Standalone mode's store side of the in-memory node table (issue 11): bulk load, reload by id, and the batched
/// write-behind of heartbeats. Changes made by any replica are announced on the change feed
/// (<see cref="INodeChangeFeed"/>).
/// </summary>
public interface INodeStore
{
    /// <summary>Every node with its secrets, in id order, streamed.</summary>
    IAsyncEnumerable<StoredNode> LoadAllAsync(CancellationToken cancellationToken);

    /// <summary>The given nodes with their secrets; ids that no longer exist are absent from the result.</summary>
    Task<IReadOnlyList<StoredNode>> LoadAsync(IReadOnlyCollection<string> nodeIds, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the observations in one statement (last heartbeat, last seen, ready, metrics); a row whose last sign of
    /// life is already later is left alone, and the phase is never touched.
    /// </summary>
    /// <returns>Rows written.</returns>
    Task<int> WriteHeartbeatsAsync(IReadOnlyList<HeartbeatObservation> observations, CancellationToken cancellationToken);

    /// <summary>
    /// Writes heartbeats through in one statement (group commit), each with the phase the lifecycle decided in memory,
    /// but only where the stored phase is still <see cref="HeartbeatWrite.From"/> (else the caller writes that one under
    /// the row lock); announces every changed phase on the change feed in the same transaction.
    /// </summary>
    /// <returns>The ids written (durable when this returns).</returns>
    Task<IReadOnlySet<string>> WriteThroughAsync(IReadOnlyList<HeartbeatWrite> writes, CancellationToken cancellationToken);
}

/// <summary>A heartbeat to write through with its phase decision (issue 11: group commit of phase changes).</summary>
/// <param name="Observation">What the heartbeat observed.</param>
/// <param name="From">The phase the decision started from (the stored phase must still be this).</param>
/// <param name="To">The decided phase.</param>
public sealed record HeartbeatWrite(HeartbeatObservation Observation, NodePhase From, NodePhase To);

/// <summary>
/// Changes announced by every API replica and the store itself (PostgreSQL <c>LISTEN</c>/<c>NOTIFY</c>): a node
/// (re-)registered, rotated, reset, changed phase or was deleted; a replica claimed a node's request clock. Delivery
/// is at most once per connection: after each (re)connection a subscriber must reload everything.
/// </summary>
public interface INodeChangeFeed
{
    /// <summary>
    /// Listens until cancelled, calling <paramref name="onNodeChanged"/> with a changed node id,
    /// <paramref name="onClockClaimed"/> with a claim, and <paramref name="onConnected"/> each time the feed is
    /// (re)connected — before any change it delivers, so a full reload from there misses nothing.
    /// </summary>
    /// <exception cref="Exception">The connection failed (the caller reconnects with backoff).</exception>
    Task ListenAsync(Func<CancellationToken, Task> onConnected, Action<string> onNodeChanged, Action<ClockClaimed> onClockClaimed, CancellationToken cancellationToken);
}
