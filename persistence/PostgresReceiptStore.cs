using Dgon.Domain.Ports;
using Microsoft.EntityFrameworkCore;
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
                    INSERT INTO receipts (id, node_id, region, model_id, payload)
                    VALUES ({receipt.Id}, {receipt.NodeId}, {receipt.Region}, {receipt.ModelId}, {payload})
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
}
