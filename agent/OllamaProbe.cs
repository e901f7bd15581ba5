using System.Text.Json;

namespace Dgon.Agent;

/// <summary>A model Ollama lists in <c>/api/tags</c>.</summary>
/// <param name="Name">Model name, e.g. <c>llama3.1:8b</c>.</param>
/// <param name="Digest">Its digest as Ollama reports it (e.g. <c>sha256:…</c> or bare hex), or null.</param>
public sealed record OllamaModel(string Name, string? Digest);

/// <summary>Result of one readiness probe.</summary>
/// <param name="Ready">True when <c>/api/tags</c> answered 200 with at least one element in <c>models</c>.</param>
/// <param name="Models">The models listed (empty when not ready).</param>
/// <param name="Reason">Why not ready (null when ready): unreachable, HTTP status, bad JSON or no models.</param>
public sealed record OllamaStatus(bool Ready, IReadOnlyList<OllamaModel> Models, string? Reason)
{
    /// <summary>The first model listed, or null.</summary>
    public OllamaModel? FirstModel => Models.Count > 0 ? Models[0] : null;
}

/// <summary>
/// Ollama readiness (seed 000: "query Ollama tags; if any model loaded → ready=true"): <c>GET {ollamaUrl}/api/tags</c>
/// with a 2 s timeout. Any error counts as not ready; it never throws except on cancellation by the caller.
/// </summary>
public sealed class OllamaProbe
{
    /// <summary>Time limit of one probe (seed 000 agent: <c>timeout=2</c>).</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    private readonly HttpClient _http;
    private readonly Uri _tags;

    /// <summary>Creates a probe of <c>{ollamaUrl}/api/tags</c>, using <paramref name="http"/> (its own timeout is not relied on).</summary>
    public OllamaProbe(HttpClient http, Uri ollamaUrl)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(ollamaUrl);
        _http = http;
        _tags = new Uri(ollamaUrl.AbsoluteUri.TrimEnd('/') + "/api/tags");
    }

    /// <summary>Probes once.</summary>
    /// <returns>Ready with the model list, or not ready with a reason.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<OllamaStatus> ProbeAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            using var response = await _http.GetAsync(_tags, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                return NotReady($"{_tags} answered HTTP {(int)response.StatusCode}");
            }

            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token);
            return Parse(body);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException)
        {
            return NotReady($"{_tags} did not answer within {Timeout.TotalSeconds:0} s");
        }
        catch (HttpRequestException e)
        {
            return NotReady($"{_tags} unreachable ({e.Message})");
        }
    }

    /// <summary>
    /// Reads an <c>/api/tags</c> body: <c>{"models":[{"name":…, "digest":…}, …]}</c>. Ready when <c>models</c> has at
    /// least one element; a model without a name is listed as <c>"unknown"</c>.
    /// </summary>
    public static OllamaStatus Parse(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("models", out var models)
                || models.ValueKind != JsonValueKind.Array)
            {
                return NotReady("/api/tags has no \"models\" array");
            }

            var list = new List<OllamaModel>();
            foreach (var m in models.EnumerateArray())
            {
                list.Add(new OllamaModel(Text(m, "name") ?? Text(m, "model") ?? "unknown", Text(m, "digest")));
            }

            return list.Count > 0 ? new OllamaStatus(true, list, null) : NotReady("no model is available in Ollama");
        }
        catch (JsonException e)
        {
            return NotReady($"/api/tags is not JSON ({e.Message})");
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object
        && element.TryGetProperty(name, out var v)
        && v.ValueKind == JsonValueKind.String
        && v.GetString() is { Length: > 0 } s ? s : null;

    private static OllamaStatus NotReady(string reason) => new(false, [], reason);
}
