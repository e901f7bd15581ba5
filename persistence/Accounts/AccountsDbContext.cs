using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Persistence.Accounts;

/// <summary>
/// A person with an account (issue 12): ASP.NET Core Identity's user (hashed password, lockout counters, unique
/// e-mail) in the table <c>users</c>, plus a display name. Written only by the API (accounts endpoints, logins).
/// </summary>
public sealed class DgonUser : IdentityUser
{
    /// <summary>Name shown in the dashboard and the audit log, at most 100 characters, or null.</summary>
    public string? DisplayName { get; set; }

    /// <summary>When the account was created (UTC).</summary>
    public DateTime CreatedAt { get; set; }
}

/// <summary>
/// EF Core context of accounts over the schema of migration <c>0004_accounts.sql</c> (<see cref="SqlMigrator"/>
/// creates it; this context never does): ASP.NET Core Identity's stores (users, roles, their claims, logins and
/// tokens) under snake_case names, and the API's sessions and API keys. (IP bans and the audit log are written with
/// plain Npgsql by the API's <c>IpBanList</c> and <c>AuditLog</c>.)
/// </summary>
public sealed class AccountsDbContext(DbContextOptions<AccountsDbContext> options) : IdentityDbContext<DgonUser>(options)
{
    /// <summary>The <c>user_sessions</c> table.</summary>
    public DbSet<SessionEntity> Sessions => Set<SessionEntity>();

    /// <summary>The <c>api_keys</c> table.</summary>
    public DbSet<ApiKeyEntity> ApiKeys => Set<ApiKeyEntity>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        base.OnModelCreating(builder);
        builder.Entity<DgonUser>().ToTable("users");
        builder.Entity<IdentityRole>().ToTable("roles");
        builder.Entity<IdentityUserRole<string>>().ToTable("user_roles");
        builder.Entity<IdentityUserClaim<string>>().ToTable("user_claims");
        builder.Entity<IdentityUserLogin<string>>().ToTable("user_logins");
        builder.Entity<IdentityUserToken<string>>().ToTable("user_tokens");
        builder.Entity<IdentityRoleClaim<string>>().ToTable("role_claims");
        builder.Entity<SessionEntity>(b =>
        {
            b.ToTable("user_sessions");
            b.HasKey(s => s.Id);
        });
        builder.Entity<ApiKeyEntity>(b =>
        {
            b.ToTable("api_keys");
            b.HasKey(k => k.Id);
        });
    }
}

/// <summary>
/// A row of <c>user_sessions</c>: a signed-in person's bearer token (stored as SHA-256 only). Written by the API at
/// login and logout; a user's sessions end when an admin changes their role or password or deletes them.
/// </summary>
public sealed class SessionEntity
{
    /// <summary>Public id (16 hex characters), for logs and the audit log; never the token.</summary>
    public required string Id { get; set; }

    /// <summary>Lowercase hex SHA-256 of the token.</summary>
    public required string TokenSha256 { get; set; }

    /// <summary>The user, or null for a session of the admin token (issue 9's bootstrap credential).</summary>
    public string? UserId { get; set; }

    /// <summary>How the person signed in: <c>password</c>, <c>admin_token</c> or <c>oidc</c>.</summary>
    public required string Method { get; set; }

    /// <summary>Client address at login.</summary>
    public string? Address { get; set; }

    /// <summary>Creation time (UTC).</summary>
    public DateTime CreatedAt { get; set; }

    /// <summary>Expiry (UTC).</summary>
    public DateTime ExpiresAt { get; set; }

    /// <summary>Logout or revocation time (UTC), or null.</summary>
    public DateTime? RevokedAt { get; set; }
}

/// <summary>
/// A row of <c>api_keys</c>: programmatic credential <c>dgk_&lt;id&gt;_&lt;secret&gt;</c>, secret stored as SHA-256
/// only. Written by the API (create, revoke; <see cref="LastUsedAt"/> at most once a minute per key).
/// </summary>
public sealed class ApiKeyEntity
{
    /// <summary>Public id, 12 lowercase hex characters; the key's prefix is <c>dgk_</c> + id.</summary>
    public required string Id { get; set; }

    /// <summary>Lowercase hex SHA-256 of the secret part.</summary>
    public required string SecretSha256 { get; set; }

    /// <summary>Name given by its owner, 1–100 characters.</summary>
    public required string Name { get; set; }

    /// <summary>Owner, or null for keys created with the admin token.</summary>
    public string? UserId { get; set; }

    /// <summary>Scopes granted at creation (<c>nodes:read</c>, <c>receipts:read</c>, <c>inference</c>, <c>admin</c>).</summary>
    public required string[] Scopes { get; set; }

    /// <summary>Creation time (UTC).</summary>
    public DateTime CreatedAt { get; set; }

    /// <summary>Expiry (UTC), or null for none.</summary>
    public DateTime? ExpiresAt { get; set; }

    /// <summary>Last authenticated use (UTC, updated at most once a minute), or null.</summary>
    public DateTime? LastUsedAt { get; set; }

    /// <summary>Revocation time (UTC), or null.</summary>
    public DateTime? RevokedAt { get; set; }
}
