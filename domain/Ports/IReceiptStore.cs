using System.Text.Json;

namespace Dgon.Domain.Ports;

/// <summary>A validated work receipt (seed 000 receipts table: id, node_id, region, model_id, payload jsonb).</summary>
/// <param name="Id">Receipt id (request id).</param>
/// <param name="NodeId">Node that did the work (equals the authenticated X-Node-Id).</param>
/// <param name="Region">Region.</param>
/// <param name="ModelId">Model id.</param>
/// <param name="Payload">The receipt payload, a JSON object, kept whole.</param>
public sealed record WorkReceipt(string Id, string NodeId, string Region, string ModelId, JsonElement Payload);

/// <summary>Outcome of <see cref="IReceiptStore.AppendAsync"/>.</summary>
public enum ReceiptAppendResult
{
    /// <summary>Stored now (durably committed before returning).</summary>
    Created,

    /// <summary>The same id was stored before with the same content (JSON-equal): idempotent replay.</summary>
    Duplicate,

    /// <summary>The same id was stored before with different content: HTTP 409.</summary>
    Conflict,
}

/// <summary>Append-only persistence port for work receipts.</summary>
public interface IReceiptStore
{
    /// <summary>
    /// Stores a receipt unless its id exists. Content is compared as JSON (key order and white space do not matter).
    /// Returns only after the write is durable (acknowledged receipts survive a crash).
    /// </summary>
    Task<ReceiptAppendResult> AppendAsync(WorkReceipt receipt, CancellationToken cancellationToken);
}
