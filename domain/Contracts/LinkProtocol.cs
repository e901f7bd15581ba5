using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Domain.Contracts;

/// <summary>
/// The coordinator link (issue 13, seed 002 §2.3.3): one WebSocket per node, opened by the agent (outbound only) at
/// <c>GET /v1/nodes/link</c> with the node's HMAC headers (v2, over method GET, path <c>/v1/nodes/link</c> and an empty
/// body; the timestamp obeys the same replay clock as heartbeats). Every frame is one UTF-8 text message: a JSON
/// object whose <c>type</c> names one of the records below. Node → API: <c>hello</c> (first), <c>manifest</c>,
/// <c>chunk</c>, <c>result</c>, <c>failure</c>, <c>state</c>. API → node: <c>welcome</c>, <c>dispatch</c>,
/// <c>cancel</c>. A message that does not parse closes the link with status 1007 (invalid payload).
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(HelloMessage), "hello")]
[JsonDerivedType(typeof(ManifestMessage), "manifest")]
[JsonDerivedType(typeof(WelcomeMessage), "welcome")]
[JsonDerivedType(typeof(DispatchMessage), "dispatch")]
[JsonDerivedType(typeof(CancelMessage), "cancel")]
[JsonDerivedType(typeof(ChunkMessage), "chunk")]
[JsonDerivedType(typeof(ResultMessage), "result")]
[JsonDerivedType(typeof(FailureMessage), "failure")]
[JsonDerivedType(typeof(StateMessage), "state")]
public abstract record LinkMessage;

/// <summary>Node → API, the first message: the signed capability manifest (seed 002 §2.3.2).</summary>
/// <param name="Manifest">The manifest.</param>
/// <param name="Signature"><c>ed25519:</c> + base64 signature by the node key over the RFC 8785 form of <paramref name="Manifest"/>.</param>
public sealed record HelloMessage(CapabilityManifest Manifest, string Signature) : LinkMessage;

/// <summary>Node → API: a changed manifest (models pulled or removed, hardware changed), signed as in <see cref="HelloMessage"/>.</summary>
/// <param name="Manifest">The manifest.</param>
/// <param name="Signature">Signature as in <see cref="HelloMessage"/>.</param>
public sealed record ManifestMessage(CapabilityManifest Manifest, string Signature) : LinkMessage;

/// <summary>API → node, after a valid hello: the link is up.</summary>
/// <param name="NodeId">The authenticated node.</param>
/// <param name="Replica">The API replica holding the link.</param>
public sealed record WelcomeMessage(string NodeId, string Replica) : LinkMessage;

/// <summary>
/// API → node: run one chat completion. <paramref name="Request"/> is the client's OpenAI chat-completions body with
/// <c>model</c> set to the runtime's model id; the agent always streams from its runtime and answers with
/// <see cref="ChunkMessage"/>s, then one <see cref="ResultMessage"/> or <see cref="FailureMessage"/>.
/// </summary>
/// <param name="TaskId">Task id, unique; also the receipt id.</param>
/// <param name="Model">Model id as the manifest lists it.</param>
/// <param name="Request">The OpenAI <c>/v1/chat/completions</c> request body (a JSON object).</param>
/// <param name="TimeoutSeconds">How long the API waits for the result; the agent cancels its runtime call after it.</param>
public sealed record DispatchMessage(string TaskId, string Model, JsonElement Request, int TimeoutSeconds) : LinkMessage;

/// <summary>API → node: the client went away or the deadline passed; cancel the runtime call.</summary>
/// <param name="TaskId">Task id.</param>
public sealed record CancelMessage(string TaskId) : LinkMessage;

/// <summary>Node → API: one streamed chunk, an OpenAI <c>chat.completion.chunk</c> object as the runtime sent it.</summary>
/// <param name="TaskId">Task id.</param>
/// <param name="Chunk">The chunk object.</param>
public sealed record ChunkMessage(string TaskId, JsonElement Chunk) : LinkMessage;

/// <summary>
/// Node → API: the task finished. <paramref name="Receipt"/> is the signed receipt in seed 000's shape:
/// <c>{id, node_id, region, model_id, payload: {version, ts_start, ts_end, tokens_input, tokens_output, p95_ms,
/// prompt_hash, proof, signature}}</c> (<see cref="Receipts.ExecutionReceipts"/>).
/// </summary>
/// <param name="TaskId">Task id (= receipt id).</param>
/// <param name="FinishReason">OpenAI finish reason, e.g. <c>stop</c>, <c>length</c>.</param>
/// <param name="PromptTokens">Input tokens (from the runtime's usage, else counted by the agent).</param>
/// <param name="CompletionTokens">Output tokens.</param>
/// <param name="Receipt">The signed receipt.</param>
public sealed record ResultMessage(string TaskId, string FinishReason, int PromptTokens, int CompletionTokens, JsonElement Receipt) : LinkMessage;

/// <summary>Node → API: the task failed.</summary>
/// <param name="TaskId">Task id.</param>
/// <param name="Code"><c>unknown_model</c>, <c>runtime_unavailable</c>, <c>runtime_error</c>, <c>busy</c>, <c>cancelled</c>, <c>timeout</c>.</param>
/// <param name="Message">What happened, for logs and the client's error.</param>
/// <param name="BeforeFirstChunk">True when no chunk was sent for this task (the API may try another node).</param>
public sealed record FailureMessage(string TaskId, string Code, string Message, bool BeforeFirstChunk) : LinkMessage;

/// <summary>Node → API: the agent's local state (seed 002 §2.3.8 plus DRAINING).</summary>
/// <param name="State"><c>READY</c>, <c>EXECUTING</c>, <c>IDLE</c> or <c>DRAINING</c> (no new work).</param>
/// <param name="InFlight">Tasks running now.</param>
public sealed record StateMessage(string State, int InFlight) : LinkMessage;

/// <summary>
/// The capability manifest (seed 002 §2.3.2): what the node measured, nothing invented. Absent members were not
/// measurable. Written by the agent; the API stores the latest verified one per node.
/// </summary>
public sealed record CapabilityManifest
{
    /// <summary>Node id.</summary>
    public required string NodeId { get; init; }

    /// <summary>Agent version.</summary>
    public required string ClientVersion { get; init; }

    /// <summary>Unix seconds when the agent made it (a newer one replaces an older one).</summary>
    public required long IssuedAt { get; init; }

    /// <summary>Tasks the node runs at once (the agent's concurrency limit), ≥ 1.</summary>
    public required int MaxParallel { get; init; }

    /// <summary>The hardware.</summary>
    public required HardwareManifest Hardware { get; init; }

    /// <summary>The runtime and its models.</summary>
    public required RuntimeManifest Runtime { get; init; }
}

/// <summary>Hardware as measured (issue 13: <c>sysctl</c>/<c>system_profiler</c>, <c>nvidia-smi</c>, <c>rocm-smi</c>, <c>/proc</c>).</summary>
public sealed record HardwareManifest
{
    /// <summary><c>macos</c>, <c>linux</c>, <c>windows</c>.</summary>
    public required string Os { get; init; }

    /// <summary><c>arm64</c>, <c>x64</c>.</summary>
    public required string Arch { get; init; }

    /// <summary>CPU model name, if readable.</summary>
    public string? CpuModel { get; init; }

    /// <summary>Logical CPUs.</summary>
    public int? CpuCores { get; init; }

    /// <summary>Physical memory (GiB); on Apple Silicon the unified memory.</summary>
    public double? MemoryGb { get; init; }

    /// <summary>Apple Silicon chip name (e.g. <c>Apple M3 Max</c>), if any.</summary>
    public string? AppleChip { get; init; }

    /// <summary>GPUs found (empty when none could be listed).</summary>
    public IReadOnlyList<GpuManifest> Gpus { get; init; } = [];
}

/// <summary>One GPU.</summary>
/// <param name="Vendor"><c>nvidia</c>, <c>amd</c>, <c>apple</c>.</param>
/// <param name="Name">Model name.</param>
/// <param name="MemoryGb">Memory (GiB), if reported.</param>
public sealed record GpuManifest(string Vendor, string Name, double? MemoryGb);

/// <summary>The runtime the agent executes work on.</summary>
public sealed record RuntimeManifest
{
    /// <summary><c>ollama</c>, <c>vllm</c>, <c>tgi</c>, <c>tensorrtllm</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>Models it serves now.</summary>
    public IReadOnlyList<ModelManifest> Models { get; init; } = [];
}

/// <summary>One model of the runtime.</summary>
/// <param name="Id">Model id as the runtime names it (what clients put in <c>model</c>).</param>
/// <param name="SizeBytes">Size on disk, if reported (Ollama <c>/api/tags</c>).</param>
/// <param name="Quantization">Quantization level, if reported.</param>
public sealed record ModelManifest(string Id, long? SizeBytes, string? Quantization);

/// <summary>Source-generated JSON of the link protocol (snake_case).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(LinkMessage))]
[JsonSerializable(typeof(CapabilityManifest))]
public sealed partial class LinkJsonContext : JsonSerializerContext;
