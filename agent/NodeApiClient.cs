using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using NSec.Cryptography;

namespace Dgon.Agent;

/// <summary>A node's credentials: its id and the token register (or rotate-token) returned (seed 000, issue 9).</summary>
/// <param name="NodeId">Node id (X-Node-Id).</param>
/// <param name="Token">Node token, the HMAC key. Never logged, not even in part.</param>
public sealed record NodeCredentials(string NodeId, string Token)
{
    /// <summary>The node id only: the token never reaches a log through this record.</summary>
    public override string ToString() => NodeId;
}

/// <summary>
/// Client of the node endpoints (seed 000, issue 9 contract): register, rotate-token, heartbeat and receipts. Each
/// request body is serialized once to bytes with <see cref="DgonJsonContext"/> (null members omitted), signed over
/// those bytes and sent as exactly those bytes with <c>Content-Type: application/json</c>:
/// <list type="bullet">
/// <item>heartbeats and receipts with the node token, scheme v2 (<see cref="NodeAuth.SignHeadersV2"/>: HMAC over
/// label, ts, method, path, node id and body);</item>
/// <item>a re-registration and rotate-token with the node key (<see cref="NodeKeyProof.SignHeaders"/>:
/// <c>X-Node-Proof</c>, Ed25519);</item>
/// <item>a first registration with <c>Authorization: Bearer &lt;join token&gt;</c> when one is given.</item>
/// </list>
/// Every <c>X-Node-Ts</c> comes from one <see cref="RequestClock"/> (strictly increasing). The signed path is the
/// API's route (<c>/v1/…</c>), whatever path prefix the base URL has. Answers: a non-2xx throws
/// <see cref="NodeApiException"/>; so does a 3xx (redirects are never followed: <see cref="AgentHost.CreateApiHttpClient"/>
/// turns them off, and one followed by another handler is detected) and a body over <see cref="MaxResponseBytes"/>.
/// </summary>
public sealed class NodeApiClient
{
    /// <summary>Largest response body read: 64 KiB. A larger 2xx body is an error; a larger error body is not parsed.</summary>
    public const int MaxResponseBytes = 64 * 1024;

    /// <summary><c>POST /v1/nodes/register</c>.</summary>
    public const string RegisterPath = "/v1/nodes/register";

    /// <summary><c>POST /v1/nodes/rotate-token</c>.</summary>
    public const string RotateTokenPath = "/v1/nodes/rotate-token";

    /// <summary><c>POST /v1/nodes/heartbeat</c>.</summary>
    public const string HeartbeatPath = "/v1/nodes/heartbeat";

    /// <summary><c>POST /v1/receipts</c>.</summary>
    public const string ReceiptsPath = "/v1/receipts";

    private static readonly DgonJsonContext Json = new(new JsonSerializerOptions(DgonJsonContext.Default.Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });

    private static readonly byte[] EmptyObject = "{}"u8.ToArray();

    private readonly HttpClient _http;
    private readonly string _base;
    private readonly TimeProvider _time;

    /// <summary>Creates a client of <paramref name="api"/> (requests go to <c>{api}/v1/…</c>).</summary>
    /// <param name="http">The HTTP client; its timeout bounds each attempt (also the reading of the body).</param>
    /// <param name="api">API base URL.</param>
    /// <param name="time">Clock used for <c>X-Node-Ts</c> and Retry-After dates.</param>
    /// <param name="clock">The timestamp source; a new <see cref="RequestClock"/> over <paramref name="time"/> when null.</param>
    public NodeApiClient(HttpClient http, Uri api, TimeProvider time, RequestClock? clock = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(time);
        _http = http;
        _base = TokenStore.NormaliseApi(api);
        _time = time;
        Clock = clock ?? new RequestClock(time);
    }

    /// <summary>The timestamp source of every signed request of this client.</summary>
    public RequestClock Clock { get; }

    /// <summary>Serializes a request body as the agent sends it: UTF-8 JSON, null members omitted.</summary>
    public static byte[] SerializeBody<T>(T body, JsonTypeInfo<T> typeInfo) => JsonSerializer.SerializeToUtf8Bytes(body, typeInfo);

    /// <summary>The contract's type metadata with null members omitted (what <see cref="SerializeBody{T}"/> is given).</summary>
    public static DgonJsonContext Contract => Json;

    /// <summary>
    /// <c>POST /v1/nodes/register</c>. With <paramref name="joinToken"/>: <c>Authorization: Bearer</c> (enrolling a node the
    /// API does not know, or one without a key). With <paramref name="proofKey"/>: <c>X-Node-Id</c>, <c>X-Node-Ts</c>,
    /// <c>X-Node-Proof</c> over the exact body (re-registering a node enrolled with that key). With neither: unsigned
    /// (an API with open registration).
    /// </summary>
    /// <returns>The 200 body with the node token.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer (e.g. 401 join-token-required, 409 proof-required) or a 200 without a token.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public async Task<RegisterResponse> RegisterAsync(RegisterRequest request, string? joinToken, Key? proofKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = SerializeBody(request, Json.RegisterRequest);
        var nodeId = request.NodeId ?? "";
        Func<long, IReadOnlyList<KeyValuePair<string, string>>>? sign = proofKey is null
            ? null
            : ts => NodeKeyProof.SignHeaders(proofKey, nodeId, "POST", RegisterPath, body, ts);
        var response = await SendAsync("register", RegisterPath, body, sign, joinToken, Json.RegisterResponse, cancellationToken);
        return string.IsNullOrEmpty(response.NodeToken)
            ? throw new NodeApiException("register", HttpStatusCode.OK, null, null, "register answered 200 without node_token")
            : response;
    }

    /// <summary>
    /// <c>POST /v1/nodes/rotate-token</c> with body <c>{}</c>, signed with the node key: the API issues a new token and
    /// keeps the previous one valid for its overlap (default 60 s).
    /// </summary>
    /// <returns>The new token and until when the previous one verifies.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer (401 bad-proof, replayed, unknown-node) or a 200 without a token.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public async Task<RotateTokenResponse> RotateTokenAsync(string nodeId, Key key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodeId);
        ArgumentNullException.ThrowIfNull(key);
        var response = await SendAsync(
            "rotate-token",
            RotateTokenPath,
            EmptyObject,
            ts => NodeKeyProof.SignHeaders(key, nodeId, "POST", RotateTokenPath, EmptyObject, ts),
            null,
            Json.RotateTokenResponse,
            cancellationToken);
        return string.IsNullOrEmpty(response.NodeToken)
            ? throw new NodeApiException("rotate-token", HttpStatusCode.OK, null, null, "rotate-token answered 200 without node_token")
            : response;
    }

    /// <summary><c>POST /v1/nodes/heartbeat</c>, signed v2 with the node token.</summary>
    /// <returns>The node's phase after the heartbeat.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer, e.g. 401 problem+json.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public Task<HeartbeatResponse> HeartbeatAsync(NodeCredentials credentials, HeartbeatRequest request, CancellationToken cancellationToken) =>
        SendSignedAsync("heartbeat", HeartbeatPath, SerializeBody(request, Json.HeartbeatRequest), credentials, Json.HeartbeatResponse, cancellationToken);

    /// <summary><c>POST /v1/receipts</c>, signed v2 like a heartbeat.</summary>
    /// <returns><c>{ ok: true }</c>.</returns>
    /// <exception cref="NodeApiException">Non-2xx answer: 409 conflicting re-post, 403 node_id ≠ X-Node-Id, 401, 422.</exception>
    /// <exception cref="HttpRequestException">Network failure.</exception>
    /// <exception cref="TaskCanceledException">Timeout (or cancellation).</exception>
    public Task<ReceiptResponse> PostReceiptAsync(NodeCredentials credentials, ReceiptRequest request, CancellationToken cancellationToken) =>
        SendSignedAsync("receipt", ReceiptsPath, SerializeBody(request, Json.ReceiptRequest), credentials, Json.ReceiptResponse, cancellationToken);

    private Task<TResponse> SendSignedAsync<TResponse>(
        string operation, string path, byte[] body, NodeCredentials credentials, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return SendAsync(
            operation,
            path,
            body,
            ts => NodeAuth.SignHeadersV2(credentials.NodeId, credentials.Token, "POST", path, body, ts),
            null,
            responseType,
            cancellationToken);
    }

    private async Task<TResponse> SendAsync<TResponse>(
        string operation,
        string path,
        byte[] body,
        Func<long, IReadOnlyList<KeyValuePair<string, string>>>? sign,
        string? bearer,
        JsonTypeInfo<TResponse> responseType,
        CancellationToken cancellationToken)
    {
        var target = new Uri(_base + path);
        using var request = new HttpRequestMessage(HttpMethod.Post, target) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Accept.ParseAdd("application/json");
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (sign is not null)
        {
            var ts = await Clock.NextAsync(cancellationToken);
            foreach (var (name, value) in sign(ts))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        var code = (int)response.StatusCode;
        if (code is >= 300 and < 400)
        {
            var location = LogText.Clean(response.Headers.Location?.OriginalString, 300) ?? "(no Location)";
            throw new NodeApiException(operation, response.StatusCode, null, null,
                $"{operation} answered HTTP {code}, a redirect to {location}: the agent does not follow redirects (they could carry signed requests elsewhere); set --api to the URL that answers");
        }

        if (response.RequestMessage?.RequestUri is { } answered && answered != target)
        {
            throw new NodeApiException(operation, response.StatusCode, null, null,
                $"{operation} was redirected to {LogText.Clean(answered.OriginalString, 300)}: the agent does not follow redirects; set --api to the URL that answers", ApiFailureKind.Rejected);
        }

        var text = await ReadBoundedAsync(response.Content, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            return text is null
                ? throw new NodeApiException(operation, response.StatusCode, null, RetryAfter(response),
                    $"{operation} answered HTTP {code} with a body over {MaxResponseBytes} bytes (not read)")
                : throw new NodeApiException(operation, response.StatusCode, ApiProblem.TryParse(text), RetryAfter(response), null);
        }

        if (text is null)
        {
            throw new NodeApiException(operation, response.StatusCode, null, null,
                $"{operation} answered {code} with a body over {MaxResponseBytes} bytes: not an answer of the DGON API", ApiFailureKind.Rejected);
        }

        try
        {
            return JsonSerializer.Deserialize(text, responseType)
                ?? throw new NodeApiException(operation, response.StatusCode, null, null, $"{operation} answered {code} with an empty body");
        }
        catch (JsonException e)
        {
            throw new NodeApiException(operation, response.StatusCode, null, null, $"{operation} answered {code} with an unexpected body ({LogText.Clean(e.Message, 300)})");
        }
    }

    /// <summary>
    /// Reads at most <see cref="MaxResponseBytes"/> of the body within the client's timeout.
    /// </summary>
    /// <returns>The body, or null when it is (or announces to be) larger.</returns>
    private async Task<byte[]?> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength is > MaxResponseBytes)
        {
            return null;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (_http.Timeout != Timeout.InfiniteTimeSpan)
        {
            timeout.CancelAfter(_http.Timeout);
        }

        await using var stream = await content.ReadAsStreamAsync(timeout.Token);
        var buffer = new byte[MaxResponseBytes + 1];
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), timeout.Token);
            if (read == 0)
            {
                return buffer[..filled];
            }

            filled += read;
        }

        return null;
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
