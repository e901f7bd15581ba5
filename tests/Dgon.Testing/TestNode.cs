using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using NSec.Cryptography;

namespace Dgon.Testing;

/// <summary>
/// A node enrolled through the real API: it holds an Ed25519 key (sent at registration), enrolls with a join token
/// (by default one made with <see cref="ApiHost.AdminToken"/>), signs requests v2 (or v1, as seed agents do) and keeps
/// its timestamps strictly increasing, as the replay rule requires.
/// </summary>
public sealed class TestNode
{
    private static readonly ConcurrentDictionary<string, Task<string>> JoinTokens = new(StringComparer.Ordinal);
    private readonly HttpClient _api;
    private long _lastTs;

    private TestNode(HttpClient api, string nodeId, string token, Key key)
    {
        _api = api;
        NodeId = nodeId;
        Token = token;
        Key = key;
    }

    /// <summary>Node id.</summary>
    public string NodeId { get; }

    /// <summary>The node token returned by register.</summary>
    public string Token { get; set; }

    /// <summary>The node's Ed25519 key.</summary>
    public Key Key { get; }

    /// <summary>The public key in wire form.</summary>
    public string PublicKey => NodeKeyProof.PublicKeyText(Key);

    /// <summary>Signature scheme used by <see cref="SendSignedAsync"/> (default v2; v1 is seed 000's).</summary>
    public SignatureScheme Scheme { get; set; } = SignatureScheme.V2;

    /// <summary>
    /// Enrolls a node (<c>POST /v1/nodes/register</c> with a join token) and keeps its token. Without
    /// <paramref name="joinToken"/> a multi-use token is created once per API with the admin token; pass
    /// <see cref="string.Empty"/> to send none (open registration).
    /// </summary>
    /// <exception cref="HttpRequestException">Register did not answer 200.</exception>
    public static async Task<TestNode> RegisterAsync(HttpClient api, string nodeId, string region = "ap-southeast", string runtime = "ollama", string? joinToken = null)
    {
        ArgumentNullException.ThrowIfNull(api);
        var key = NodeKeyProof.NewKey();
        var shared = joinToken is null;
        for (var attempt = 1; ; attempt++)
        {
            var bearer = joinToken ?? await SharedJoinTokenAsync(api);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/register")
            {
                Content = JsonContent.Create(new { node_id = nodeId, region, runtime, public_key = NodeKeyProof.PublicKeyText(key) }),
            };
            if (bearer.Length > 0)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            using var response = await api.SendAsync(request);
            if (shared && attempt == 1 && response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
            {
                // The API behind this address was restarted on another database: its shared token is gone.
                JoinTokens.TryRemove(api.BaseAddress!.AbsoluteUri, out _);
                continue;
            }

            var token = await TokenFromAsync(response, nodeId);
            return new TestNode(api, nodeId, token, key);
        }
    }

    /// <summary>A join token (unlimited uses, 24 h) for the API behind <paramref name="api"/>, created once with <see cref="ApiHost.AdminToken"/>.</summary>
    public static Task<string> SharedJoinTokenAsync(HttpClient api)
    {
        ArgumentNullException.ThrowIfNull(api);
        return JoinTokens.GetOrAdd(api.BaseAddress!.AbsoluteUri, _ => ApiHost.CreateJoinTokenAsync(api));
    }

    /// <summary>
    /// Re-registers this node proving its key (<c>X-Node-Proof</c>), optionally with another region or wallet, and
    /// keeps the fresh token on success.
    /// </summary>
    /// <returns>The response (the caller disposes it).</returns>
    public async Task<HttpResponseMessage> ReRegisterAsync(string region = "ap-southeast", string? walletAddress = null, Key? signWith = null, long? ts = null)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new { node_id = NodeId, region, runtime = "ollama", wallet_address = walletAddress, public_key = PublicKey });
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/register") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in NodeKeyProof.SignHeaders(signWith ?? Key, NodeId, "POST", "/v1/nodes/register", body, ts ?? NextTs()))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var response = await _api.SendAsync(request);
        if (response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync();
            Token = JsonSerializer.Deserialize(text, DgonJsonContext.Default.RegisterResponse)!.NodeToken;
        }

        return response;
    }

    /// <summary>Rotates the token with a key-signed <c>POST /v1/nodes/rotate-token</c>; keeps the new token on success.</summary>
    /// <returns>The response (the caller disposes it).</returns>
    public async Task<HttpResponseMessage> RotateTokenAsync()
    {
        var body = "{}"u8.ToArray();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/rotate-token") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in NodeKeyProof.SignHeaders(Key, NodeId, "POST", "/v1/nodes/rotate-token", body, NextTs()))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var response = await _api.SendAsync(request);
        if (response.IsSuccessStatusCode)
        {
            Token = JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(), DgonJsonContext.Default.RotateTokenResponse)!.NodeToken;
        }

        return response;
    }

    /// <summary>The same node (key, token, clock) talking to another API address, e.g. a second replica or a restarted API.</summary>
    public TestNode Via(HttpClient api) => new(api, NodeId, Token, Key) { Scheme = Scheme, _lastTs = Interlocked.Read(ref _lastTs) };

    /// <summary>
    /// Continues <paramref name="previous"/>'s timestamps (the same node id enrolled again): the server's replay clock
    /// outlives a deletion, so the new incarnation's first heartbeat must be later than the old one's last.
    /// </summary>
    public void ContinueClockOf(TestNode previous)
    {
        ArgumentNullException.ThrowIfNull(previous);
        Interlocked.Exchange(ref _lastTs, Math.Max(Interlocked.Read(ref _lastTs), Interlocked.Read(ref previous._lastTs)));
    }

    /// <summary>Sends a signed heartbeat <c>{"ready":…}</c> plus optional metrics.</summary>
    public Task<HttpResponseMessage> HeartbeatAsync(bool ready, double? gpuUtil = null, double? memUsedGb = null, double? p95Ms = null)
    {
        var fields = new List<string> { $"\"ready\":{(ready ? "true" : "false")}" };
        void Add(string name, double? v)
        {
            if (v is { } value)
            {
                fields.Add($"\"{name}\":{value.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
            }
        }

        Add("gpu_util", gpuUtil);
        Add("mem_used_gb", memUsedGb);
        Add("p95_ms", p95Ms);
        return SendSignedAsync("/v1/nodes/heartbeat", "{" + string.Join(',', fields) + "}");
    }

    /// <summary>
    /// POSTs <paramref name="body"/> to <paramref name="path"/> signed with this node's token (or
    /// <paramref name="token"/>) at <paramref name="now"/> (default: current time, but always later than the last).
    /// </summary>
    public Task<HttpResponseMessage> SendSignedAsync(string path, string body, DateTimeOffset? now = null, string? token = null, string? nodeIdHeader = null)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var ts = now?.ToUnixTimeSeconds() ?? NextTs();
        return SendAsync(path, bytes, Sign(path, bytes, ts, token, nodeIdHeader));
    }

    /// <summary>The signing headers of a request, as <see cref="SendSignedAsync"/> would send them (for replays).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Sign(string path, byte[] body, long ts, string? token = null, string? nodeIdHeader = null) =>
        Scheme == SignatureScheme.V2
            ? NodeAuth.SignHeadersV2(nodeIdHeader ?? NodeId, token ?? Token, "POST", path, body, ts)
            : NodeAuth.SignHeaders(nodeIdHeader ?? NodeId, token ?? Token, body, DateTimeOffset.FromUnixTimeSeconds(ts));

    /// <summary>POSTs exactly <paramref name="body"/> with exactly <paramref name="headers"/> (a replay sends the same twice).</summary>
    public Task<HttpResponseMessage> SendAsync(string path, byte[] body, IEnumerable<KeyValuePair<string, string>> headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return _api.SendAsync(request);
    }

    /// <summary>The next timestamp: now in unix seconds, but at least one more than the last one used.</summary>
    public long NextTs()
    {
        while (true)
        {
            var last = Interlocked.Read(ref _lastTs);
            var next = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), last + 1);
            if (Interlocked.CompareExchange(ref _lastTs, next, last) == last)
            {
                return next;
            }
        }
    }

    private static async Task<string> TokenFromAsync(HttpResponseMessage response, string nodeId)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"register {nodeId} → {(int)response.StatusCode}: {text}");
        }

        return JsonSerializer.Deserialize(text, DgonJsonContext.Default.RegisterResponse)!.NodeToken;
    }
}
