using System.Text.Json;
using System.Text.Json.Serialization;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;

namespace Dgon.Agent;

/// <summary>
/// Payload of the sample receipt (shape of seed 000's receipt payload, only the fields the agent really knows):
/// <c>{"version":"1.0","ts_start","ts_end","sample":true,"runtime","model_hash"?}</c>. Token counts, latency and
/// signatures are omitted because no job ran.
/// </summary>
public sealed record SampleReceiptPayload
{
    /// <summary>Receipt format version: <c>1.0</c> (seed 000).</summary>
    [JsonPropertyName("version")] public string Version { get; init; } = "1.0";

    /// <summary>Start of the observed window, unix seconds: when the probe that found the runtime ready began.</summary>
    [JsonPropertyName("ts_start")] public required long TsStart { get; init; }

    /// <summary>End of the observed window, unix seconds: when the API answered <c>active</c>.</summary>
    [JsonPropertyName("ts_end")] public required long TsEnd { get; init; }

    /// <summary>Always true: this receipt is a sample, not billable work.</summary>
    [JsonPropertyName("sample")] public bool Sample { get; init; } = true;

    /// <summary>Runtime wire name, e.g. <c>ollama</c>.</summary>
    [JsonPropertyName("runtime")] public required string Runtime { get; init; }

    /// <summary>The model's digest as <c>sha256:…</c> when the runtime reports one, else omitted.</summary>
    [JsonPropertyName("model_hash")] public string? ModelHash { get; init; }
}

/// <summary>Builds the one sample receipt that <c>--sample-receipt</c> posts.</summary>
public static class SampleReceipt
{
    /// <summary>
    /// Creates <c>{ id: "r_" + GUID (N format), node_id, region, model_id, payload }</c> for <c>POST /v1/receipts</c>.
    /// </summary>
    /// <param name="nodeId">The node (must equal X-Node-Id, else the API answers 403).</param>
    /// <param name="region">The node's region.</param>
    /// <param name="runtime">The node's runtime.</param>
    /// <param name="model">The first model the runtime lists.</param>
    /// <param name="start">Start of the observed window (real time).</param>
    /// <param name="end">End of the observed window (real time).</param>
    /// <param name="id">The receipt's GUID.</param>
    public static ReceiptRequest Create(string nodeId, string region, NodeRuntime runtime, OllamaModel model, DateTimeOffset start, DateTimeOffset end, Guid id)
    {
        ArgumentNullException.ThrowIfNull(model);
        var payload = new SampleReceiptPayload
        {
            TsStart = start.ToUnixTimeSeconds(),
            TsEnd = end.ToUnixTimeSeconds(),
            Runtime = runtime.ToWire(),
            ModelHash = ModelHash(model.Digest),
        };
        return new ReceiptRequest
        {
            Id = "r_" + id.ToString("N"),
            NodeId = nodeId,
            Region = region,
            ModelId = model.Name,
            Payload = JsonSerializer.SerializeToElement(payload, AgentJsonContext.Default.SampleReceiptPayload),
        };
    }

    /// <summary>Ollama digests are bare hex or <c>sha256:hex</c>; returns <c>sha256:hex</c>, or the digest as given.</summary>
    public static string? ModelHash(string? digest) =>
        digest is null ? null
        : digest.Contains(':', StringComparison.Ordinal) ? digest
        : digest.Length == 64 && digest.All(char.IsAsciiHexDigit) ? "sha256:" + digest.ToLowerInvariant()
        : digest;
}
