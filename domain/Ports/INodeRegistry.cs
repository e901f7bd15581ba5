using Dgon.Domain.Nodes;

namespace Dgon.Domain.Ports;

/// <summary>A node as stored by a registry (PostgreSQL row or, later, DgonNode custom resource).</summary>
public sealed record NodeRecord
{
    /// <summary>Node id (RFC 1123 label).</summary>
    public required string Id { get; init; }

    /// <summary>Region (Kubernetes label value).</summary>
    public required string Region { get; init; }

    /// <summary>Runtime.</summary>
    public required NodeRuntime Runtime { get; init; }

    /// <summary>Lifecycle phase.</summary>
    public required NodePhase Phase { get; init; }

    /// <summary>Reputation, 0–100 (seed 000 default 60).</summary>
    public double Reputation { get; init; } = DefaultReputation;

    /// <summary>Declared green energy.</summary>
    public bool GreenEnergy { get; init; }

    /// <summary>Declared network hint.</summary>
    public string? AsnHint { get; init; }

    /// <summary>Declared wallet address.</summary>
    public string? WalletAddress { get; init; }

    /// <summary>The node's enrolled Ed25519 public key (<c>ed25519:</c> + base64), or null when it has none (seed agent, or reset by an admin).</summary>
    public string? PublicKey { get; init; }

    /// <summary>
    /// The user who owns the node (issue 12): the owner of the join token that enrolled it, written by the API at
    /// enrollment (standalone: <c>nodes.owner_id</c>; Kubernetes: annotation <c>dgon.io/owner</c>), or null.
    /// </summary>
    public string? OwnerId { get; init; }

    /// <summary>Ready flag of the last heartbeat.</summary>
    public bool Ready { get; init; }

    /// <summary>Time of the last valid heartbeat (UTC), null before the first.</summary>
    public DateTimeOffset? LastHeartbeat { get; init; }

    /// <summary>Last reported metrics; members the node did not report are null.</summary>
    public NodeMetrics Metrics { get; init; } = NodeMetrics.None;

    /// <summary>First registration time (UTC).</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Last registration time (UTC).</summary>
    public required DateTimeOffset RegisteredAt { get; init; }

    /// <summary>Seed 000: reputation defaults to 60.</summary>
    public const double DefaultReputation = 60;
}

/// <summary>Metrics a node reported in its last heartbeat (seed 000 heartbeat body). Null = not reported.</summary>
/// <param name="GpuUtil">GPU utilisation ratio, 0–1.</param>
/// <param name="MemUsedGb">Memory in use, gigabytes.</param>
/// <param name="P95Ms">p95 latency, milliseconds.</param>
public sealed record NodeMetrics(double? GpuUtil, double? MemUsedGb, double? P95Ms)
{
    /// <summary>Nothing reported.</summary>
    public static NodeMetrics None { get; } = new(null, null, null);
}

/// <summary>What a node declares at registration (validated; see <see cref="Validation.ContractValidator"/>).</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="Region">Region.</param>
/// <param name="Runtime">Runtime.</param>
/// <param name="AsnHint">Network hint or null.</param>
/// <param name="WalletAddress">Wallet address or null (empty is stored as null).</param>
/// <param name="GreenEnergy">Green energy flag.</param>
/// <param name="PublicKey">The node's Ed25519 public key in wire form, or null (seed agents send none).</param>
/// <param name="EnrolledWith">Id of the join token this registration consumed, or null (proof, admin, open mode).</param>
/// <param name="OwnerId">Owner of that join token (issue 12), who then owns the node; null keeps the stored owner.</param>
public sealed record NodeRegistration(string NodeId, string Region, NodeRuntime Runtime, string? AsnHint, string? WalletAddress, bool GreenEnergy, string? PublicKey = null, string? EnrolledWith = null, string? OwnerId = null);

/// <summary>
/// The condition under which <see cref="INodeRegistry.RegisterAsync"/> may write, checked atomically with the write
/// (issue 9: nothing changes a node without proof). The API decides who may register from what it read
/// (<see cref="INodeRegistry.GetCredentialsAsync"/>); the registry refuses the write when the node changed meanwhile.
/// </summary>
/// <param name="Unconditional">Write whatever is stored (an admin, or <c>DGON_OPEN_REGISTRATION</c>).</param>
/// <param name="ExpectedPublicKey">Otherwise: the node's stored public key must still equal this (null = the node is absent or has no key).</param>
public sealed record RegistrationPrecondition(bool Unconditional, string? ExpectedPublicKey)
{
    /// <summary>No condition (admin, open registration): a given public key replaces the stored one.</summary>
    public static RegistrationPrecondition Any { get; } = new(true, null);

    /// <summary>The node must be absent or keyless (enrollment with a join token); it gets the registration's key.</summary>
    public static RegistrationPrecondition Keyless { get; } = new(false, null);

    /// <summary>The node's key must still be <paramref name="publicKey"/> (re-registration proven with that key); the key is kept.</summary>
    public static RegistrationPrecondition KeyIs(string publicKey) => new(false, publicKey);
}

/// <summary>Outcome of <see cref="INodeRegistry.RegisterAsync"/>.</summary>
/// <param name="Node">The node as stored, or null when the precondition failed (then nothing was written).</param>
public sealed record RegisterOutcome(NodeRecord? Node)
{
    /// <summary>Whether the precondition failed and nothing was written.</summary>
    public bool PreconditionFailed => Node is null;
}

/// <summary>
/// What authenticates a node: its HMAC tokens and its public key. Read on every signed request.
/// </summary>
/// <param name="Tokens">The tokens that verify right now: the current one first, then the previous one while its
/// rotation overlap lasts. Empty when the node has none (reset by an admin) or it cannot be read.</param>
/// <param name="PublicKey">Enrolled Ed25519 public key, or null.</param>
/// <param name="SecretUnreadable">The stored secret exists but no key of the key ring decrypts it.</param>
public sealed record NodeCredentials(IReadOnlyList<string> Tokens, string? PublicKey, bool SecretUnreadable = false);

/// <summary>A validated heartbeat.</summary>
/// <param name="Ready">Runtime ready.</param>
/// <param name="Metrics">Reported metrics.</param>
public sealed record NodeHeartbeat(bool Ready, NodeMetrics Metrics);

/// <summary>Filter and page of a node listing. Order is by id (ordinal), stable across pages.</summary>
/// <param name="Phase">Only nodes in this phase, or all.</param>
/// <param name="Region">Only nodes in this region, or all.</param>
/// <param name="Limit">Page size, 1–1000.</param>
/// <param name="After">Exclusive lower bound on id (keyset cursor), or null for the first page.</param>
/// <param name="IdPrefix">Only nodes whose id starts with this (issue 11: the dashboard's search), or all.</param>
public sealed record NodeListQuery(NodePhase? Phase, string? Region, int Limit, string? After, string? IdPrefix = null)
{
    /// <summary>Only nodes owned by this user (issue 12: an operator's view), or all when null.</summary>
    public string? OwnerId { get; init; }
}

/// <summary>A page of nodes.</summary>
/// <param name="Items">Nodes ordered by id.</param>
/// <param name="NextAfter">Cursor for the next page (id of the last item), or null when this is the last page.</param>
public sealed record NodePage(IReadOnlyList<NodeRecord> Items, string? NextAfter);

/// <summary>A phase transition applied by the registry (From may equal To), for logs, metrics and (later) Kubernetes Events.</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="From">Phase before.</param>
/// <param name="To">Phase after.</param>
/// <param name="Reason">Transition reason from <see cref="NodeLifecycle"/>.</param>
public sealed record PhaseChange(string NodeId, NodePhase From, NodePhase To, string Reason);

/// <summary>
/// Write-side port for nodes and their secrets: what a registering or heartbeating node changes. Implementations
/// apply <see cref="NodeLifecycle"/> atomically with the write (no lost updates between concurrent writers).
/// Standalone mode: PostgreSQL rows. Kubernetes mode: DgonNode custom resources and their owned Secrets.
/// Reads for the dashboard go through <see cref="INodeQueries"/> (standalone: PostgreSQL pages and in-memory counts; Kubernetes: the API's DgonNode cache).
/// </summary>
public interface INodeRegistry
{
    /// <summary>
    /// Upserts the node with its declared data, applies <see cref="NodeEvent.Registered"/>, and replaces its secret
    /// with <paramref name="nodeToken"/> (no previous token stays valid). Seed 000: register upserts as pending and
    /// issues a fresh secret. Only when <paramref name="precondition"/> holds at the time of the write; otherwise
    /// nothing changes. The public key: see <see cref="RegistrationPrecondition"/>.
    /// </summary>
    /// <returns>The node as stored, or a failed precondition.</returns>
    Task<RegisterOutcome> RegisterAsync(NodeRegistration registration, string nodeToken, RegistrationPrecondition precondition, CancellationToken cancellationToken);

    /// <summary>The node's credentials, or null if no node with this id exists.</summary>
    Task<NodeCredentials?> GetCredentialsAsync(string nodeId, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the node's token with <paramref name="newToken"/>; the token current until now keeps verifying until
    /// <paramref name="previousValidUntil"/> (the rotation overlap, issue 9: default 60 s).
    /// </summary>
    /// <returns>False when the node does not exist.</returns>
    Task<bool> RotateTokenAsync(string nodeId, string newToken, DateTimeOffset previousValidUntil, CancellationToken cancellationToken);

    /// <summary>
    /// Admin reset for a lost machine: forgets the node's public key and tokens (every signed request fails from now
    /// on); the node keeps its record and may enroll again with a join token.
    /// </summary>
    /// <returns>False when the node does not exist.</returns>
    Task<bool> ResetIdentityAsync(string nodeId, CancellationToken cancellationToken);

    /// <summary>
    /// Records a verified heartbeat: last heartbeat = now, metrics, ready; applies <see cref="NodeEvent.HeartbeatReceived"/>.
    /// </summary>
    /// <returns>The phase before and after (equal when unchanged), or null if the node no longer exists.</returns>
    Task<PhaseChange?> RecordHeartbeatAsync(string nodeId, NodeHeartbeat heartbeat, CancellationToken cancellationToken);

    /// <summary>
    /// Records repeated evidence against a node that only its key holder can produce (issue 9: a valid MAC replayed,
    /// a receipt whose signature fails; the threshold of <see cref="Auth.AuthFailureWindow"/> was crossed), so that
    /// an operator can quarantine it. Failures a stranger can cause (bad MAC, stale timestamp) are never recorded.
    /// Kubernetes mode writes it to the DgonNode's <c>status.authFailures</c>; standalone mode has no operator and
    /// only logs it (documented limitation).
    /// </summary>
    Task RecordAuthFailuresAsync(string nodeId, AuthFailureRecord record, CancellationToken cancellationToken);
}

/// <summary>Repeated key-bound failures (replays) of one node id inside the counting window (issues 3 and 9).</summary>
/// <param name="Count">Failures counted in the window, at least the threshold.</param>
/// <param name="FirstFailureTime">Oldest failure still in the window (UTC).</param>
/// <param name="LastFailureTime">Newest failure (UTC).</param>
/// <param name="LastReason">Reason of the newest failure, e.g. <c>BadSignature</c>.</param>
public sealed record AuthFailureRecord(int Count, DateTimeOffset FirstFailureTime, DateTimeOffset LastFailureTime, string LastReason);

/// <summary>Read-side port: the node listing and summary (standalone: pages from PostgreSQL, counts from the API's node table; Kubernetes mode: the API's DgonNode cache).</summary>
public interface INodeQueries
{
    /// <summary>A page of nodes, filtered, in id order.</summary>
    Task<NodePage> ListAsync(NodeListQuery query, CancellationToken cancellationToken);

    /// <summary>Node counts per phase; every phase present (zero when none).</summary>
    Task<IReadOnlyDictionary<NodePhase, int>> CountByPhaseAsync(CancellationToken cancellationToken);

    /// <summary>Counts per phase of the nodes <paramref name="ownerId"/> owns (issue 12); every phase present.</summary>
    Task<IReadOnlyDictionary<NodePhase, int>> CountOwnedByPhaseAsync(string ownerId, CancellationToken cancellationToken);
}

/// <summary>
/// Node actions of admins and owners (issue 12). Standalone: PostgreSQL rows. Kubernetes mode: the DgonNode's spec
/// (<c>spec.quarantine</c>) or the resource itself; never its status, which the operator owns.
/// </summary>
public interface INodeAdministration
{
    /// <summary>
    /// Holds the node out of the network (<paramref name="quarantine"/> true) or releases it. Standalone: the phase
    /// becomes quarantine, or on release offline until its next heartbeat decides. Kubernetes: sets or clears
    /// <c>spec.quarantine</c>; the operator moves the phase.
    /// </summary>
    /// <returns>False when no node has this id.</returns>
    Task<bool> SetQuarantineAsync(string nodeId, bool quarantine, CancellationToken cancellationToken);

    /// <summary>Deletes the node and its secrets (it must enroll again with a join token).</summary>
    /// <returns>False when no node has this id.</returns>
    Task<bool> DeleteAsync(string nodeId, CancellationToken cancellationToken);
}

/// <summary>
/// Standalone mode's heartbeat timeout: the store itself finds overdue nodes (Kubernetes mode leaves this to the
/// operator, which requeues each DgonNode at its own deadline).
/// </summary>
public interface INodeLifecycleSweep
{
    /// <summary>Applies <see cref="NodeEvent.TimePassed"/> to every node whose offline deadline has passed.</summary>
    /// <returns>The phase changes made.</returns>
    Task<IReadOnlyList<PhaseChange>> ExpireOverdueAsync(CancellationToken cancellationToken);

    /// <summary>The earliest offline deadline among pending and active nodes, or null when there is none.</summary>
    Task<DateTimeOffset?> NextOfflineDeadlineAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Deletes nodes that registered before <paramref name="registeredBefore"/> and never sent a valid heartbeat
    /// (issue 9: abandoned enrollments, default after 24 h), with their secrets.
    /// </summary>
    /// <returns>The ids deleted.</returns>
    Task<IReadOnlyList<string>> DeleteNeverSeenAsync(DateTimeOffset registeredBefore, CancellationToken cancellationToken);
}

/// <summary>
/// Kubernetes mode: the operator's copy of every DgonNode in PostgreSQL, so <see cref="INodeQueries"/> serves both
/// modes from one table. The mirror holds no secrets (those stay in Kubernetes Secrets).
/// </summary>
public interface INodeMirror
{
    /// <summary>Inserts or replaces the node's row with <paramref name="node"/>.</summary>
    Task UpsertAsync(NodeRecord node, CancellationToken cancellationToken);

    /// <summary>Deletes the node's row (and any standalone secret row). No error when absent.</summary>
    /// <returns>Whether a row was deleted.</returns>
    Task<bool> DeleteAsync(string nodeId, CancellationToken cancellationToken);

    /// <summary>Ids of every mirrored node, for the resync that removes rows whose resource is gone.</summary>
    Task<IReadOnlyList<string>> ListIdsAsync(CancellationToken cancellationToken);
}
