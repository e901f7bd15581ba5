using System.Text.Json;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;

namespace Dgon.Agent.Manifest;

/// <summary>
/// Lists the runtime's models for the manifest (issue 13): Ollama <c>GET {url}/api/tags</c> (name, <c>size</c> in bytes,
/// <c>details.quantization_level</c>); any other runtime (vLLM, TGI, TensorRT-LLM) the OpenAI-compatible
/// <c>GET {url}/v1/models</c> (<c>data[].id</c>, no size or quantization). 2 s per request; never throws but for
/// cancellation: an unreachable runtime or a body that does not parse gives null.
/// </summary>
public sealed class RuntimeModels
{
    private readonly HttpClient _http;
    private readonly Uri _base;
    private readonly NodeRuntime _runtime;

    /// <summary>Creates a lister of the runtime at <paramref name="runtimeUrl"/>.</summary>
    public RuntimeModels(HttpClient http, Uri runtimeUrl, NodeRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(runtimeUrl);
        (_http, _base, _runtime) = (http, new Uri(runtimeUrl.AbsoluteUri.TrimEnd('/') + "/"), runtime);
    }

    /// <summary>Lists the models once.</summary>
    /// <returns>The models (possibly empty), or null when the runtime did not answer a parseable list.</returns>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    public async Task<IReadOnlyList<ModelManifest>?> ListAsync(CancellationToken cancellationToken)
    {
        var ollama = _runtime == NodeRuntime.Ollama;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(OllamaProbe.Timeout);
        try
        {
            using var response = await _http.GetAsync(new Uri(_base, ollama ? "api/tags" : "v1/models"), timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token);
            return ollama ? ParseOllamaTags(body) : ParseOpenAiModels(body);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Ollama <c>/api/tags</c>: <c>{"models":[{"name", "size", "details": {"quantization_level"}}]}</c>; models without a name are skipped.</summary>
    /// <returns>The models, or null when the body has no <c>models</c> array.</returns>
    public static IReadOnlyList<ModelManifest>? ParseOllamaTags(ReadOnlySpan<byte> body) => Parse(body, "models", m =>
    {
        var name = Text(m, "name") ?? Text(m, "model");
        if (name is null)
        {
            return null;
        }

        long? size = m.TryGetProperty("size", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var bytes) && bytes > 0 ? bytes : null;
        var quantization = m.TryGetProperty("details", out var details) && details.ValueKind == JsonValueKind.Object ? Text(details, "quantization_level") : null;
        return new ModelManifest(name, size, quantization);
    });

    /// <summary>OpenAI <c>/v1/models</c>: <c>{"object":"list","data":[{"id"}]}</c>; entries without an id are skipped.</summary>
    /// <returns>The models, or null when the body has no <c>data</c> array.</returns>
    public static IReadOnlyList<ModelManifest>? ParseOpenAiModels(ReadOnlySpan<byte> body) =>
        Parse(body, "data", m => Text(m, "id") is { } id ? new ModelManifest(id, null, null) : null);

    private static List<ModelManifest>? Parse(ReadOnlySpan<byte> body, string member, Func<JsonElement, ModelManifest?> read)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(member, out var list) || list.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var models = new List<ModelManifest>();
            foreach (var m in list.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.Object && read(m) is { } model && !models.Exists(x => x.Id == model.Id))
                {
                    models.Add(model);
                }
            }

            return models;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s ? s : null;
}
