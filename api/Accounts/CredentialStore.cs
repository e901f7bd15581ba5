using System.Security.Claims;
using Dgon.Domain.Accounts;
using Dgon.Persistence.Accounts;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Api.Accounts;

/// <summary>An API key as listed (never the secret).</summary>
/// <param name="Key">The row.</param>
/// <param name="OwnerEmail">The owner's e-mail, or null (admin token, or an owner without one).</param>
public sealed record ApiKeyListing(ApiKeyEntity Key, string? OwnerEmail);

/// <summary>
/// Sessions and API keys in PostgreSQL (issue 12; tables <c>user_sessions</c> and <c>api_keys</c>, the API their only
/// writer). Every authenticated request looks its credential up here, so a logout, a revoked key or a changed role
/// takes effect at once on every replica (no cache to invalidate; one indexed lookup per request).
/// </summary>
public sealed class CredentialStore(AccountsDbContext db, Npgsql.NpgsqlDataSource dataSource, TimeProvider clock)
{
    /// <summary>An API key's last-used time is written at most this often.</summary>
    public static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    /// <summary>Starts a session for <paramref name="userId"/> (null: the admin token) lasting <paramref name="lifetime"/>.</summary>
    /// <returns>The row and the token (returned here once; stored as SHA-256).</returns>
    public async Task<(SessionEntity Session, string Token)> CreateSessionAsync(string? userId, string method, string? address, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var token = Credentials.NewSessionToken();
        var session = new SessionEntity
        {
            Id = Credentials.NewSessionId(),
            TokenSha256 = Credentials.Hash(token),
            UserId = userId,
            Method = method,
            Address = address,
            CreatedAt = now,
            ExpiresAt = now + lifetime,
        };
        db.Sessions.Add(session);
        await db.SaveChangesAsync(cancellationToken);
        return (session, token);
    }

    /// <summary>Ends a session (logout). False when it was not active.</summary>
    public async Task<bool> EndSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        return await db.Sessions.Where(s => s.Id == sessionId && s.RevokedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.RevokedAt, now), cancellationToken) > 0;
    }

    /// <summary>Ends every session of a user (role or password changed). Returns how many.</summary>
    public async Task<int> EndUserSessionsAsync(string userId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        return await db.Sessions.Where(s => s.UserId == userId && s.RevokedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.RevokedAt, now), cancellationToken);
    }

    /// <summary>
    /// The principal of a session token or API key, or null when it is unknown, expired or revoked (or has no
    /// shape of either). An API key's scopes are cut to its owner's current role (<see cref="Scopes.Effective"/>).
    /// </summary>
    public async Task<ClaimsPrincipal?> ResolveAsync(string token, string scheme, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(token);
        var now = clock.GetUtcNow().UtcDateTime;
        // One indexed statement per request on the shared pool (plain Npgsql: this runs on every authenticated call,
        // the gateway's included), so a revocation on any replica holds from the next request on.
        if (Credentials.IsSessionToken(token))
        {
            await using var session = dataSource.CreateCommand("""
                SELECT s.id, s.user_id, u.email, u.display_name, r.role_id
                FROM user_sessions s
                LEFT JOIN users u ON u.id = s.user_id
                LEFT JOIN LATERAL (SELECT role_id FROM user_roles WHERE user_id = s.user_id LIMIT 1) r ON true
                WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                """);
            session.Parameters.Add(new Npgsql.NpgsqlParameter { Value = Credentials.Hash(token) });
            session.Parameters.Add(new Npgsql.NpgsqlParameter { Value = now });
            await using var row = await session.ExecuteReaderAsync(cancellationToken);
            if (!await row.ReadAsync(cancellationToken))
            {
                return null;
            }

            var sessionId = row.GetString(0);
            if (row.IsDBNull(1))
            {
                return AccessClaims.Principal(AccessClaims.AdminTokenActor, "admin (token)", Roles.Admin, Scopes.All, AccessClaims.SessionCredential, sessionId, scheme);
            }

            var userId = row.GetString(1);
            var email = row.IsDBNull(2) ? null : row.GetString(2);
            var displayName = row.IsDBNull(3) ? null : row.GetString(3);
            var storedRole = row.IsDBNull(4) ? null : row.GetString(4);
            var role = Roles.IsValid(storedRole) ? storedRole : Roles.Viewer;
            return AccessClaims.Principal(userId, email ?? displayName ?? userId, role, Scopes.OfRole(role), AccessClaims.SessionCredential, sessionId, scheme);
        }

        if (!Credentials.TryParseApiKey(token, out var id, out var secret))
        {
            return null;
        }

        string secretSha256;
        string? ownerId, ownerEmail, ownerRole;
        string[] scopes;
        DateTime? expiresAt, revokedAt, lastUsedAt;
        await using (var key = dataSource.CreateCommand("""
            SELECT k.secret_sha256, k.user_id, k.scopes, k.expires_at, k.revoked_at, k.last_used_at, u.email, r.role_id
            FROM api_keys k
            LEFT JOIN users u ON u.id = k.user_id
            LEFT JOIN LATERAL (SELECT role_id FROM user_roles WHERE user_id = k.user_id LIMIT 1) r ON true
            WHERE k.id = $1
            """))
        {
            key.Parameters.Add(new Npgsql.NpgsqlParameter { Value = id });
            await using var row = await key.ExecuteReaderAsync(cancellationToken);
            if (!await row.ReadAsync(cancellationToken))
            {
                return null;
            }

            secretSha256 = row.GetString(0);
            ownerId = row.IsDBNull(1) ? null : row.GetString(1);
            scopes = row.GetFieldValue<string[]>(2);
            expiresAt = row.IsDBNull(3) ? null : row.GetDateTime(3);
            revokedAt = row.IsDBNull(4) ? null : row.GetDateTime(4);
            lastUsedAt = row.IsDBNull(5) ? null : row.GetDateTime(5);
            ownerEmail = row.IsDBNull(6) ? null : row.GetString(6);
            ownerRole = row.IsDBNull(7) ? null : row.GetString(7);
        }

        if (!Credentials.Matches(secret, secretSha256) || revokedAt is not null || expiresAt <= now)
        {
            return null;
        }

        if (lastUsedAt is null || lastUsedAt < now - LastUsedResolution)
        {
            await using var touch = dataSource.CreateCommand("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)");
            touch.Parameters.Add(new Npgsql.NpgsqlParameter { Value = id });
            touch.Parameters.Add(new Npgsql.NpgsqlParameter { Value = now });
            touch.Parameters.Add(new Npgsql.NpgsqlParameter { Value = now - LastUsedResolution });
            await touch.ExecuteNonQueryAsync(cancellationToken);
        }

        var effectiveRole = ownerId is null ? Roles.Admin : Roles.IsValid(ownerRole) ? ownerRole : Roles.Viewer;
        var actor = ownerId ?? AccessClaims.AdminTokenActor;
        return AccessClaims.Principal(actor, ownerEmail ?? (ownerId is null ? "admin (token)" : actor), effectiveRole, Scopes.Effective(scopes, effectiveRole), AccessClaims.ApiKeyCredential, id, scheme);
    }

    /// <summary>Creates an API key owned by <paramref name="ownerId"/> (null: the admin token).</summary>
    /// <returns>The row and the whole key (returned here once; the secret is stored as SHA-256).</returns>
    public async Task<(ApiKeyEntity Key, string Secret)> CreateApiKeyAsync(string? ownerId, string name, IReadOnlyList<string> scopes, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        var (id, whole) = Credentials.NewApiKey();
        Credentials.TryParseApiKey(whole, out _, out var secret);
        var key = new ApiKeyEntity
        {
            Id = id,
            SecretSha256 = Credentials.Hash(secret!),
            Name = name,
            UserId = ownerId,
            Scopes = [.. scopes],
            CreatedAt = clock.GetUtcNow().UtcDateTime,
            ExpiresAt = expiresAt?.UtcDateTime,
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(cancellationToken);
        return (key, whole);
    }

    /// <summary>API keys, newest first: of <paramref name="ownerId"/> when <paramref name="onlyOwner"/>, else every key.</summary>
    public async Task<IReadOnlyList<ApiKeyListing>> ListApiKeysAsync(bool onlyOwner, string? ownerId, CancellationToken cancellationToken)
    {
        var query = db.ApiKeys.AsNoTracking();
        if (onlyOwner)
        {
            query = query.Where(k => k.UserId == ownerId);
        }

        return await query.OrderByDescending(k => k.CreatedAt).ThenBy(k => k.Id)
            .Select(k => new ApiKeyListing(k, db.Users.Where(u => u.Id == k.UserId).Select(u => u.Email).FirstOrDefault()))
            .ToListAsync(cancellationToken);
    }

    /// <summary>Revokes a key (of <paramref name="ownerId"/> only, when <paramref name="onlyOwner"/>). False when there is no such key.</summary>
    public async Task<bool> RevokeApiKeyAsync(string id, bool onlyOwner, string? ownerId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var query = db.ApiKeys.Where(k => k.Id == id);
        if (onlyOwner)
        {
            query = query.Where(k => k.UserId == ownerId);
        }

        if (!await query.AnyAsync(cancellationToken))
        {
            return false;
        }

        await query.Where(k => k.RevokedAt == null).ExecuteUpdateAsync(u => u.SetProperty(k => k.RevokedAt, now), cancellationToken);
        return true;
    }
}
