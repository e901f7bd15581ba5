using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;

namespace Dgon.Testing;

/// <summary>A node registered through the real API, able to send requests signed per seed 000.</summary>
public sealed class TestNode
{
    private readonly HttpClient _api;

    private TestNode(HttpClient api, string nodeId, string token)
    {
        _api = api;
        NodeId = nodeId;
        Token = token;
    }

    /// <summary>Node id.</summary>
    public string NodeId { get; }

    /// <summary>The node token returned by register.</summary>
    public string Token { get; set; }

    /// <summary>Registers a node (<c>POST /v1/nodes/register</c>) and keeps its token.</summary>
    /// <exception cref="HttpRequestException">Register did not answer 200.</exception>
    public static async Task<TestNode> RegisterAsync(HttpClient api, string nodeId, string region = "ap-southeast", string runtime = "ollama")
    {
        ArgumentNullException.ThrowIfNull(api);
        using var response = await api.PostAsJsonAsync("/v1/nodes/register", new { node_id = nodeId, region, runtime });
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"register {nodeId} → {(int)response.StatusCode}: {text}");
        }

        var body = JsonSerializer.Deserialize(text, DgonJsonContext.Default.RegisterResponse)!;
        return new TestNode(api, nodeId, body.NodeToken);
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
    /// <paramref name="token"/>) at <paramref name="now"/> (default: current time).
    /// </summary>
    public Task<HttpResponseMessage> SendSignedAsync(string path, string body, DateTimeOffset? now = null, string? token = null, string? nodeIdHeader = null)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        foreach (var (name, value) in NodeAuth.SignHeaders(nodeIdHeader ?? NodeId, token ?? Token, bytes, now ?? DateTimeOffset.UtcNow))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return _api.SendAsync(request);
    }
}
