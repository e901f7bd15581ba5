using System.Text.Json.Serialization;
using Dgon.Domain.Accounts;

namespace Dgon.Domain.Contracts;

/// <summary><c>POST /v1/auth/sessions</c>: e-mail and password, or the admin token alone (bootstrap, issue 9's credential).</summary>
public sealed record LoginRequest
{
    /// <summary>E-mail of a local account.</summary>
    public string? Email { get; init; }

    /// <summary>Its password.</summary>
    public string? Password { get; init; }

    /// <summary>The admin token instead of e-mail and password.</summary>
    public string? AdminToken { get; init; }
}

/// <summary><c>POST /v1/auth/signup</c> (when <c>DGON_SIGNUP=true</c>) and <c>POST /v1/admin/users</c> (with <see cref="Role"/>).</summary>
public sealed record UserCreateRequest
{
    /// <summary>E-mail (unique, at most 256 characters).</summary>
    public string? Email { get; init; }

    /// <summary>Password, 12 to 256 characters (NIST SP 800-63B: length, no composition rules).</summary>
    public string? Password { get; init; }

    /// <summary>Display name, at most 100 characters, or null.</summary>
    public string? Name { get; init; }

    /// <summary>Role (admin only): admin, operator or viewer. Ignored by sign-up.</summary>
    public string? Role { get; init; }
}

/// <summary><c>PATCH /v1/admin/users/{id}</c>: what to change (absent fields stay).</summary>
public sealed record UserUpdateRequest
{
    /// <summary>New role, or null.</summary>
    public string? Role { get; init; }

    /// <summary>New password, or null.</summary>
    public string? Password { get; init; }

    /// <summary>New display name, or null.</summary>
    public string? Name { get; init; }
}

/// <summary><c>POST /v1/auth/sessions/oidc</c>: the ID token the dashboard received from the identity provider.</summary>
public sealed record OidcSessionRequest
{
    /// <summary>The ID token (a JWT).</summary>
    public string? IdToken { get; init; }
}

/// <summary>A user as listed.</summary>
public sealed record UserView
{
    /// <summary>User id, or <c>admin-token</c>.</summary>
    public required string Id { get; init; }

    /// <summary>E-mail, or null (the admin token).</summary>
    public string? Email { get; init; }

    /// <summary>Display name, or null.</summary>
    public string? Name { get; init; }

    /// <summary>Role.</summary>
    public required string Role { get; init; }

    /// <summary><c>oidc</c> for accounts of the identity provider, else null.</summary>
    public string? ExternalLogin { get; init; }

    /// <summary>End of a lockout in force (UTC), or null.</summary>
    public DateTime? LockedUntil { get; init; }

    /// <summary>Creation time (UTC), or null for the admin token.</summary>
    public DateTime? CreatedAt { get; init; }
}

/// <summary>201 of a login: the session token (shown once), its expiry and the user.</summary>
public sealed record SessionResponse
{
    /// <summary>Bearer token <c>dgs_…</c>.</summary>
    public required string Token { get; init; }

    /// <summary>Expiry (UTC).</summary>
    public required DateTime ExpiresAt { get; init; }

    /// <summary>Who signed in.</summary>
    public required UserView User { get; init; }
}

/// <summary><c>GET /v1/me</c>: the caller.</summary>
public sealed record MeResponse
{
    /// <summary>User id or <c>admin-token</c>.</summary>
    public required string Id { get; init; }

    /// <summary>E-mail or null.</summary>
    public string? Email { get; init; }

    /// <summary>Display name.</summary>
    public string? Name { get; init; }

    /// <summary>Role.</summary>
    public required string Role { get; init; }

    /// <summary>Effective scopes.</summary>
    public required IReadOnlyList<string> Scopes { get; init; }

    /// <summary><c>session</c>, <c>api_key</c> or <c>admin_token</c>.</summary>
    public required string Credential { get; init; }

    /// <summary>Key id when the credential is an API key.</summary>
    public string? ApiKeyId { get; init; }
}

/// <summary>Body of an API key creation.</summary>
public sealed record ApiKeyCreateRequest
{
    /// <summary>Name, 1–100 printable characters.</summary>
    public string? Name { get; init; }

    /// <summary>Scopes, at least one of <see cref="Accounts.Scopes.All"/>, none beyond the creator's role.</summary>
    public IReadOnlyList<string>? Scopes { get; init; }

    /// <summary>Expiry (future), or null for none.</summary>
    public DateTime? ExpiresAt { get; init; }
}

/// <summary>Owner of a key or token.</summary>
/// <param name="Id">User id or <c>admin-token</c>.</param>
/// <param name="Email">E-mail or null.</param>
public sealed record OwnerView(string Id, string? Email);

/// <summary>An API key as listed (never the secret); <see cref="Key"/> only in the 201 of its creation.</summary>
public sealed record ApiKeyView
{
    /// <summary>Id (12 hex).</summary>
    public required string Id { get; init; }

    /// <summary>The whole key, only at creation.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Key { get; init; }

    /// <summary>Name.</summary>
    public required string Name { get; init; }

    /// <summary>Public prefix <c>dgk_&lt;id&gt;</c>.</summary>
    public required string Prefix { get; init; }

    /// <summary>Scopes granted at creation.</summary>
    public required IReadOnlyList<string> Scopes { get; init; }

    /// <summary>Owner.</summary>
    public required OwnerView Owner { get; init; }

    /// <summary>Creation (UTC).</summary>
    public required DateTime CreatedAt { get; init; }

    /// <summary>Expiry (UTC) or null.</summary>
    public DateTime? ExpiresAt { get; init; }

    /// <summary>Last use (UTC, minute resolution) or null.</summary>
    public DateTime? LastUsedAt { get; init; }

    /// <summary>Revocation (UTC) or null.</summary>
    public DateTime? RevokedAt { get; init; }

    /// <summary><c>active</c>, <c>expired</c> or <c>revoked</c>.</summary>
    public required string State { get; init; }
}

/// <summary>Body of <c>POST /v1/admin/ip-bans</c>.</summary>
public sealed record IpBanCreateRequest
{
    /// <summary>An IP address or CIDR network.</summary>
    public string? Network { get; init; }

    /// <summary>Why, 1–200 characters.</summary>
    public string? Reason { get; init; }

    /// <summary>Length in seconds (60 to 31,536,000), or null until lifted.</summary>
    public long? DurationSeconds { get; init; }
}

/// <summary>An IP ban as listed.</summary>
public sealed record IpBanView
{
    /// <summary>Id.</summary>
    public required long Id { get; init; }

    /// <summary>Network in CIDR form.</summary>
    public required string Network { get; init; }

    /// <summary>Why.</summary>
    public required string Reason { get; init; }

    /// <summary>Expiry (UTC) or null.</summary>
    public DateTime? ExpiresAt { get; init; }

    /// <summary>Creation (UTC).</summary>
    public required DateTime CreatedAt { get; init; }

    /// <summary>Actor id, or <c>system</c>.</summary>
    public required string CreatedBy { get; init; }

    /// <summary>Set automatically after repeated authentication failures.</summary>
    public required bool Automatic { get; init; }

    /// <summary>When lifted (UTC) or null.</summary>
    public DateTime? LiftedAt { get; init; }
}

/// <summary>The actor of an audit entry.</summary>
/// <param name="Id">User id, <c>admin-token</c>, <c>anonymous</c> or <c>system</c>.</param>
/// <param name="Name">Name at the time, or null.</param>
public sealed record AuditActorView(string Id, string? Name);

/// <summary>An audit entry.</summary>
public sealed record AuditEntryView
{
    /// <summary>Id (increasing).</summary>
    public required long Id { get; init; }

    /// <summary>When (UTC).</summary>
    public required DateTime At { get; init; }

    /// <summary>Who.</summary>
    public required AuditActorView Actor { get; init; }

    /// <summary>Credential kind or null.</summary>
    public string? Credential { get; init; }

    /// <summary>Action, e.g. <c>user.create</c>.</summary>
    public required string Action { get; init; }

    /// <summary>Target or null.</summary>
    public string? Target { get; init; }

    /// <summary>Client address or null.</summary>
    public string? Address { get; init; }

    /// <summary><c>success</c>, <c>denied</c> or <c>failure</c>.</summary>
    public required string Outcome { get; init; }

    /// <summary>Details or null.</summary>
    public IReadOnlyDictionary<string, string?>? Details { get; init; }
}

/// <summary><c>GET /v1/me/summary</c>: seed 004's provider summary over the caller's own nodes.</summary>
public sealed record ProviderSummary
{
    /// <summary>Nodes owned.</summary>
    public required int NodesTotal { get; init; }

    /// <summary>Owned nodes in phase active.</summary>
    public required int NodesOnline { get; init; }

    /// <summary>Receipts of owned nodes (requests served).</summary>
    public required long Receipts { get; init; }

    /// <summary>Sum of payload <c>tokens_input</c> over those receipts.</summary>
    public required long TokensInput { get; init; }

    /// <summary>Sum of payload <c>tokens_output</c> over those receipts (tokens served).</summary>
    public required long TokensOutput { get; init; }

    /// <summary>Earnings in compute units: null until receipts carry them (the inference issue).</summary>
    public double? EarningsComputeUnits { get; init; }
}

/// <summary>Source-generated JSON of the account contracts (snake_case, as the rest of the API).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(LoginRequest))]
[JsonSerializable(typeof(UserCreateRequest))]
[JsonSerializable(typeof(UserUpdateRequest))]
[JsonSerializable(typeof(OidcSessionRequest))]
[JsonSerializable(typeof(UserView))]
[JsonSerializable(typeof(List<UserView>))]
[JsonSerializable(typeof(SessionResponse))]
[JsonSerializable(typeof(MeResponse))]
[JsonSerializable(typeof(ApiKeyCreateRequest))]
[JsonSerializable(typeof(ApiKeyView))]
[JsonSerializable(typeof(List<ApiKeyView>))]
[JsonSerializable(typeof(IpBanCreateRequest))]
[JsonSerializable(typeof(IpBanView))]
[JsonSerializable(typeof(List<IpBanView>))]
[JsonSerializable(typeof(AuditEntryView))]
[JsonSerializable(typeof(List<AuditEntryView>))]
[JsonSerializable(typeof(ProviderSummary))]
public sealed partial class AccountJsonContext : JsonSerializerContext;

/// <summary>Field rules of the account contracts (422 problems keyed by JSON field name).</summary>
public static class AccountValidator
{
    /// <summary>Shortest password (NIST SP 800-63B §3.1.1.2 asks for at least 8; we ask 12, and no composition rules).</summary>
    public const int MinPasswordLength = 12;

    /// <summary>Longest password accepted (bounds the hashing work).</summary>
    public const int MaxPasswordLength = 256;

    /// <summary>Rules of a new user: e-mail shape and length, password length, name length, role (when <paramref name="roleRequired"/>).</summary>
    public static Dictionary<string, string[]> Validate(UserCreateRequest request, bool roleRequired)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(request.Email) || request.Email.Length > 256 || !IsEmail(request.Email))
        {
            errors["email"] = ["must be an e-mail address of at most 256 characters"];
        }

        PasswordRule(request.Password, errors);
        if (request.Name is { Length: > 100 })
        {
            errors["name"] = ["must be at most 100 characters"];
        }

        if (roleRequired && !Roles.IsValid(request.Role))
        {
            errors["role"] = ["must be admin, operator or viewer"];
        }

        return errors;
    }

    /// <summary>Rules of a user update: role, password and name as for creation, each only when present.</summary>
    public static Dictionary<string, string[]> Validate(UserUpdateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request.Role is not null && !Roles.IsValid(request.Role))
        {
            errors["role"] = ["must be admin, operator or viewer"];
        }

        if (request.Password is not null)
        {
            PasswordRule(request.Password, errors);
        }

        if (request.Name is { Length: > 100 })
        {
            errors["name"] = ["must be at most 100 characters"];
        }

        return errors;
    }

    /// <summary>Rules of an API key: name 1–100 printable characters, 1–4 known scopes without repeats, expiry in the future.</summary>
    public static Dictionary<string, string[]> Validate(ApiKeyCreateRequest request, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100 || request.Name.Any(char.IsControl))
        {
            errors["name"] = ["must be 1 to 100 printable characters"];
        }

        if (request.Scopes is not { Count: > 0 } scopes || scopes.Any(s => !Scopes.IsValid(s)) || scopes.Distinct(StringComparer.Ordinal).Count() != scopes.Count)
        {
            errors["scopes"] = [$"must list one or more distinct scopes of: {string.Join(", ", Scopes.All)}"];
        }

        if (request.ExpiresAt is { } expires && new DateTimeOffset(DateTime.SpecifyKind(expires, DateTimeKind.Utc)) <= now)
        {
            errors["expires_at"] = ["must be in the future"];
        }

        return errors;
    }

    private static void PasswordRule(string? password, Dictionary<string, string[]> errors)
    {
        if (password is null || password.Length < MinPasswordLength || password.Length > MaxPasswordLength)
        {
            errors["password"] = [$"must be {MinPasswordLength} to {MaxPasswordLength} characters"];
        }
    }

    private static bool IsEmail(string text)
    {
        var at = text.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && at == text.LastIndexOf('@') && at < text.Length - 3 && text.IndexOf('.', at) > at + 1 && !text.Any(char.IsWhiteSpace);
    }
}
