using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer.Tests;

/// <summary>Plain HttpClient calls against the test server, JSON in and out.</summary>
public static class HttpHelpers
{
    public const string NodesPath = "/apis/dgon.io/v1alpha1/namespaces/default/dgonnodes";

    public static HttpClient Client(KubeApiTestServer server) => new() { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

    public static async Task<(HttpStatusCode Code, JsonObject Body)> SendAsync(this HttpClient client, HttpMethod method, string path, JsonNode? body = null, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text) as JsonObject ?? []);
    }

    public static JsonObject Node(string name, string runtime = "ollama", string region = "eu-west-1", JsonObject? labels = null) => new()
    {
        ["apiVersion"] = "dgon.io/v1alpha1",
        ["kind"] = "DgonNode",
        ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = labels ?? [] },
        ["spec"] = new JsonObject { ["region"] = region, ["runtime"] = runtime },
    };

    public static async Task<JsonObject> CreateNodeAsync(this HttpClient client, string name, JsonObject? labels = null)
    {
        var (code, body) = await client.SendAsync(HttpMethod.Post, NodesPath, Node(name, labels: labels));
        Assert.True(code == HttpStatusCode.Created, $"create {name}: {code} {body.ToJsonString()}");
        return body;
    }

    public static string? Str(this JsonNode? node, string path)
    {
        foreach (var part in path.Split('.'))
        {
            node = node?[part];
        }

        return node?.GetValueKind() == System.Text.Json.JsonValueKind.String ? node.GetValue<string>() : node?.ToJsonString();
    }

    /// <summary>Reads newline-delimited watch events from a streaming response.</summary>
    public static async IAsyncEnumerable<JsonObject> ReadEventsAsync(HttpResponseMessage response, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length > 0)
            {
                yield return (JsonObject)JsonNode.Parse(line)!;
            }
        }
    }
}
