using Dgon.Domain.Auth;
using Dgon.Domain.Ports;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="IJoinTokenStore"/> on the PostgreSQL table <c>join_tokens</c> (standalone mode). The secret is stored
/// as its SHA-256 only. Consumption locks the row (<c>SELECT … FOR UPDATE</c>), so two registrations can never both
/// take the last use.
/// </summary>
public sealed class PostgresJoinTokenStore(DgonDbContext db, TimeProvider clock) : IJoinTokenStore
{
    /// <inheritdoc />
    public async Task<(JoinTokenRecord Record, JoinTokenCredential Token)> CreateAsync(JoinTokenSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var now = clock.GetUtcNow();
        for (var attempt = 1; ; attempt++)
        {
            var token = JoinTokens.New();
            var entity = new JoinTokenEntity
            {
                Id = token.Id,
                SecretSha256 = JoinTokens.HashSecret(token.Secret),
                Description = spec.Description,
                Region = spec.Region,
                ExpiresAt = (now + spec.Ttl).UtcDateTime,
                MaxUses = spec.MaxUses,
                CreatedAt = now.UtcDateTime,
                OwnerId = spec.OwnerId,
            };
            db.JoinTokens.Add(entity);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return (ToRecord(entity), token);
            }
            catch (DbUpdateException e) when (attempt < 3 && e.InnerException is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.UniqueViolation })
            {
                // 36^6 ids: a collision is rare but possible; draw again.
                db.ChangeTracker.Clear();
            }
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JoinTokenRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var rows = await db.JoinTokens.AsNoTracking().OrderByDescending(t => t.CreatedAt).ThenBy(t => t.Id).ToListAsync(cancellationToken);
        return rows.Select(ToRecord).ToList();
    }

    /// <inheritdoc />
    public async Task<JoinTokenRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        var row = await db.JoinTokens.AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, cancellationToken);
        return row is null ? null : ToRecord(row);
    }

    /// <inheritdoc />
    public async Task<bool> RevokeAsync(string id, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var rows = await db.Database.ExecuteSqlAsync(
            $"UPDATE join_tokens SET revoked_at = coalesce(revoked_at, {now}) WHERE id = {id}", cancellationToken);
        return rows > 0;
    }

    /// <inheritdoc />
    public async Task<JoinTokenCheck> TryConsumeAsync(JoinTokenCredential token, string region, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(token);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var row = await db.JoinTokens.FromSql($"SELECT * FROM join_tokens WHERE id = {token.Id} FOR UPDATE").SingleOrDefaultAsync(cancellationToken);
        if (row is null || !JoinTokens.SecretMatches(token.Secret, row.SecretSha256))
        {
            return JoinTokenCheck.Unknown;
        }

        var check = JoinTokens.Check(ToRecord(row), region, clock.GetUtcNow());
        if (check == JoinTokenCheck.Ok)
        {
            row.Uses++;
            await db.SaveChangesAsync(cancellationToken);
            await tx.CommitAsync(cancellationToken);
        }

        return check;
    }

    private static JoinTokenRecord ToRecord(JoinTokenEntity t) => new()
    {
        Id = t.Id,
        Description = t.Description,
        Region = t.Region,
        ExpiresAt = Utc(t.ExpiresAt),
        MaxUses = t.MaxUses,
        Uses = t.Uses,
        RevokedAt = t.RevokedAt is { } r ? Utc(r) : null,
        CreatedAt = Utc(t.CreatedAt),
        OwnerId = t.OwnerId,
    };

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}
