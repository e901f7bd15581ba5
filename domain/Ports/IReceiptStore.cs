using System.Text.Json;

namespace Dgon.Domain.Ports;

/// <summary>A validated work receipt (seed 000 receipts table: id, node_id, region, model_id, payload jsonb).</summary>
/// <param name="Id">Receipt id (request id).</param>
/// <param name="NodeId">Node that did the work (equals the authenticated X-Node-Id).</param>
/// <param name="Region">Region.</param>
/// <param name="ModelId">Model id.</param>
/// <param name="Payload">The receipt payload, a JSON object, kept whole.</param>
public sealed record WorkReceipt(string Id, string NodeId, string Region, string ModelId, JsonElement Payload)
{
    /// <summary>
    /// The API key whose request the work served (issue 13: receipts the gateway writes), or null for receipts nodes
    /// post themselves. Not part of the signed receipt; written by the control plane.
    /// </summary>
    public string? ApiKeyId { get; init; }

    /// <summary>
    /// What the control plane found when it checked <c>payload.signature</c> against the node's enrolled key before
    /// storing: <c>valid</c>, <c>invalid</c> (stored as evidence), or <c>unsigned</c> (no <c>ed25519:</c> signature, e.g.
    /// the seed agent's sample receipt). Written by the API only.
    /// </summary>
    public string SignatureStatus { get; init; } = "unsigned";
}

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
