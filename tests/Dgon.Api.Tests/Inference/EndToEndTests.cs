using System.ClientModel;
using System.Net;
using System.Text.Json;
using Dgon.Testing;
using OpenAI.Chat;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// Issue 13 end to end with real processes: the API process, two real agent processes linked to it, each in front of
/// its own runtime stub (Ollama's tags and the OpenAI-compatible API), and the official OpenAI .NET SDK as the client.
/// Plain and streamed completions, failover to the second node, cancellation reaching the runtime, quarantine
/// stopping the routing, and receipts that verify (and a tampered one that does not).
/// </summary>
public sealed class EndToEndTests : IAsyncLifetime
{
    private const string Model = "llama3.1:8b";
    private readonly List<ManagedProcess> _agents = [];
    private readonly List<TempDir> _dirs = [];
    private ApiHost _api = null!;
    private StubRuntime _runtimeA = null!;
    private StubRuntime _runtimeB = null!;
    private string _key = "";

    public async Task InitializeAsync()
    {
        var postgres = await SharedPostgres.GetAsync();
        _api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await postgres.CreateDatabaseAsync() });
        _runtimeA = await StubRuntime.StartAsync(null, Model);
        _runtimeB = await StubRuntime.StartAsync(null, Model);
        var (status, body) = await SendAsync(_api.Client, HttpMethod.Post, "/v1/admin/api-keys", ApiHost.AdminToken, "{\"name\":\"e2e\",\"scopes\":[\"inference\",\"receipts:read\"]}");
        Assert.True(status == HttpStatusCode.Created, body);
        _key = JsonDocument.Parse(body).RootElement.GetProperty("key").GetString()!;
    }

    public async Task DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.DisposeAsync();
        }

        await _runtimeA.DisposeAsync();
        await _runtimeB.DisposeAsync();
        await _api.DisposeAsync();
        foreach (var dir in _dirs)
        {
            dir.Dispose();
        }
    }

    [Fact]
    public async Task Real_agents_serve_the_SDK_fail_over_cancel_honour_quarantine_and_leave_verifiable_receipts()
    {
        var nodeA = ApiFixture.NewNodeId("e2e-a");
        var nodeB = ApiFixture.NewNodeId("e2e-b");
        await StartAgentAsync(nodeA, _runtimeA);
        await Eventually.Until(async () => await LinkedAsync(nodeA), TimeSpan.FromSeconds(60), "agent A linked and active\n" + Dump());

        // The verified manifest is readable: the runtime's model, the node's capacity, the link's state.
        var (_, linked) = await SendAsync(_api.Client, HttpMethod.Get, "/v1/inference/nodes", ApiHost.AdminToken);
        var viewA = JsonDocument.Parse(linked).RootElement.EnumerateArray().Single(n => n.GetProperty("node_id").GetString() == nodeA);
        Assert.True(viewA.GetProperty("local").GetBoolean());
        Assert.Equal(4, viewA.GetProperty("capacity").GetInt32());
        Assert.Equal(Model, viewA.GetProperty("manifest").GetProperty("runtime").GetProperty("models")[0].GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(_api.Client, HttpMethod.Get, "/v1/inference/nodes")).Status);

        // Plain and streamed, through the SDK, unmodified.
        var chat = Chat();
        var plain = await chat.CompleteChatAsync([new UserChatMessage("tell me about gpus")]);
        Assert.Equal(StubRuntime.ReplyText("tell me about gpus", StubModel.Echo.Chunks), plain.Value.Content[0].Text);
        Assert.True(plain.Value.Usage.OutputTokenCount > 0);
        var streamed = new System.Text.StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream it please")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(StubRuntime.ReplyText("stream it please", StubModel.Echo.Chunks), streamed.ToString());

        // Receipts: stored valid, with the node's proof; the verifier agrees; a tampered copy does not verify.
        await Eventually.Until(async () => (await ReceiptsAsync(nodeA)).Count >= 2, TimeSpan.FromSeconds(30), "two receipts of node A");
        var receipt = (await ReceiptsAsync(nodeA))[0];
        Assert.Equal("valid", receipt.GetProperty("signature_status").GetString());
        Assert.StartsWith("sha256:", receipt.GetProperty("payload").GetProperty("proof").GetString(), StringComparison.Ordinal);
        var verified = await SendAsync(_api.Client, HttpMethod.Post, "/v1/receipts/verify", _key, receipt.GetRawText());
        Assert.Contains("\"valid\":true", verified.Body, StringComparison.Ordinal);
        var tampered = System.Text.Json.Nodes.JsonNode.Parse(receipt.GetRawText())!;
        tampered["payload"]!["tokens_output"] = 100_000;
        var refused = await SendAsync(_api.Client, HttpMethod.Post, "/v1/receipts/verify", _key, tampered.ToJsonString());
        Assert.Contains("\"valid\":false", refused.Body, StringComparison.Ordinal);

        // Failover: node A's runtime now fails before its first byte; node B takes the request.
        await StartAgentAsync(nodeB, _runtimeB);
        await Eventually.Until(async () => await LinkedAsync(nodeB), TimeSpan.FromSeconds(60), "agent B linked and active\n" + Dump());
        _runtimeA.SetModel(Model, StubModel.Echo with { FailBeforeFirstByte = true });
        _runtimeB.ResetCounters();
        for (var i = 0; i < 3; i++)
        {
            var answer = await chat.CompleteChatAsync([new UserChatMessage("fail over " + i)]);
            Assert.Equal(StubRuntime.ReplyText("fail over " + i, StubModel.Echo.Chunks), answer.Value.Content[0].Text);
        }

        Assert.Equal(3, _runtimeB.Completed);
        _runtimeA.SetModel(Model, StubModel.Echo);

        // Cancellation: a slow stream the client abandons is aborted at the runtime.
        _runtimeA.SetModel(Model, StubModel.Echo with { ChunkDelay = TimeSpan.FromMilliseconds(300), Chunks = 40 });
        _runtimeB.SetModel(Model, StubModel.Echo with { ChunkDelay = TimeSpan.FromMilliseconds(300), Chunks = 40 });
        var abortedBefore = _runtimeA.AbortedByClient + _runtimeB.AbortedByClient;
        using (var cts = new CancellationTokenSource())
        {
            var received = 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("slow one")], cancellationToken: cts.Token))
                {
                    if (update.ContentUpdate.Count > 0 && ++received == 2)
                    {
                        await cts.CancelAsync();
                    }
                }
            });
        }

        await Eventually.Until(() => Task.FromResult(_runtimeA.AbortedByClient + _runtimeB.AbortedByClient > abortedBefore), TimeSpan.FromSeconds(30), "the runtime saw the call cancelled\n" + Dump());
        _runtimeA.SetModel(Model, StubModel.Echo);
        _runtimeB.SetModel(Model, StubModel.Echo);

        // Quarantine stops routing to a node: with A held, every request goes to B.
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(_api.Client, HttpMethod.Post, $"/v1/admin/nodes/{nodeA}/quarantine", ApiHost.AdminToken)).Status);
        await Eventually.Until(async () => await StatusAsync(nodeA) == "quarantine", TimeSpan.FromSeconds(30), "node A quarantined");
        _runtimeA.ResetCounters();
        for (var i = 0; i < 4; i++)
        {
            await chat.CompleteChatAsync([new UserChatMessage("held " + i)]);
        }

        Assert.Equal(0, _runtimeA.Requests);
    }

    private ChatClient Chat() =>
        new(Model, new ApiKeyCredential(_key), new OpenAI.OpenAIClientOptions
        {
            Endpoint = new Uri(_api.BaseAddress, "/v1"),
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0),
            NetworkTimeout = TimeSpan.FromSeconds(60),
        });

    private async Task StartAgentAsync(string nodeId, StubRuntime runtime)
    {
        var dir = new TempDir();
        _dirs.Add(dir);
        var joinToken = await _api.CreateJoinTokenAsync("{\"max_uses\":1}");
        string[] cleared = ["DGON_API", "NODE_ID", "REGION", "RUNTIME", "OLLAMA_URL", "HEARTBEAT_INTERVAL", "DGON_CONFIG_DIR", "ASN_HINT", "WALLET_ADDRESS", "GREEN_ENERGY", "LOG_LEVEL", "DGON_LINK", "DGON_MAX_PARALLEL"];
        var env = cleared.ToDictionary(v => v, _ => (string?)null);
        env["DGON_JOIN_TOKEN"] = joinToken;
        _agents.Add(ManagedProcess.Start("dotnet", [
            RepoPaths.BuiltAssembly("agent", "Dgon.Agent"),
            "--api", _api.BaseAddress.ToString(),
            "--node-id", nodeId,
            "--region", "eu-west",
            "--ollama-url", runtime.BaseAddress.ToString(),
            "--interval", "0.5",
            "--max-parallel", "4",
            "--config-dir", dir.Path,
        ], env));
    }

    private async Task<bool> LinkedAsync(string nodeId)
    {
        if (await StatusAsync(nodeId) != "active")
        {
            return false;
        }

        var (status, body) = await SendAsync(_api.Client, HttpMethod.Get, "/v1/models", _key);
        return status == HttpStatusCode.OK && body.Contains(Model, StringComparison.Ordinal)
            && (await SendAsync(_api.Client, HttpMethod.Get, "/metrics")).Body.Contains($"dgon_gateway_in_flight{{node=\"{nodeId}\"}}", StringComparison.Ordinal);
    }

    private async Task<string?> StatusAsync(string nodeId)
    {
        var (_, body) = await SendAsync(_api.Client, HttpMethod.Get, $"/v1/nodes?prefix={nodeId}", ApiHost.AdminToken);
        return JsonDocument.Parse(body).RootElement.EnumerateArray().FirstOrDefault(n => n.GetProperty("id").GetString() == nodeId) is { ValueKind: JsonValueKind.Object } node
            ? node.GetProperty("status").GetString()
            : null;
    }

    private async Task<IReadOnlyList<JsonElement>> ReceiptsAsync(string nodeId)
    {
        var (_, body) = await SendAsync(_api.Client, HttpMethod.Get, $"/v1/receipts?node={nodeId}", _key);
        return [.. JsonDocument.Parse(body).RootElement.EnumerateArray().Select(r => r.Clone())];
    }

    private string Dump() => _api.Process.Dump() + "\n" + string.Join('\n', _agents.Select(a => a.Dump()));

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("dgon-e2e-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
