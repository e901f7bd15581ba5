using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Dashboard.Api;

/// <summary>A DGON user as the API shows it (issue 12 contract: <c>{"id","email","name","role"}</c>).</summary>
public sealed record ApiUser
{
    /// <summary>User id; <c>admin-token</c> for the bootstrap admin token.</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>E-mail, or null for the admin token.</summary>
    [JsonPropertyName("email")] public string? Email { get; init; }

    /// <summary>Display name, may be null.</summary>
    [JsonPropertyName("name")] public string? Name { get; init; }

    /// <summary><c>admin</c>, <c>operator</c> or <c>viewer</c>.</summary>
    [JsonPropertyName("role")] public string Role { get; init; } = "";

    /// <summary>Null for a local account, <c>oidc</c> for a single-sign-on one (admin list only).</summary>
    [JsonPropertyName("external_login")] public string? ExternalLogin { get; init; }

    /// <summary>End of the lockout (admin list only), or null.</summary>
    [JsonPropertyName("locked_until")] public DateTimeOffset? LockedUntil { get; init; }

    /// <summary>Creation time (admin list only).</summary>
    [JsonPropertyName("created_at")] public DateTimeOffset? CreatedAt { get; init; }
}

/// <summary><c>POST /v1/auth/sessions</c> answer: the session token, its expiry and the user.</summary>
public sealed record ApiSession
{
    /// <summary>The session token <c>dgs_…</c>; kept server-side in the data-protected auth cookie only.</summary>
    [JsonPropertyName("token")] public string Token { get; init; } = "";

    /// <summary>Expiry of the session (UTC).</summary>
    [JsonPropertyName("expires_at")] public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Who signed in.</summary>
    [JsonPropertyName("user")] public ApiUser User { get; init; } = new();
}

/// <summary><c>GET /v1/me</c>.</summary>
public sealed record ApiMe
{
    /// <summary>User id.</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>E-mail or null.</summary>
    [JsonPropertyName("email")] public string? Email { get; init; }

    /// <summary>Display name or null.</summary>
    [JsonPropertyName("name")] public string? Name { get; init; }

    /// <summary>Role.</summary>
    [JsonPropertyName("role")] public string Role { get; init; } = "";

    /// <summary>Scopes of the credential.</summary>
    [JsonPropertyName("scopes")] public List<string> Scopes { get; init; } = [];

    /// <summary><c>session</c>, <c>api_key</c> or <c>admin_token</c>.</summary>
    [JsonPropertyName("credential")] public string? Credential { get; init; }
}

/// <summary><c>GET /v1/me/summary</c>: the seed 004 provider summary over the caller's own nodes.</summary>
public sealed record ProviderTotals
{
    /// <summary>Nodes owned.</summary>
    [JsonPropertyName("nodes_total")] public long NodesTotal { get; init; }

    /// <summary>Owned nodes that are active.</summary>
    [JsonPropertyName("nodes_online")] public long NodesOnline { get; init; }

    /// <summary>Requests served (receipts).</summary>
    [JsonPropertyName("receipts")] public long Receipts { get; init; }

    /// <summary>Input tokens served.</summary>
    [JsonPropertyName("tokens_input")] public long TokensInput { get; init; }

    /// <summary>Output tokens served.</summary>
    [JsonPropertyName("tokens_output")] public long TokensOutput { get; init; }

    /// <summary>Earnings in compute units; null until receipts carry them (issue 13), shown as "—".</summary>
    [JsonPropertyName("earnings_compute_units")] public decimal? EarningsComputeUnits { get; init; }
}

/// <summary>The owner of an API key or join token: <c>{"id","email"}</c>.</summary>
public sealed record ApiOwner
{
    /// <summary>User id.</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>E-mail or null.</summary>
    [JsonPropertyName("email")] public string? Email { get; init; }
}

/// <summary>An API key view; <see cref="Key"/> only in the 201 of its creation (shown once).</summary>
public sealed record ApiKeyItem
{
    /// <summary>Key id (12 hex).</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>Name given at creation.</summary>
    [JsonPropertyName("name")] public string? Name { get; init; }

    /// <summary>Public prefix <c>dgk_&lt;id&gt;</c>.</summary>
    [JsonPropertyName("prefix")] public string? Prefix { get; init; }

    /// <summary>Scopes.</summary>
    [JsonPropertyName("scopes")] public List<string> Scopes { get; init; } = [];

    /// <summary>Owner, or null.</summary>
    [JsonPropertyName("owner")] public ApiOwner? Owner { get; init; }

    /// <summary>Creation time.</summary>
    [JsonPropertyName("created_at")] public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>Expiry, or null for none.</summary>
    [JsonPropertyName("expires_at")] public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Last use, or null.</summary>
    [JsonPropertyName("last_used_at")] public DateTimeOffset? LastUsedAt { get; init; }

    /// <summary>Revocation time, or null.</summary>
    [JsonPropertyName("revoked_at")] public DateTimeOffset? RevokedAt { get; init; }

    /// <summary><c>active</c>, <c>expired</c> or <c>revoked</c>.</summary>
    [JsonPropertyName("state")] public string? State { get; init; }

    /// <summary>The whole key <c>dgk_…</c>: in the creation answer only.</summary>
    [JsonPropertyName("key")] public string? Key { get; init; }
}

/// <summary>A join token as listed (issue 9 view plus the issue 12 <c>owner</c>); <see cref="Token"/> only on creation.</summary>
public sealed record JoinTokenItem
{
    /// <summary>Public id.</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>The whole token <c>id.secret</c>: in the creation answer only.</summary>
    [JsonPropertyName("token")] public string? Token { get; init; }

    /// <summary>Description or null.</summary>
    [JsonPropertyName("description")] public string? Description { get; init; }

    /// <summary>Expiry.</summary>
    [JsonPropertyName("expires_at")] public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Use limit or null (unlimited).</summary>
    [JsonPropertyName("max_uses")] public int? MaxUses { get; init; }

    /// <summary>Uses so far.</summary>
    [JsonPropertyName("uses")] public int Uses { get; init; }

    /// <summary>Region constraint or null.</summary>
    [JsonPropertyName("region")] public string? Region { get; init; }

    /// <summary><c>valid</c>, <c>expired</c>, <c>used_up</c> or <c>revoked</c>.</summary>
    [JsonPropertyName("state")] public string? State { get; init; }

    /// <summary>Creation time.</summary>
    [JsonPropertyName("created_at")] public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>Owner (operator tokens) or null, as the contract writes it (<c>{"id","email"}</c>).</summary>
    [JsonPropertyName("owner")] public ApiOwner? Owner { get; init; }

    /// <summary>Owner id as the API on main writes it (<c>owner_id</c>), or null.</summary>
    [JsonPropertyName("owner_id")] public string? OwnerId { get; init; }
}

/// <summary>An IP ban (admin).</summary>
public sealed record IpBan
{
    /// <summary>Ban id (string or number on the wire, kept as text).</summary>
    [JsonPropertyName("id")] public JsonElement Id { get; init; }

    /// <summary>CIDR, e.g. <c>203.0.113.7/32</c>.</summary>
    [JsonPropertyName("network")] public string Network { get; init; } = "";

    /// <summary>Reason or null.</summary>
    [JsonPropertyName("reason")] public string? Reason { get; init; }

    /// <summary>Expiry, or null for permanent.</summary>
    [JsonPropertyName("expires_at")] public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Creation time.</summary>
    [JsonPropertyName("created_at")] public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>Who banned it (actor id/name).</summary>
    [JsonPropertyName("created_by")] public JsonElement CreatedBy { get; init; }

    /// <summary>Whether the API banned it by itself (20 failed authentications in 10 min).</summary>
    [JsonPropertyName("automatic")] public bool Automatic { get; init; }

    /// <summary>The id as text for URLs and forms.</summary>
    public string IdText => JsonText.Of(Id);
}

/// <summary>An audit actor <c>{"id","name"}</c>.</summary>
public sealed record AuditActor
{
    /// <summary>Actor id.</summary>
    [JsonPropertyName("id")] public string? Id { get; init; }

    /// <summary>Actor name.</summary>
    [JsonPropertyName("name")] public string? Name { get; init; }
}

/// <summary>One audit log entry (admin), newest first.</summary>
public sealed record AuditEntry
{
    /// <summary>Entry id (increasing).</summary>
    [JsonPropertyName("id")] public long Id { get; init; }

    /// <summary>Time.</summary>
    [JsonPropertyName("at")] public DateTimeOffset? At { get; init; }

    /// <summary>Who did it.</summary>
    [JsonPropertyName("actor")] public AuditActor? Actor { get; init; }

    /// <summary>Credential used.</summary>
    [JsonPropertyName("credential")] public string? Credential { get; init; }

    /// <summary>Action, e.g. <c>user.create</c>.</summary>
    [JsonPropertyName("action")] public string Action { get; init; } = "";

    /// <summary>Target, e.g. <c>user:…</c>.</summary>
    [JsonPropertyName("target")] public string? Target { get; init; }

    /// <summary>Client address.</summary>
    [JsonPropertyName("address")] public string? Address { get; init; }

    /// <summary><c>success</c>, <c>denied</c> or <c>failure</c>.</summary>
    [JsonPropertyName("outcome")] public string? Outcome { get; init; }

    /// <summary>Free-form details.</summary>
    [JsonPropertyName("details")] public JsonElement Details { get; init; }
}

/// <summary>One page of the audit log with the <c>before</c> cursor of the next (older) page, if any.</summary>
/// <param name="Entries">Entries, newest first.</param>
/// <param name="NextBefore">The <c>before</c> parameter of the next page, or null at the end.</param>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Entries, string? NextBefore);

/// <summary>The JSON members of RFC 9457 problem details the dashboard shows.</summary>
public sealed record ProblemBody
{
    /// <summary>Problem type URI.</summary>
    [JsonPropertyName("type")] public string? Type { get; init; }

    /// <summary>Short title.</summary>
    [JsonPropertyName("title")] public string? Title { get; init; }

    /// <summary>Explanation.</summary>
    [JsonPropertyName("detail")] public string? Detail { get; init; }

    /// <summary>Validation errors (ASP.NET Core validation problem), member → messages.</summary>
    [JsonPropertyName("errors")] public Dictionary<string, string[]>? Errors { get; init; }
}

/// <summary>Text of a JSON value that may be a string or a number (ids) or an object with a name.</summary>
public static class JsonText
{
    /// <summary>The string, the raw number, the <c>name</c>/<c>email</c>/<c>id</c> of an object, or "" for null/undefined.</summary>
    public static string Of(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? "",
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.Object => value.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() ?? ""
            : value.TryGetProperty("email", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() ?? ""
            : value.TryGetProperty("id", out var i) ? Of(i) : "",
        JsonValueKind.Undefined or JsonValueKind.Null => "",
        _ => value.GetRawText(),
    };
}

/// <summary>Source-generated JSON metadata of the issue 12 account contracts.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ApiSession))]
[JsonSerializable(typeof(ApiMe))]
[JsonSerializable(typeof(ApiUser))]
[JsonSerializable(typeof(List<ApiUser>))]
[JsonSerializable(typeof(ProviderTotals))]
[JsonSerializable(typeof(ApiKeyItem))]
[JsonSerializable(typeof(List<ApiKeyItem>))]
[JsonSerializable(typeof(JoinTokenItem))]
[JsonSerializable(typeof(List<JoinTokenItem>))]
[JsonSerializable(typeof(IpBan))]
[JsonSerializable(typeof(List<IpBan>))]
[JsonSerializable(typeof(List<AuditEntry>))]
[JsonSerializable(typeof(ProblemBody))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(int))]
public sealed partial class DashboardJsonContext : JsonSerializerContext;
