namespace Dgon.Domain.Ports;

/// <summary>
/// The replay guard of signed node requests (issue 9): per node, the timestamp (<c>X-Node-Ts</c>, unix seconds) of the
/// last accepted heartbeat or key-signed request; a request is accepted only with a later one. Issue 11: the API
/// keeps it in memory and claims a node in <see cref="IRequestClockStore"/> when the node's first request reaches a
/// replica, so a steady node costs no database round trip.
/// </summary>
public interface INodeRequestClock
{
    /// <summary>
    /// Advances the node's clock to <paramref name="unixSeconds"/> if that is later than its value (or it has none).
    /// </summary>
    /// <param name="nodeId">Node id.</param>
    /// <param name="unixSeconds">The request's <c>X-Node-Ts</c>.</param>
    /// <param name="durable">Advance the shared store before answering (key-signed requests, which hand out tokens:
    /// a copy replayed to another replica must be refused at once); heartbeats pass false.</param>
    /// <param name="cancellationToken">Request abort.</param>
    /// <returns>True when advanced; false when the timestamp is not later (a replay or an out-of-order request).</returns>
    /// <exception cref="Exception">The store could not be reached for a claim (the caller answers 503).</exception>
    ValueTask<bool> TryAdvanceAsync(string nodeId, long unixSeconds, bool durable, CancellationToken cancellationToken);
}

/// <summary>
/// Durable side of <see cref="INodeRequestClock"/> (PostgreSQL table <c>node_request_clock</c>, both modes), shared by
/// every API replica. A replica <em>claims</em> a node (one atomic conditional statement) before it accepts the node's
/// requests from memory; the other replicas learn of the claim from <see cref="ClockClaimed"/> and stop accepting that
/// node's requests from memory. Values accepted from memory reach the store in batches (<see cref="AdvanceAsync"/>).
/// </summary>
public interface IRequestClockStore
{
    /// <summary>
    /// Atomically, in one statement, for each claim: if the node's stored timestamp is older than the claim's (or
    /// absent), stores it with <paramref name="holder"/> as the node's holder and announces the claim to every replica.
    /// At most one claim per node.
    /// </summary>
    /// <returns>The node ids claimed; the others' stored timestamps were not older (replays).</returns>
    Task<IReadOnlySet<string>> ClaimAsync(IReadOnlyList<ClockClaim> claims, string holder, CancellationToken cancellationToken);

    /// <summary>Raises each stored timestamp to the given one where it is older (never lowers one); one round trip.</summary>
    Task AdvanceAsync(IReadOnlyList<string> nodeIds, IReadOnlyList<long> unixSeconds, CancellationToken cancellationToken);
}

/// <summary>A claim of a node's request clock at a timestamp.</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="UnixSeconds">The request's <c>X-Node-Ts</c>.</param>
public sealed record ClockClaim(string NodeId, long UnixSeconds);

/// <summary>A replica claimed a node's request clock (from the change feed).</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="Holder">The claiming replica's id.</param>
public sealed record ClockClaimed(string NodeId, string Holder);
