using System.Text.Json.Serialization;

namespace Dgon.Agent;

/// <summary>Source-generated System.Text.Json metadata for the agent's own files and payloads (nulls omitted).</summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(StoredToken))]
[JsonSerializable(typeof(SampleReceiptPayload))]
internal sealed partial class AgentJsonContext : JsonSerializerContext;
