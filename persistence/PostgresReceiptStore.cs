using Dgon.Domain.Ports;
using Microsoft.EntityFrameworkCore;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="IReceiptStore"/> on PostgreSQL: one <c>INSERT … ON CONFLICT DO NOTHING</c> per receipt; on a conflict the
/// stored row is compared with jsonb equality (key order and white space do not matter). The insert commits before
/// the method returns (synchronous commit), so an acknowledged receipt survives a crash.
/// </summary>
public sealed class PostgresReceiptStore(DgonDbContext db) : IReceiptStore
{
    /// <inheritdoc />
    public async Task<ReceiptAppendResult> AppendAsync(WorkReceipt receipt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        var json = receipt.Payload.GetRawText();
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var payload = new NpgsqlParameter("payload", NpgsqlDbType.Jsonb) { Value = json };
            var stored = new NpgsqlParameter("stored", NpgsqlDbType.Jsonb) { Value = json };
            // A concurrent first insert of the same id makes ON CONFLICT wait and then skip, while the
            // comparison below runs on the statement's older snapshot and sees nothing: run again.
            var outcome = await db.Database.SqlQuery<string>($"""
                WITH ins AS (
                    INSERT INTO receipts (id, node_id, region, model_id, payload, api_key_id, signature_status)
                    VALUES ({receipt.Id}, {receipt.NodeId}, {receipt.Region}, {receipt.ModelId}, {payload}, {receipt.ApiKeyId}, {receipt.SignatureStatus})
                    ON CONFLICT (id) DO NOTHING
                    RETURNING 1)
                SELECT 'created' AS "Value" FROM ins
                UNION ALL
                SELECT CASE WHEN r.node_id = {receipt.NodeId} AND r.region = {receipt.Region}
                                 AND r.model_id = {receipt.ModelId} AND r.payload = {stored}
                            THEN 'duplicate' ELSE 'conflict' END
                FROM receipts r
                WHERE r.id = {receipt.Id} AND NOT EXISTS (SELECT 1 FROM ins)
                """).ToListAsync(cancellationToken);
            if (outcome.Count == 1)
            {
                return outcome[0] switch
                {
                    "created" => ReceiptAppendResult.Created,
                    "duplicate" => ReceiptAppendResult.Duplicate,
                    _ => ReceiptAppendResult.Conflict,
                };
            }
        }

        throw new InvalidOperationException($"receipt {receipt.Id}: neither inserted nor found after 3 attempts");
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredReceipt>> ListAsync(ReceiptQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var beforeTime = query.Before?.CreatedAt.UtcDateTime;
        var beforeId = query.Before?.Id;
        var since = query.Since?.UtcDateTime;
        var until = query.Until?.UtcDateTime;
        var rows = await db.Database.SqlQuery<ReceiptRow>($"""
            SELECT r.id AS "Id", r.node_id AS "NodeId", r.region AS "Region", r.model_id AS "ModelId", r.payload::text AS "Payload",
                   r.api_key_id AS "ApiKeyId", r.signature_status AS "SignatureStatus", r.created_at AS "CreatedAt"
            FROM receipts r
            WHERE ({query.NodeId}::text IS NULL OR r.node_id = {query.NodeId})
              AND ({query.ModelId}::text IS NULL OR r.model_id = {query.ModelId})
              AND ({query.ApiKeyId}::text IS NULL OR r.api_key_id = {query.ApiKeyId})
              AND ({since}::timestamptz IS NULL OR r.created_at >= {since})
              AND ({until}::timestamptz IS NULL OR r.created_at < {until})
              AND ({beforeTime}::timestamptz IS NULL OR (r.created_at, r.id) < ({beforeTime}::timestamptz, {beforeId}::text))
              AND ({query.OwnerId}::text IS NULL OR r.node_id IN (SELECT n.id FROM nodes n WHERE n.owner_id = {query.OwnerId}))
            ORDER BY r.created_at DESC, r.id DESC
            LIMIT {query.Limit}
            """).ToListAsync(cancellationToken);
        return rows.Select(r =>
        {
            using var payload = JsonDocument.Parse(r.Payload);
            return new StoredReceipt(
                new WorkReceipt(r.Id, r.NodeId, r.Region, r.ModelId, payload.RootElement.Clone()) { ApiKeyId = r.ApiKeyId, SignatureStatus = r.SignatureStatus },
                new DateTimeOffset(DateTime.SpecifyKind(r.CreatedAt, DateTimeKind.Utc)));
        }).ToList();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<UsageRow>> UsageAsync(bool byKey, string? ownerId, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var from = since?.UtcDateTime;
        var rows = byKey
            ? await db.Database.SqlQuery<UsageRow>($"""
                SELECT r.api_key_id AS "Key", count(*) AS "Requests",
                       coalesce(sum(CASE WHEN jsonb_typeof(r.payload->'tokens_input') = 'number' THEN (r.payload->>'tokens_input')::numeric END), 0)::bigint AS "TokensInput",
                       coalesce(sum(CASE WHEN jsonb_typeof(r.payload->'tokens_output') = 'number' THEN (r.payload->>'tokens_output')::numeric END), 0)::bigint AS "TokensOutput"
                FROM receipts r
                WHERE r.api_key_id IS NOT NULL AND ({from}::timestamptz IS NULL OR r.created_at >= {from})
                  AND ({ownerId}::text IS NULL OR r.api_key_id IN (SELECT k.id FROM api_keys k WHERE k.user_id = {ownerId}))
                GROUP BY r.api_key_id ORDER BY 2 DESC, 1 LIMIT 10000
                """).ToListAsync(cancellationToken)
            : await db.Database.SqlQuery<UsageRow>($"""
                SELECT r.node_id AS "Key", count(*) AS "Requests",
                       coalesce(sum(CASE WHEN jsonb_typeof(r.payload->'tokens_input') = 'number' THEN (r.payload->>'tokens_input')::numeric END), 0)::bigint AS "TokensInput",
                       coalesce(sum(CASE WHEN jsonb_typeof(r.payload->'tokens_output') = 'number' THEN (r.payload->>'tokens_output')::numeric END), 0)::bigint AS "TokensOutput"
                FROM receipts r
                WHERE ({from}::timestamptz IS NULL OR r.created_at >= {from})
                  AND ({ownerId}::text IS NULL OR r.node_id IN (SELECT n.id FROM nodes n WHERE n.owner_id = {ownerId}))
                GROUP BY r.node_id ORDER BY 2 DESC, 1 LIMIT 10000
                """).ToListAsync(cancellationToken);
        return rows;
    }

    /// <summary>A row of the listing query.</summary>
    private sealed record ReceiptRow(string Id, string NodeId, string Region, string ModelId, string Payload, string? ApiKeyId, string SignatureStatus, DateTime CreatedAt);
}
