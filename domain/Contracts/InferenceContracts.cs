using System.Text.Json.Serialization;

namespace Dgon.Domain.Contracts;

/// <summary>
/// A node linked for inference, as <c>GET /v1/inference/nodes</c> lists it (issue 13): its latest verified manifest
/// (written by the agent, checked and stored by the API), and for links held by the answering replica the agent's
/// state and the tasks in flight.
/// </summary>
public sealed record InferenceNodeView
{
    /// <summary>Node id.</summary>
    public required string NodeId { get; init; }

    /// <summary>Whether the answering replica holds the link (then <see cref="State"/> and <see cref="InFlight"/> are known).</summary>
    public required bool Local { get; init; }

    /// <summary>The agent's state (<c>READY</c>, <c>EXECUTING</c>, <c>IDLE</c>, <c>DRAINING</c>), or null when not known here.</summary>
    public string? State { get; init; }

    /// <summary>Tasks in flight, or null when not known here.</summary>
    public int? InFlight { get; init; }

    /// <summary>The manifest's <c>max_parallel</c>.</summary>
    public required int Capacity { get; init; }

    /// <summary>The latest verified capability manifest.</summary>
    public required CapabilityManifest Manifest { get; init; }
}

/// <summary>Source-generated JSON of the inference read contracts (snake_case, the manifest as the agent sends it).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<InferenceNodeView>))]
public sealed partial class InferenceJsonContext : JsonSerializerContext;
