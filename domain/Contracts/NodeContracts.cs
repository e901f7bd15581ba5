using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Domain.Contracts;

/// <summary>
/// <c>POST /v1/nodes/register</c> body (seed 000): <c>{ node_id, region, runtime, asn_hint?, wallet_address?, green_energy? }</c>.
/// Every member is nullable so that absence is reported by <see cref="Validation.ContractValidator"/> with the field's name.
/// </summary>
public sealed record RegisterRequest
{
    /// <summary>Node id; must be a lowercase RFC 1123 label (≤ 63 characters) because it names a Kubernetes object.</summary>
    [JsonPropertyName("node_id")] public string? NodeId { get; init; }

    /// <summary>Region, e.g. <c>ap-southeast</c>; a Kubernetes label value (≤ 63 characters).</summary>
    [JsonPropertyName("region")] public string? Region { get; init; }

    /// <summary>Runtime wire name: <c>ollama|vllm|tensorrtllm|tgi</c>.</summary>
    [JsonPropertyName("runtime")] public string? Runtime { get; init; }

    /// <summary>Optional network hint, e.g. <c>residential</c> or <c>AS13335</c>; ≤ 128 printable characters.</summary>
    [JsonPropertyName("asn_hint")] public string? AsnHint { get; init; }

    /// <summary>Optional payout wallet address; ≤ 128 printable characters; empty means none.</summary>
    [JsonPropertyName("wallet_address")] public string? WalletAddress { get; init; }

    /// <summary>Whether the node runs on green energy; default false.</summary>
    [JsonPropertyName("green_energy")] public bool? GreenEnergy { get; init; }

    /// <summary>
    /// Issue 9: the node's Ed25519 public key, <c>ed25519:</c> + base64 of 32 bytes (<see cref="Auth.NodeKeyProof"/>).
    /// Optional (seed agents send none), but a node without a key can only be re-registered by an admin.
    /// </summary>
    [JsonPropertyName("public_key")] public string? PublicKey { get; init; }
}

/// <summary><c>POST /v1/nodes/rotate-token</c> 200 body: the fresh token and how long the previous one keeps working.</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="NodeToken">The new HMAC secret (64 hex characters), returned once.</param>
/// <param name="PreviousTokenValidUntil">Until when the replaced token still verifies (UTC).</param>
public sealed record RotateTokenResponse(
    [property: JsonPropertyName("node_id")] string NodeId,
    [property: JsonPropertyName("node_token")] string NodeToken,
    [property: JsonPropertyName("previous_token_valid_until")] DateTime PreviousTokenValidUntil);

/// <summary><c>POST /v1/admin/join-tokens</c> body; every member optional (<c>{}</c> gives a 24 h token without limits).</summary>
public sealed record JoinTokenCreateRequest
{
    /// <summary>Lifetime in seconds, 60 to 31,536,000 (365 days); default 86,400.</summary>
    [JsonPropertyName("ttl_seconds")] public long? TtlSeconds { get; init; }

    /// <summary>Registrations it may enroll, 1 to 1,000,000; default unlimited.</summary>
    [JsonPropertyName("max_uses")] public int? MaxUses { get; init; }

    /// <summary>Free text, at most 256 printable characters.</summary>
    [JsonPropertyName("description")] public string? Description { get; init; }

    /// <summary>Only nodes declaring this region may enroll with it.</summary>
    [JsonPropertyName("region")] public string? Region { get; init; }
}

/// <summary>A join token as listed (never its secret). <see cref="Token"/> is set only in the 201 of its creation.</summary>
public sealed record JoinTokenView
{
    /// <summary>Public id (six characters).</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }

    /// <summary>The whole token <c>id.secret</c>: only in the creation response, never again.</summary>
    [JsonPropertyName("token")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Token { get; init; }

    /// <summary>Description or null.</summary>
    [JsonPropertyName("description")] public string? Description { get; init; }

    /// <summary>Expiry (UTC).</summary>
    [JsonPropertyName("expires_at")] public required DateTime ExpiresAt { get; init; }

    /// <summary>Use limit or null.</summary>
    [JsonPropertyName("max_uses")] public int? MaxUses { get; init; }

    /// <summary>Uses so far.</summary>
    [JsonPropertyName("uses")] public int Uses { get; init; }

    /// <summary>Region constraint or null.</summary>
    [JsonPropertyName("region")] public string? Region { get; init; }

    /// <summary>Revocation time or null.</summary>
    [JsonPropertyName("revoked_at")] public DateTime? RevokedAt { get; init; }

    /// <summary><c>valid</c>, <c>expired</c>, <c>used_up</c> or <c>revoked</c> at the time of the answer.</summary>
    [JsonPropertyName("state")] public required string State { get; init; }

    /// <summary>Creation time (UTC).</summary>
    [JsonPropertyName("created_at")] public required DateTime CreatedAt { get; init; }

    /// <summary>Id of the user who created it and owns the nodes it enrolls (issue 12), or null (admin token, kubectl).</summary>
    [JsonPropertyName("owner_id")] public string? OwnerId { get; init; }
}

/// <summary><c>POST /v1/nodes/register</c> 200 body (seed 000): <c>{ status: "registered", node_id, node_token }</c>.</summary>
/// <param name="Status">Always <c>registered</c>.</param>
/// <param name="NodeId">The registered node id.</param>
/// <param name="NodeToken">The node's fresh HMAC secret: 64 hex characters (256 bits). Returned once, never again.</param>
public sealed record RegisterResponse(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("node_id")] string NodeId,
    [property: JsonPropertyName("node_token")] string NodeToken);

/// <summary>
/// <c>POST /v1/nodes/heartbeat</c> body (seed 000): <c>{ gpu_util?, mem_used_gb?, p95_ms?, ready }</c>.
/// A metric the node cannot measure is omitted, never invented.
/// </summary>
public sealed record HeartbeatRequest
{
    /// <summary>GPU utilisation as a ratio in [0, 1].</summary>
    [JsonPropertyName("gpu_util")] public double? GpuUtil { get; init; }

    /// <summary>Memory in use, in gigabytes (10^9 bytes), ≥ 0.</summary>
    [JsonPropertyName("mem_used_gb")] public double? MemUsedGb { get; init; }

    /// <summary>95th-percentile request latency in milliseconds, ≥ 0.</summary>
    [JsonPropertyName("p95_ms")] public double? P95Ms { get; init; }

    /// <summary>Whether the runtime is ready to serve (required).</summary>
    [JsonPropertyName("ready")] public bool? Ready { get; init; }
}

/// <summary>
/// <c>POST /v1/nodes/heartbeat</c> 200 body: seed 000's <c>{ status }</c> with the node's phase after the heartbeat,
/// plus (issue 11) <c>heartbeat_interval_s</c>, the interval the API asks the node to keep (whole seconds; stretched
/// as the fleet grows, see <see cref="Nodes.HeartbeatIntervalPolicy"/>). Seed agents ignore the extra member.
/// </summary>
/// <param name="Status">Phase wire name.</param>
/// <param name="HeartbeatIntervalSeconds">Requested interval in seconds, or null (absent) when the API does not say.</param>
public sealed record HeartbeatResponse(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("heartbeat_interval_s"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? HeartbeatIntervalSeconds = null);

/// <summary>
/// <c>POST /v1/receipts</c> body (seed 000): <c>{ id, node_id, region, model_id, payload: {…} }</c>.
/// </summary>
public sealed record ReceiptRequest
{
    /// <summary>Receipt id (the request id), 1–128 characters of <c>[A-Za-z0-9._:-]</c>.</summary>
    [JsonPropertyName("id")] public string? Id { get; init; }

    /// <summary>Node that did the work; must equal <c>X-Node-Id</c> (else 403).</summary>
    [JsonPropertyName("node_id")] public string? NodeId { get; init; }

    /// <summary>Region the work ran in.</summary>
    [JsonPropertyName("region")] public string? Region { get; init; }

    /// <summary>Model id, e.g. <c>llama3.1-8b</c>; 1–256 printable characters.</summary>
    [JsonPropertyName("model_id")] public string? ModelId { get; init; }

    /// <summary>The work receipt itself: a JSON object, stored whole (jsonb).</summary>
    [JsonPropertyName("payload")] public JsonElement? Payload { get; init; }
}

/// <summary><c>POST /v1/receipts</c> 200 body (seed 000): <c>{ ok: true }</c>.</summary>
/// <param name="Ok">Always true (seed 000).</param>
/// <param name="SignatureStatus">Issue 13: what the API found when it checked <c>payload.signature</c> (<c>valid</c>, <c>invalid</c>, <c>unsigned</c>); omitted when unknown.</param>
public sealed record ReceiptResponse(
    [property: JsonPropertyName("ok")] bool Ok,
    [property: JsonPropertyName("signature_status"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SignatureStatus = null);

/// <summary>
/// <c>GET /v1/summary</c> body: seed 000's <c>{ active_nodes, total_nodes }</c> plus a count per phase.
/// </summary>
/// <param name="ActiveNodes">Nodes in phase active.</param>
/// <param name="TotalNodes">All registered nodes.</param>
/// <param name="ByStatus">Count per phase wire name; every phase is present.</param>
public sealed record SummaryResponse(
    [property: JsonPropertyName("active_nodes")] int ActiveNodes,
    [property: JsonPropertyName("total_nodes")] int TotalNodes,
    [property: JsonPropertyName("by_status")] IReadOnlyDictionary<string, int> ByStatus);

/// <summary>
/// One element of <c>GET /v1/nodes</c>: seed 000's fields (id, region, runtime, status, reputation, green_energy,
/// last_heartbeat) plus the node's declared and reported data. Times are RFC 3339 UTC.
/// </summary>
public sealed record NodeView
{
    /// <summary>Node id.</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }

    /// <summary>Region.</summary>
    [JsonPropertyName("region")] public required string Region { get; init; }

    /// <summary>Runtime wire name.</summary>
    [JsonPropertyName("runtime")] public required string Runtime { get; init; }

    /// <summary>Phase wire name.</summary>
    [JsonPropertyName("status")] public required string Status { get; init; }

    /// <summary>Reputation score, 0–100; seed 000 default 60.</summary>
    [JsonPropertyName("reputation")] public required double Reputation { get; init; }

    /// <summary>Declared green energy.</summary>
    [JsonPropertyName("green_energy")] public required bool GreenEnergy { get; init; }

    /// <summary>Time of the last valid heartbeat (UTC, <see cref="DateTimeKind.Utc"/>, serialized with a <c>Z</c> suffix as in seed 000), or null if none arrived yet.</summary>
    [JsonPropertyName("last_heartbeat")] public DateTime? LastHeartbeat { get; init; }

    /// <summary>Ready flag of the last heartbeat (false before the first).</summary>
    [JsonPropertyName("ready")] public bool Ready { get; init; }

    /// <summary>Declared network hint.</summary>
    [JsonPropertyName("asn_hint")] public string? AsnHint { get; init; }

    /// <summary>Declared wallet address.</summary>
    [JsonPropertyName("wallet_address")] public string? WalletAddress { get; init; }

    /// <summary>Whether the node has an enrolled Ed25519 key (issue 9); false for seed agents and after an admin reset.</summary>
    [JsonPropertyName("has_key")] public bool HasKey { get; init; }

    /// <summary>
    /// Id of the user who owns the node (issue 12). Like <see cref="WalletAddress"/> and <see cref="AsnHint"/>, shown only
    /// to admins and to the owner; null for everyone else.
    /// </summary>
    [JsonPropertyName("owner_id")] public string? OwnerId { get; init; }

    /// <summary>Last reported GPU utilisation ratio, if reported.</summary>
    [JsonPropertyName("gpu_util")] public double? GpuUtil { get; init; }

    /// <summary>Last reported memory in use (GB), if reported.</summary>
    [JsonPropertyName("mem_used_gb")] public double? MemUsedGb { get; init; }

    /// <summary>Last reported p95 latency (ms), if reported.</summary>
    [JsonPropertyName("p95_ms")] public double? P95Ms { get; init; }

    /// <summary>First registration time (UTC, <c>Z</c> suffix).</summary>
    [JsonPropertyName("created_at")] public DateTime CreatedAt { get; init; }
}

/// <summary>Source-generated System.Text.Json metadata for the v1 wire contract.</summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(RegisterRequest))]
[JsonSerializable(typeof(RegisterResponse))]
[JsonSerializable(typeof(HeartbeatRequest))]
[JsonSerializable(typeof(HeartbeatResponse))]
[JsonSerializable(typeof(ReceiptRequest))]
[JsonSerializable(typeof(ReceiptResponse))]
[JsonSerializable(typeof(SummaryResponse))]
[JsonSerializable(typeof(NodeView))]
[JsonSerializable(typeof(IReadOnlyList<NodeView>))]
[JsonSerializable(typeof(List<NodeView>))]
[JsonSerializable(typeof(RotateTokenResponse))]
[JsonSerializable(typeof(JoinTokenCreateRequest))]
[JsonSerializable(typeof(JoinTokenView))]
[JsonSerializable(typeof(List<JoinTokenView>))]
public sealed partial class DgonJsonContext : JsonSerializerContext;
