using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;

namespace Dgon.Agent;

/// <summary>A node's credentials: its id and the token register returned (seed 000).</summary>
/// <param name="NodeId">Node id (X-Node-Id).</param>
/// <param name="Token">Node token, the HMAC key.</param>
public sealed record NodeCredentials(string NodeId, string Token)
{
    /// <summary>The token's first 8 characters, the most of it that may be logged (as the seed agent prints).</summary>
    public string TokenPrefix => Token.Length <= 8 ? Token : Token[..8];

    /// <inheritdoc />
    public override string ToString() => $"{NodeId} ({TokenPrefix}…)";
}

/// <summary>
/// Client of the v1 node endpoints (seed 000): register, heartbeat and receipts. Each request body is serialized
/// once to bytes with <see cref="DgonJsonContext"/> (null members omitted), signed over those bytes
/// (<see cref="NodeAuth.SignHeaders"/>: HMAC over body ‖ ts) and sent as exactly those bytes with
/// <c>Content-Type: application/json</c>. A non-2xx answer throws <see cref="NodeApiException"/>.
/// </summary>
public sealed class NodeApiClient
{
    private static readonly DgonJsonContext Json = new(new JsonSerializerOptions(DgonJsonContext.Default.Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });

    private readonly HttpClient _http;
    private readonly string _base;
    private readonly TimeProvider _time;

    /// <summary>Creates a client of <paramref name="api"/> (requests go to <c>{api}/v1/…</c>).</summary>
    /// <param name="http">The HTTP client; its timeout bounds each attempt.</param>
    /// <param name="api">API base URL.</param>
    /// <param name="time">Clock used for <c>X-Node-Ts</c> and Retry-After dates.</param>
    public NodeApiClient(HttpClient http, Uri api, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(time);
        _http = http;
        _base = TokenStore.NormaliseApi(api);
        _time = time;
    }

    /// <summary>Serializes a request body as the agent sends it: UTF-8 JSON, null members omitted.</summary>
    public static byte[] SerializeBody<T>(T body, JsonTypeInfo<T> typeInfo) => JsonSerializer.SerializeToUtf8Bytes(body, typeInfo);

    /// <summary>The contract's type metadata with null members omitted (what <see cref="SerializeBody{T}"/> is given).</summary>
    public static DgonJsonContext Contract => Json;

    /// <summary><c>POST /v1/nodes/register</c> (unsigned).</summary>
    /// <returns>The 200 body with the node token.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer or a 200 without a token.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public async Task<RegisterResponse> RegisterAsync(RegisterRequest request, CancellationToken cancellationToken)
    {
        var body = SerializeBody(request, Json.RegisterRequest);
        var response = await SendAsync("register", "/v1/nodes/register", body, null, Json.RegisterResponse, cancellationToken);
        return string.IsNullOrEmpty(response.NodeToken)
            ? throw new NodeApiException("register", HttpStatusCode.OK, null, null, "register answered 200 without node_token")
            : response;
    }

    /// <summary><c>POST /v1/nodes/heartbeat</c>, signed (seed 000: HMAC over body + ts).</summary>
    /// <returns>The node's phase after the heartbeat.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer, e.g. 401 problem+json.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public Task<HeartbeatResponse> HeartbeatAsync(NodeCredentials credentials, HeartbeatRequest request, CancellationToken cancellationToken) =>
        SendAsync("heartbeat", "/v1/nodes/heartbeat", SerializeBody(request, Json.HeartbeatRequest), credentials, Json.HeartbeatResponse, cancellationToken);

    /// <summary><c>POST /v1/receipts</c>, signed like a heartbeat.</summary>
    /// <returns><c>{ ok: true }</c>.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer: 409 conflicting re-post, 403 node_id ≠ X-Node-Id, 401, 422.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public Task<ReceiptResponse> PostReceiptAsync(NodeCredentials credentials, ReceiptRequest request, CancellationToken cancellationToken) =>
        SendAsync("receipt", "/v1/receipts", SerializeBody(request, Json.ReceiptRequest), credentials, Json.ReceiptResponse, cancellationToken);

    private async Task<TResponse> SendAsync<TResponse>(
        string operation,
        string path,
        byte[] body,
        NodeCredentials? credentials,
        JsonTypeInfo<TResponse> responseType,
        CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _base + path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Accept.ParseAdd("application/json");
        if (credentials is not null)
        {
            foreach (var (name, value) in NodeAuth.SignHeaders(credentials.NodeId, credentials.Token, body, _time.GetUtcNow()))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var text = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new NodeApiException(operation, response.StatusCode, ApiProblem.TryParse(text), RetryAfter(response), null);
        }

        try
        {
            return JsonSerializer.Deserialize(text, responseType)
                ?? throw new NodeApiException(operation, response.StatusCode, null, null, $"{operation} answered {(int)response.StatusCode} with an empty body");
        }
        catch (JsonException e)
        {
            throw new NodeApiException(operation, response.StatusCode, null, null, $"{operation} answered {(int)response.StatusCode} with an unexpected body ({e.Message})");
        }
    }

    /// <summary>Retry-After of a 429 or 503 answer (delta seconds or HTTP date), or null.</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.StatusCode is not (HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
            || response.Headers.RetryAfter is not { } header)
        {
            return null;
        }

        if (header.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }

        if (header.Date is { } date)
        {
            var wait = date - _time.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }
}
