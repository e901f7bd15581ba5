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
public sealed class CredentialStore(AccountsDbContext db, TimeProvider clock)
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
        if (Credentials.IsSessionToken(token))
        {
            var hash = Credentials.Hash(token);
            var session = await db.Sessions.AsNoTracking()
                .Where(s => s.TokenSha256 == hash && s.RevokedAt == null && s.ExpiresAt > now)
                .Select(s => new
                {
                    s.Id,
                    s.UserId,
                    User = db.Users.Where(u => u.Id == s.UserId).Select(u => new { u.Email, u.DisplayName }).FirstOrDefault(),
                    Role = db.UserRoles.Where(r => r.UserId == s.UserId).Select(r => r.RoleId).FirstOrDefault(),
                })
                .FirstOrDefaultAsync(cancellationToken);
            if (session is null)
            {
                return null;
            }

            if (session.UserId is null)
            {
                return AccessClaims.Principal(AccessClaims.AdminTokenActor, "admin (token)", Roles.Admin, Scopes.All, AccessClaims.SessionCredential, session.Id, scheme);
            }

            var role = Roles.IsValid(session.Role) ? session.Role : Roles.Viewer;
            return AccessClaims.Principal(session.UserId, session.User?.Email ?? session.User?.DisplayName ?? session.UserId, role, Scopes.OfRole(role), AccessClaims.SessionCredential, session.Id, scheme);
        }

        if (!Credentials.TryParseApiKey(token, out var id, out var secret))
        {
            return null;
        }

        var key = await db.ApiKeys.AsNoTracking()
            .Where(k => k.Id == id)
            .Select(k => new
            {
                k.SecretSha256,
                k.UserId,
                k.Scopes,
                k.ExpiresAt,
                k.RevokedAt,
                k.LastUsedAt,
                Email = db.Users.Where(u => u.Id == k.UserId).Select(u => u.Email).FirstOrDefault(),
                Role = db.UserRoles.Where(r => r.UserId == k.UserId).Select(r => r.RoleId).FirstOrDefault(),
            })
            .FirstOrDefaultAsync(cancellationToken);
        if (key is null || !Credentials.Matches(secret, key.SecretSha256) || key.RevokedAt is not null || key.ExpiresAt <= now)
        {
            return null;
        }

        if (key.LastUsedAt is null || key.LastUsedAt < now - LastUsedResolution)
        {
            var stale = now - LastUsedResolution;
            await db.ApiKeys.Where(k => k.Id == id && (k.LastUsedAt == null || k.LastUsedAt < stale))
                .ExecuteUpdateAsync(u => u.SetProperty(k => k.LastUsedAt, now), cancellationToken);
        }

        var ownerRole = key.UserId is null ? Roles.Admin : Roles.IsValid(key.Role) ? key.Role : Roles.Viewer;
        var actor = key.UserId ?? AccessClaims.AdminTokenActor;
        return AccessClaims.Principal(actor, key.Email ?? (key.UserId is null ? "admin (token)" : actor), ownerRole, Scopes.Effective(key.Scopes, ownerRole), AccessClaims.ApiKeyCredential, id, scheme);
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
