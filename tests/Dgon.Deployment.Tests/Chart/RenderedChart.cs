using System.Text.Json.Nodes;
using Dgon.Testing;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// The objects of a `helm template` output (multi-document YAML), each converted to a JsonObject so that tests can
/// navigate them with indexers. Plain YAML scalars get their YAML 1.2 core-schema type (null, bool, int, float);
/// quoted ones stay strings.
/// </summary>
public sealed class RenderedChart
{
    private RenderedChart(IReadOnlyList<JsonObject> objects) => Objects = objects;

    public IReadOnlyList<JsonObject> Objects { get; }

    public static RenderedChart Parse(string yaml)
    {
        return new RenderedChart([.. YamlJson.ParseDocuments(yaml).OfType<JsonObject>()]);
    }

    public IEnumerable<JsonObject> OfKind(string kind) => Objects.Where(o => Kind(o) == kind);

    public JsonObject? Find(string kind, string name) => OfKind(kind).SingleOrDefault(o => Name(o) == name);

    public bool Has(string kind, string name) => Find(kind, name) is not null;

    /// <summary>The object, or a failure that lists what was rendered.</summary>
    public JsonObject Get(string kind, string name) =>
        Find(kind, name) ?? throw new Xunit.Sdk.XunitException(
            $"no {kind} named {name} was rendered; rendered: {string.Join(", ", Objects.Select(o => $"{Kind(o)}/{Name(o)}"))}");

    /// <summary>Every workload with a pod template (Deployment, StatefulSet) and every bare Pod (e.g. the test hook).</summary>
    public IEnumerable<(JsonObject Owner, JsonObject PodSpec)> PodSpecs() =>
        Objects.Select(o => (o, PodSpecOf(o))).Where(p => p.Item2 is not null).Select(p => (p.o, p.Item2!));

    public static string Kind(JsonNode obj) => (string)obj["kind"]!;

    public static string Name(JsonNode obj) => (string)obj["metadata"]!["name"]!;

    public static JsonObject? PodSpecOf(JsonObject obj) => Kind(obj) switch
    {
        "Pod" => obj["spec"]!.AsObject(),
        "Deployment" or "StatefulSet" or "DaemonSet" or "Job" => obj["spec"]!["template"]!["spec"]!.AsObject(),
        _ => null,
    };

    public static JsonObject PodTemplateMetadata(JsonObject workload) => workload["spec"]!["template"]!["metadata"]!.AsObject();

    /// <summary>Containers and init containers of a pod spec.</summary>
    public static IEnumerable<JsonObject> AllContainers(JsonObject podSpec) =>
        new[] { "initContainers", "containers" }
            .SelectMany(key => podSpec[key]?.AsArray() ?? [])
            .Select(c => c!.AsObject());

    public static JsonObject Container(JsonObject workload, string name) =>
        AllContainers(PodSpecOf(workload)!).SingleOrDefault(c => (string)c["name"]! == name)
        ?? throw new Xunit.Sdk.XunitException($"{Kind(workload)}/{Name(workload)} has no container {name}");

    /// <summary>The env entry named <paramref name="name"/> of a container, or a failure listing the names present.</summary>
    public static JsonObject Env(JsonObject container, string name)
    {
        var env = container["env"]?.AsArray().Select(e => e!.AsObject()).ToList() ?? [];
        return env.SingleOrDefault(e => (string)e["name"]! == name)
            ?? throw new Xunit.Sdk.XunitException(
                $"container {container["name"]} has no env {name}; it has: {string.Join(", ", env.Select(e => (string)e["name"]!))}");
    }

    public static string? Str(JsonNode? node) => node?.GetValueKind() switch
    {
        null => null,
        System.Text.Json.JsonValueKind.String => node.GetValue<string>(),
        System.Text.Json.JsonValueKind.Null => null,
        _ => node.ToJsonString(),
    };
}
