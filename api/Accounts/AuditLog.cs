using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Api.Http;
using Npgsql;
using NpgsqlTypes;

namespace Dgon.Api.Accounts;

/// <summary>One audit entry: who did what, when, from where (issue 12).</summary>
/// <param name="Id">Row id (increasing), 0 before it is stored.</param>
/// <param name="At">When.</param>
/// <param name="ActorId">User id, <c>admin-token</c>, <c>anonymous</c> or <c>system</c>.</param>
/// <param name="ActorName">E-mail or name at the time, or null.</param>
/// <param name="Credential">Credential kind (<c>session</c>, <c>api_key</c>, <c>admin_token</c>), or null.</param>
/// <param name="Action">Dotted action, e.g. <c>user.create</c>.</param>
/// <param name="Target">What it was done to, e.g. <c>user:…</c>, <c>node:…</c>, or null.</param>
/// <param name="Address">Client address, or null.</param>
/// <param name="Outcome"><c>success</c>, <c>denied</c> or <c>failure</c>.</param>
/// <param name="Details">Further facts (strings), or null.</param>
public sealed record AuditEntry(long Id, DateTimeOffset At, string ActorId, string? ActorName, string? Credential, string Action, string? Target, string? Address, string Outcome, IReadOnlyDictionary<string, string?>? Details);

/// <summary>
/// The audit log (issue 12): the append-only table <c>audit_log</c>, written only here, for every admin and operator
/// action and every login. Written in the request (before the response), so an acknowledged action is on record.
/// </summary>
public sealed class AuditLog(NpgsqlDataSource dataSource, TimeProvider clock)
{
    /// <summary>Outcome of a completed action.</summary>
    public const string Success = "success";

    /// <summary>Outcome of a refused action (wrong password, locked account).</summary>
    public const string Denied = "denied";

    /// <summary>Records an action of the request's principal (or <c>anonymous</c>), from the request's client address.</summary>
    public Task WriteAsync(HttpContext context, string action, string? target, string outcome = Success, IReadOnlyDictionary<string, string?>? details = null, string? actorId = null, string? actorName = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var user = context.User;
        return WriteAsync(
            new AuditEntry(
                0,
                clock.GetUtcNow(),
                actorId ?? user.ActorId() ?? "anonymous",
                actorName ?? user.FindFirstValue(ClaimTypes.Name),
                user.CredentialKind(),
                action,
                target,
                NodeRequestLimits.ClientAddress(context),
                outcome,
                details),
            context.RequestAborted);
    }

    /// <summary>Stores an entry.</summary>
    /// <exception cref="NpgsqlException">The database failed.</exception>
    public async Task WriteAsync(AuditEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var command = dataSource.CreateCommand(
            "INSERT INTO audit_log (at, actor_id, actor_name, credential, action, target, address, outcome, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        command.Parameters.Add(new NpgsqlParameter { Value = entry.At.UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter { Value = entry.ActorId });
        command.Parameters.Add(Text(entry.ActorName));
        command.Parameters.Add(Text(entry.Credential));
        command.Parameters.Add(new NpgsqlParameter { Value = entry.Action });
        command.Parameters.Add(Text(entry.Target));
        command.Parameters.Add(Text(entry.Address));
        command.Parameters.Add(new NpgsqlParameter { Value = entry.Outcome });
        command.Parameters.Add(new NpgsqlParameter
        {
            NpgsqlDbType = NpgsqlDbType.Jsonb,
            Value = entry.Details is { } d ? new JsonObject(d.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)(kv.Value is null ? null : JsonValue.Create(kv.Value))))).ToJsonString() : DBNull.Value,
        });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Entries newest first, before id <paramref name="before"/> when given, of one actor and/or with an action prefix.</summary>
    /// <param name="before">Keyset cursor: only ids below it.</param>
    /// <param name="actor">Actor id filter, or null.</param>
    /// <param name="actionPrefix">Action prefix filter (e.g. <c>user.</c>), or null.</param>
    /// <param name="limit">1–1000.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    public async Task<IReadOnlyList<AuditEntry>> ListAsync(long? before, string? actor, string? actionPrefix, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id, at, actor_id, actor_name, credential, action, target, address, outcome, details::text FROM audit_log
            WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR actor_id = $2) AND ($3::text IS NULL OR starts_with(action, $3))
            ORDER BY id DESC LIMIT $4
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)before ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(Text(actor));
        command.Parameters.Add(Text(actionPrefix));
        command.Parameters.Add(new NpgsqlParameter { Value = limit });
        var entries = new List<AuditEntry>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            Dictionary<string, string?>? details = null;
            if (!reader.IsDBNull(9))
            {
                using var json = JsonDocument.Parse(reader.GetString(9));
                details = json.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.Null ? null : p.Value.ToString(), StringComparer.Ordinal);
            }

            entries.Add(new AuditEntry(
                reader.GetInt64(0),
                new DateTimeOffset(DateTime.SpecifyKind(reader.GetDateTime(1), DateTimeKind.Utc)),
                reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetString(6),
                reader.IsDBNull(7) ? null : reader.GetString(7),
                reader.GetString(8),
                details));
        }

        return entries;
    }

    private static NpgsqlParameter Text(string? value) => new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };
}
