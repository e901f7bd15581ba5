using System.Security.Claims;
using Dgon.Domain.Accounts;

namespace Dgon.Api.Accounts;

/// <summary>
/// The claims of an authenticated person or program (issue 12), as <see cref="Auth.BearerAuthenticationHandler"/>
/// builds them: <see cref="ClaimTypes.NameIdentifier"/> (user id, or <see cref="AdminTokenActor"/>),
/// <see cref="ClaimTypes.Name"/>, <see cref="ClaimTypes.Role"/> (one of <see cref="Roles"/>), one
/// <see cref="Scope"/> claim per effective scope, <see cref="Credential"/> and <see cref="CredentialId"/>.
/// </summary>
public static class AccessClaims
{
    /// <summary>A scope the credential has now (<see cref="Scopes"/>).</summary>
    public const string Scope = "dgon:scope";

    /// <summary>Kind of credential: <see cref="SessionCredential"/>, <see cref="ApiKeyCredential"/> or <see cref="AdminTokenCredential"/>.</summary>
    public const string Credential = "dgon:credential";

    /// <summary>Public id of the session or API key (never the secret); absent for the admin token.</summary>
    public const string CredentialId = "dgon:credential_id";

    /// <summary>Credential kind of a signed-in person's session.</summary>
    public const string SessionCredential = "session";

    /// <summary>Credential kind of an API key.</summary>
    public const string ApiKeyCredential = "api_key";

    /// <summary>Credential kind of the admin token itself.</summary>
    public const string AdminTokenCredential = "admin_token";

    /// <summary>Actor id of the admin token (issue 9) and of what is done with it, in the audit log and as key owner.</summary>
    public const string AdminTokenActor = "admin-token";

    /// <summary>Authorization policy: scope <c>admin</c>.</summary>
    public const string AdminPolicy = "scope:admin";

    /// <summary>Authorization policy: scope <c>nodes:read</c>.</summary>
    public const string NodesReadPolicy = "scope:nodes:read";

    /// <summary>Authorization policy: scope <c>receipts:read</c>.</summary>
    public const string ReceiptsReadPolicy = "scope:receipts:read";

    /// <summary>Authorization policy: a person (session or admin token), not an API key: managing one's own keys, the provider summary.</summary>
    public const string PersonPolicy = "person";

    /// <summary>
    /// Authorization policy of join tokens and node actions: scope <c>admin</c>, or role operator signed in as a person
    /// (operators act on their own nodes only; the endpoints check ownership).
    /// </summary>
    public const string NodeManagementPolicy = "node-management";

    /// <summary>A principal for a credential.</summary>
    /// <param name="actorId">User id or <see cref="AdminTokenActor"/>.</param>
    /// <param name="name">E-mail or display name.</param>
    /// <param name="role">One of <see cref="Roles"/>.</param>
    /// <param name="scopes">Effective scopes.</param>
    /// <param name="credential">Credential kind.</param>
    /// <param name="credentialId">Session or key id, or null.</param>
    /// <param name="scheme">Authentication scheme name.</param>
    public static ClaimsPrincipal Principal(string actorId, string name, string role, IEnumerable<string> scopes, string credential, string? credentialId, string scheme)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, actorId),
            new(ClaimTypes.Name, name),
            new(ClaimTypes.Role, role),
            new(Credential, credential),
        };
        if (credentialId is not null)
        {
            claims.Add(new Claim(CredentialId, credentialId));
        }

        claims.AddRange(scopes.Select(s => new Claim(Scope, s)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, ClaimTypes.Name, ClaimTypes.Role));
    }

    /// <summary>The actor id (user id or <see cref="AdminTokenActor"/>), or null when anonymous.</summary>
    public static string? ActorId(this ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.Identity?.IsAuthenticated == true ? user.FindFirstValue(ClaimTypes.NameIdentifier) : null;
    }

    /// <summary>The user id when the principal is a user (not the admin token), else null.</summary>
    public static string? UserId(this ClaimsPrincipal user) =>
        user.ActorId() is { } id && id != AdminTokenActor ? id : null;

    /// <summary>The role, or null when anonymous.</summary>
    public static string? RoleName(this ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.Identity?.IsAuthenticated == true ? user.FindFirstValue(ClaimTypes.Role) : null;
    }

    /// <summary>Whether the credential has <paramref name="scope"/> now.</summary>
    public static bool HasScope(this ClaimsPrincipal user, string scope)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.HasClaim(Scope, scope);
    }

    /// <summary>The credential kind, or null when anonymous.</summary>
    public static string? CredentialKind(this ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.FindFirstValue(Credential);
    }

    /// <summary>Whether the principal sees every node and every owner-only field: admin scope.</summary>
    public static bool SeesEverything(this ClaimsPrincipal user) => user.HasScope(Scopes.Admin);

    /// <summary>
    /// The owner the principal's node reads are restricted to: its user id for role operator (without admin scope),
    /// null for everyone else (admins and viewers see the fleet; viewers without owner-only fields).
    /// </summary>
    public static string? RestrictedToOwner(this ClaimsPrincipal user) =>
        !user.SeesEverything() && user.RoleName() == Roles.Operator ? user.UserId() ?? "" : null;
}
