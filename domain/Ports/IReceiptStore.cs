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

    /// <summary>Receipts newest first (by storage time, then id), filtered (issue 13's receipts explorer).</summary>
    Task<IReadOnlyList<StoredReceipt>> ListAsync(ReceiptQuery query, CancellationToken cancellationToken);

    /// <summary>Usage from receipts: requests and tokens per API key (<paramref name="byKey"/>) or per node.</summary>
    /// <param name="byKey">Group by API key (receipts without one are left out), else by node.</param>
    /// <param name="ownerId">Only keys owned by this user, or nodes owned by them; null for everything.</param>
    /// <param name="since">Only receipts stored since then, or all.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    Task<IReadOnlyList<UsageRow>> UsageAsync(bool byKey, string? ownerId, DateTimeOffset? since, CancellationToken cancellationToken);
}

/// <summary>Filter and page of a receipt listing; every filter is optional.</summary>
/// <param name="Limit">Page size, 1–1000.</param>
public sealed record ReceiptQuery(int Limit)
{
    /// <summary>Only this node's receipts.</summary>
    public string? NodeId { get; init; }

    /// <summary>Only receipts of this model.</summary>
    public string? ModelId { get; init; }

    /// <summary>Only receipts of requests made with this API key.</summary>
    public string? ApiKeyId { get; init; }

    /// <summary>Only receipts stored at or after this time.</summary>
    public DateTimeOffset? Since { get; init; }

    /// <summary>Only receipts stored before this time.</summary>
    public DateTimeOffset? Until { get; init; }

    /// <summary>Keyset cursor: only receipts strictly older than (time, id).</summary>
    public (DateTimeOffset CreatedAt, string Id)? Before { get; init; }

    /// <summary>Only receipts of nodes this user owns (an operator's view).</summary>
    public string? OwnerId { get; init; }
}

/// <summary>A stored receipt and when it was stored.</summary>
/// <param name="Receipt">The receipt, with its API key and signature status.</param>
/// <param name="CreatedAt">Storage time (UTC).</param>
public sealed record StoredReceipt(WorkReceipt Receipt, DateTimeOffset CreatedAt);

/// <summary>Usage of one API key or node.</summary>
/// <param name="Key">API key id or node id.</param>
/// <param name="Requests">Receipts.</param>
/// <param name="TokensInput">Sum of payload <c>tokens_input</c>.</param>
/// <param name="TokensOutput">Sum of payload <c>tokens_output</c>.</param>
public sealed record UsageRow(string Key, long Requests, long TokensInput, long TokensOutput);
