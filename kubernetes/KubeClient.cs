using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Kubernetes.Json;

namespace Dgon.Kubernetes;

/// <summary>
/// <see cref="IKubeClient"/> over HttpClient and source-generated System.Text.Json: a small stand-in for
/// KubernetesClient's <c>Kubernetes</c> class (which cannot be restored here). TLS: a configured CA is trusted as the
/// only root (X509ChainPolicy custom root trust, no revocation check — as client-go), the server name is checked,
/// a client certificate is presented when configured, <see cref="KubeClientConfig.InsecureSkipTlsVerify"/> turns
/// verification off. Auth: <c>Authorization: Bearer</c> from the token source on every request. Timeouts: non-watch
/// calls are bounded by <see cref="KubeClientConfig.Timeout"/> (then <see cref="TaskCanceledException"/> with an inner
/// <see cref="TimeoutException"/>); a watch only waits that long for its response headers and then streams unbounded.
/// Item operations on a namespaced resource with a null namespace use <see cref="KubeClientConfig.Namespace"/>;
/// LIST and WATCH with a null namespace span all namespaces. Thread-safe; dispose to close connections.
/// </summary>
public sealed class KubeClient : IKubeClient, IDisposable
{
    private static readonly MediaTypeHeaderValue JsonMedia = new("application/json");
    private static readonly MediaTypeHeaderValue MergePatchMedia = new("application/merge-patch+json");
    private readonly HttpClient _http;

    /// <summary>Creates a client.</summary>
    /// <param name="config">Server, TLS and auth settings.</param>
    /// <param name="handler">
    /// Optional handler to send through instead of the TLS-configured <see cref="SocketsHttpHandler"/> (tests, or a
    /// caller that wants its own pipeline; the caller then owns TLS settings and disposal of the handler).
    /// </param>
    public KubeClient(KubeClientConfig config, HttpMessageHandler? handler = null)
    {
        Config = config ?? throw new ArgumentNullException(nameof(config));
        _http = handler is null
            ? new HttpClient(CreateHandler(config), disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        _http.BaseAddress = config.Server;
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(config.UserAgent);
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    /// <summary>The configuration this client was built from.</summary>
    public KubeClientConfig Config { get; }

    /// <summary>
    /// The handler <see cref="KubeClient"/> uses by default: SocketsHttpHandler with the config's CA as custom root
    /// trust (or verification off when insecure), the client certificate, and the config timeout as connect timeout.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(KubeClientConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = config.Timeout,
            AutomaticDecompression = DecompressionMethods.All,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            ConnectCallback = ConnectWithKeepAliveAsync,
        };
        if (config.InsecureSkipTlsVerify)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (config.CertificateAuthority is { Count: > 0 } ca)
        {
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(ca);
            handler.SslOptions.CertificateChainPolicy = policy;
        }

        if (config.ClientCertificate is { } cert)
        {
            handler.SslOptions.ClientCertificates = [cert];
        }

        return handler;
    }

    /// <summary>
    /// Opens the TCP connection with keep-alive probes (30 s idle, 10 s interval, 3 probes — as client-go's dialer),
    /// so a watch on a silently dead connection fails within about a minute instead of hanging.
    /// </summary>
    private static async ValueTask<Stream> ConnectWithKeepAliveAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 30);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 10);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
            await socket.ConnectAsync(context.DnsEndPoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<T> GetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken ct) where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        using var request = new HttpRequestMessage(HttpMethod.Get, type.ItemPath(Ns(type, ns), name));
        return await SendForObjectAsync(request, type, ct);
    }

    /// <inheritdoc />
    public async Task<T?> TryGetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken ct) where T : KubeObject
    {
        try
        {
            return await GetAsync(type, ns, name, ct);
        }
        catch (KubeNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<KubeList<T>> ListAsync<T>(ResourceType<T> type, string? ns, ListOptions? options, CancellationToken ct) where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        var query = new Query()
            .Add("labelSelector", options?.LabelSelector)
            .Add("fieldSelector", options?.FieldSelector)
            .Add("limit", options?.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Add("continue", options?.Continue)
            .Add("resourceVersion", options?.ResourceVersion);
        using var request = new HttpRequestMessage(HttpMethod.Get, type.CollectionPath(ns) + query);
        using var response = await SendAsync(request, streaming: false, ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var list = await JsonSerializer.DeserializeAsync(body, type.ListTypeInfo, ct)
            ?? throw new KubeApiException(response.StatusCode, null, $"LIST {type}: empty response body");
        list.Items ??= [];
        list.Metadata ??= new ListMeta();
        return list;
    }

    /// <inheritdoc />
    public async Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(obj);
        var ns = type.Namespaced ? Ns(type, obj.Metadata.Namespace) : null;
        using var request = new HttpRequestMessage(HttpMethod.Post, type.CollectionPath(ns)) { Content = Body(type, obj) };
        return await SendForObjectAsync(request, type, ct);
    }

    /// <inheritdoc />
    public Task<T> ReplaceAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject => PutAsync(type, obj, null, ct);

    /// <inheritdoc />
    public Task<T> ReplaceStatusAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject => PutAsync(type, obj, "status", ct);

    /// <inheritdoc />
    public Task<T> PatchAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode mergePatch, CancellationToken ct) where T : KubeObject =>
        MergePatchAsync(type, ns, name, mergePatch, null, ct);

    /// <inheritdoc />
    public Task<T> PatchStatusAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode mergePatch, CancellationToken ct) where T : KubeObject =>
        MergePatchAsync(type, ns, name, mergePatch, "status", ct);

    /// <inheritdoc />
    public async Task DeleteAsync<T>(ResourceType<T> type, string? ns, string name, DeleteOptions? options, CancellationToken ct) where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        using var request = new HttpRequestMessage(HttpMethod.Delete, type.ItemPath(Ns(type, ns), name));
        if (options is not null)
        {
            request.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(options, KubeJsonContext.Default.DeleteOptions));
            request.Content.Headers.ContentType = JsonMedia;
        }

        using var response = await SendAsync(request, streaming: false, ct);
    }

    /// <inheritdoc />
    /// <exception cref="IOException">The stream broke mid-way (connection reset).</exception>
    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceType<T> type, string? ns, WatchOptions options,
        [EnumeratorCancellation] CancellationToken ct) where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(options);
        var query = new Query()
            .Add("watch", "true")
            .Add("resourceVersion", options.ResourceVersion)
            .Add("allowWatchBookmarks", options.AllowBookmarks ? "true" : null)
            .Add("labelSelector", options.LabelSelector)
            .Add("fieldSelector", options.FieldSelector)
            .Add("timeoutSeconds", options.TimeoutSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var request = new HttpRequestMessage(HttpMethod.Get, type.CollectionPath(ns) + query);
        using var response = await SendAsync(request, streaming: true, ct);
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            yield return ParseWatchLine(type, line);
        }
    }

    /// <summary>Closes pooled connections (and open watches).</summary>
    public void Dispose() => _http.Dispose();

    internal static WatchEvent<T> ParseWatchLine<T>(ResourceType<T> type, string line) where T : KubeObject
    {
        RawWatchEvent raw;
        try
        {
            raw = JsonSerializer.Deserialize(line, InternalJsonContext.Default.RawWatchEvent)
                ?? throw new KubeApiException("watch: null event");
        }
        catch (JsonException e)
        {
            throw new KubeApiException($"watch {type}: malformed event line: {Truncate(line, 256)}", e);
        }

        if (raw.Type == WatchEvent<T>.Error)
        {
            KubeStatus? status = null;
            try
            {
                status = raw.Object.ValueKind == JsonValueKind.Object ? raw.Object.Deserialize(KubeJsonContext.Default.KubeStatus) : null;
            }
            catch (JsonException)
            {
                // Non-Status ERROR payload: reported below without details.
            }

            var code = status is { Code: > 0 } ? (HttpStatusCode)status.Code : HttpStatusCode.InternalServerError;
            throw KubeApiErrors.FromStatus(code, status, $"watch {type}: ERROR event {status?.Code} {status?.Reason}: {status?.Message}");
        }

        if (raw.Type is not (WatchEvent<T>.Added or WatchEvent<T>.Modified or WatchEvent<T>.Deleted or WatchEvent<T>.Bookmark))
        {
            throw new KubeApiException($"watch {type}: unknown event type '{raw.Type}'");
        }

        T? obj;
        try
        {
            obj = raw.Object.ValueKind == JsonValueKind.Object ? raw.Object.Deserialize(type.TypeInfo) : null;
        }
        catch (JsonException e)
        {
            throw new KubeApiException($"watch {type}: cannot read the {raw.Type} object: {e.Message}", e);
        }

        if (obj is null)
        {
            throw new KubeApiException($"watch {type}: {raw.Type} event without an object");
        }

        obj.Metadata ??= new ObjectMeta();
        return new WatchEvent<T> { Type = raw.Type, Object = obj };
    }

    private string? Ns<T>(ResourceType<T> type, string? ns) where T : KubeObject =>
        !type.Namespaced ? null : string.IsNullOrEmpty(ns) ? Config.Namespace : ns;

    private async Task<T> PutAsync<T>(ResourceType<T> type, T obj, string? subresource, CancellationToken ct) where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(obj);
        var name = obj.Metadata.Name ?? throw new ArgumentException("metadata.name is required for a replace", nameof(obj));
        using var request = new HttpRequestMessage(HttpMethod.Put, type.ItemPath(Ns(type, obj.Metadata.Namespace), name, subresource))
        {
            Content = Body(type, obj),
        };
        return await SendForObjectAsync(request, type, ct);
    }

    private async Task<T> MergePatchAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode patch, string? subresource, CancellationToken ct)
        where T : KubeObject
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(patch);
        using var request = new HttpRequestMessage(HttpMethod.Patch, type.ItemPath(Ns(type, ns), name, subresource))
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(patch.ToJsonString())),
        };
        request.Content.Headers.ContentType = MergePatchMedia;
        return await SendForObjectAsync(request, type, ct);
    }

    private static ByteArrayContent Body<T>(ResourceType<T> type, T obj) where T : KubeObject
    {
        obj.ApiVersion ??= type.ApiVersion;
        obj.Kind ??= type.Kind;
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(obj, type.TypeInfo));
        content.Headers.ContentType = JsonMedia;
        return content;
    }

    private async Task<T> SendForObjectAsync<T>(HttpRequestMessage request, ResourceType<T> type, CancellationToken ct) where T : KubeObject
    {
        using var response = await SendAsync(request, streaming: false, ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var obj = await JsonSerializer.DeserializeAsync(body, type.TypeInfo, ct)
            ?? throw new KubeApiException(response.StatusCode, null, $"{request.Method} {request.RequestUri}: empty response body");
        obj.Metadata ??= new ObjectMeta();
        return obj;
    }

    /// <summary>Sends with auth and timeout; returns a successful response (caller disposes) or throws the mapped error.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, bool streaming, CancellationToken ct)
    {
        if (Config.TokenSource is { } tokens && await tokens.GetTokenAsync(ct) is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Config.Timeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!streaming)
            {
                await response.Content.LoadIntoBufferAsync(timeout.Token);
            }
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new TaskCanceledException($"{request.Method} {request.RequestUri}: no response within {Config.Timeout.TotalSeconds:0.#} s",
                new TimeoutException(e.Message, e));
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            throw await ErrorAsync(request, response, ct);
        }
    }

    private static async Task<KubeApiException> ErrorAsync(HttpRequestMessage request, HttpResponseMessage response, CancellationToken ct)
    {
        string text;
        try
        {
            text = await response.Content.ReadAsStringAsync(ct);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            text = "";
        }

        var status = ParseStatus(text);
        var where = $"{request.Method} {request.RequestUri}";
        return status is not null
            ? KubeApiErrors.FromStatus(response.StatusCode, status, $"{where}: {(int)response.StatusCode} {status.Reason}: {status.Message}")
            : KubeApiErrors.FromStatus(response.StatusCode, null,
                $"{where}: {(int)response.StatusCode} {response.ReasonPhrase}{(text.Length > 0 ? ": " + Truncate(text, 512) : "")}");
    }

    internal static KubeStatus? ParseStatus(string text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.TrimStart()[0] != '{')
        {
            return null;
        }

        try
        {
            var status = JsonSerializer.Deserialize(text, KubeJsonContext.Default.KubeStatus);
            return status is not null && (status.Kind == "Status" || status.Reason is not null || status.Code != 0) ? status : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    /// <summary>Builds a URL query string with escaped values, skipping nulls.</summary>
    private sealed class Query
    {
        private readonly StringBuilder _sb = new();

        public Query Add(string key, string? value)
        {
            if (string.IsNullOrEmpty(value))
            {
                return this;
            }

            _sb.Append(_sb.Length == 0 ? '?' : '&').Append(key).Append('=').Append(Uri.EscapeDataString(value));
            return this;
        }

        public override string ToString() => _sb.ToString();
    }
}
