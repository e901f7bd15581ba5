using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using NSec.Cryptography;

namespace Dgon.Operator.Tests;

/// <summary>
/// A node that enrolls the issue-9 way, written out by hand so the tests see every header: an Ed25519 key, a join
/// token as bearer credential at registration, v2 HMAC signatures with strictly increasing timestamps.
/// </summary>
public sealed class KeyedNode(HttpClient api, string nodeId, string region = "eu-central") : IDisposable
{
    public const string HeartbeatPath = "/v1/nodes/heartbeat";

    private long _lastTs;

    public string NodeId { get; } = nodeId;

    public string Region { get; } = region;

    public Key Key { get; } = NodeKeyProof.NewKey();

    public string PublicKey => NodeKeyProof.PublicKeyText(Key);

    public string? Token { get; private set; }

    /// <summary>POST /v1/nodes/register with <c>Authorization: Bearer &lt;join token&gt;</c> and this node's public key.</summary>
    public async Task<HttpResponseMessage> EnrollAsync(string joinToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["node_id"] = NodeId, ["region"] = Region, ["runtime"] = "ollama", ["public_key"] = PublicKey });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/nodes/register") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", joinToken);
        var response = await api.SendAsync(request);
        if (response.IsSuccessStatusCode)
        {
            var registered = JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(), DgonJsonContext.Default.RegisterResponse)!;
            Token = registered.NodeToken;
        }

        return response;
    }

    /// <summary>Enrolls and throws unless the API answered 200.</summary>
    public async Task<KeyedNode> EnrolledAsync(string joinToken)
    {
        using var response = await EnrollAsync(joinToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"enroll {NodeId} → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return this;
    }

    /// <summary>The next timestamp: now, but always later than the last one used (the API refuses a second twice).</summary>
    public long NextTs()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        _lastTs = Math.Max(now, _lastTs + 1);
        return _lastTs;
    }

    /// <summary>A v2-signed heartbeat request (send it more than once to replay it).</summary>
    public HttpRequestMessage SignedHeartbeat(bool ready = true, long? ts = null)
    {
        var bytes = Encoding.UTF8.GetBytes(ready ? """{"ready":true}""" : """{"ready":false}""");
        var request = new HttpRequestMessage(HttpMethod.Post, HeartbeatPath) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var (name, value) in NodeAuth.SignHeadersV2(NodeId, Token ?? throw new InvalidOperationException("not enrolled"), "POST", HeartbeatPath, bytes, ts ?? NextTs()))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    public async Task<HttpResponseMessage> HeartbeatAsync(bool ready = true)
    {
        using var request = SignedHeartbeat(ready);
        return await api.SendAsync(request);
    }

    /// <summary>A copy of <paramref name="original"/> with the same headers and body (HttpRequestMessage can be sent only once).</summary>
    public static async Task<HttpRequestMessage> CopyAsync(HttpRequestMessage original)
    {
        ArgumentNullException.ThrowIfNull(original);
        var copy = new HttpRequestMessage(original.Method, original.RequestUri);
        var bytes = await original.Content!.ReadAsByteArrayAsync();
        copy.Content = new ByteArrayContent(bytes);
        copy.Content.Headers.ContentType = original.Content.Headers.ContentType;
        foreach (var (name, values) in original.Headers)
        {
            copy.Headers.TryAddWithoutValidation(name, values);
        }

        return copy;
    }

    /// <summary>The problem type slug of a problem+json response (<c>https://dgon.io/problems/&lt;slug&gt;</c>), or null.</summary>
    public static async Task<string?> ProblemSlugAsync(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var text = await response.Content.ReadAsStringAsync();
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.TryGetProperty("type", out var type) && type.GetString() is { } t ? t[(t.LastIndexOf('/') + 1)..] : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static string Ts(long unixSeconds) => unixSeconds.ToString(CultureInfo.InvariantCulture);

    public void Dispose() => Key.Dispose();
}
