using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Domain.Contracts;

/// <summary>
/// A receipt as <c>GET /v1/receipts</c> returns it (issue 13): seed 000's <c>{id, node_id, region, model_id, payload}</c>
/// — the signed part, payload with its <c>signature</c> — plus what the control plane adds: the API key of the request
/// (admins only), the signature status it found, and when it stored the receipt. The whole object can be posted to
/// <c>POST /v1/receipts/verify</c>.
/// </summary>
public sealed record ReceiptView
{
    /// <summary>Receipt id (the task id).</summary>
    public required string Id { get; init; }

    /// <summary>Node that served it.</summary>
    public required string NodeId { get; init; }

    /// <summary>Its region.</summary>
    public required string Region { get; init; }

    /// <summary>Model id.</summary>
    public required string ModelId { get; init; }

    /// <summary>Payload as stored (<c>ts_start</c>, <c>ts_end</c>, <c>tokens_input</c>, <c>tokens_output</c>, <c>p95_ms</c>, <c>prompt_hash</c>, <c>proof</c>, <c>signature</c>, …).</summary>
    public required JsonElement Payload { get; init; }

    /// <summary>API key id of the gateway request (shown to admins), or null.</summary>
    public string? ApiKeyId { get; init; }

    /// <summary><c>valid</c>, <c>invalid</c> or <c>unsigned</c>, as checked before storing.</summary>
    public required string SignatureStatus { get; init; }

    /// <summary>When stored (UTC).</summary>
    public required DateTime CreatedAt { get; init; }
}

/// <summary>Answer of <c>POST /v1/receipts/verify</c> (seed 001's "simple signature verifier").</summary>
/// <param name="Valid">Whether <c>payload.signature</c> verifies under the node's enrolled key.</param>
/// <param name="Reason">Why not: <c>unknown_node</c>, <c>no_key</c>, <c>malformed_receipt</c>, <c>no_signature</c>, <c>malformed_signature</c>, <c>bad_key</c>, <c>bad_signature</c>; null when valid.</param>
public sealed record ReceiptVerifyResponse(bool Valid, string? Reason);

/// <summary>Usage of one API key or node from its receipts.</summary>
/// <param name="Key">API key id or node id.</param>
/// <param name="Requests">Requests served (receipts).</param>
/// <param name="TokensInput">Input tokens.</param>
/// <param name="TokensOutput">Output tokens.</param>
public sealed record UsageView(string Key, long Requests, long TokensInput, long TokensOutput);

/// <summary>Source-generated JSON of the receipt contracts (snake_case).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ReceiptView))]
[JsonSerializable(typeof(List<ReceiptView>))]
[JsonSerializable(typeof(ReceiptVerifyResponse))]
[JsonSerializable(typeof(UsageView))]
[JsonSerializable(typeof(List<UsageView>))]
public sealed partial class ReceiptJsonContext : JsonSerializerContext;
