using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Dgon.Kubernetes.Json;

/// <summary>
/// The source-generated System.Text.Json context for every Kubernetes type DGON's small client uses (a stand-in for
/// KubernetesClient's serializer, which cannot be restored here): camelCase names, nulls omitted on write, metav1.Time
/// as RFC 3339 seconds (MicroTime fields carry their own converter). No reflection-based serialization.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(KubeTimeConverter)])]
[JsonSerializable(typeof(DgonNode))]
[JsonSerializable(typeof(KubeList<DgonNode>))]
[JsonSerializable(typeof(WatchEvent<DgonNode>))]
[JsonSerializable(typeof(Secret))]
[JsonSerializable(typeof(KubeList<Secret>))]
[JsonSerializable(typeof(WatchEvent<Secret>))]
[JsonSerializable(typeof(Lease))]
[JsonSerializable(typeof(KubeList<Lease>))]
[JsonSerializable(typeof(WatchEvent<Lease>))]
[JsonSerializable(typeof(EventsV1Event))]
[JsonSerializable(typeof(KubeList<EventsV1Event>))]
[JsonSerializable(typeof(WatchEvent<EventsV1Event>))]
[JsonSerializable(typeof(KubeStatus))]
[JsonSerializable(typeof(DeleteOptions))]
[JsonSerializable(typeof(JsonNode))]
public sealed partial class KubeJsonContext : JsonSerializerContext;

/// <summary>Source-generated metadata for internal wire shapes.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RawWatchEvent))]
internal sealed partial class InternalJsonContext : JsonSerializerContext;

/// <summary>A watch line before its object is typed: the type and the raw object (which is a Status for ERROR).</summary>
internal sealed class RawWatchEvent
{
    public string? Type { get; set; }

    public JsonElement Object { get; set; }
}
