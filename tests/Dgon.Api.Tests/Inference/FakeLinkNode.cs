using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Receipts;
using Dgon.Testing;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// A node written in the test (not the real agent): enrolled through the real API (<see cref="TestNode"/>), active
/// after a ready heartbeat, linked with a <see cref="ClientWebSocket"/> whose upgrade it signs (HMAC v2 over
/// <c>GET /v1/nodes/link</c>, empty body), saying hello with a manifest signed by its key. Each <c>dispatch</c> is
/// answered by <see cref="Behaviour"/> (default: <see cref="EchoAsync"/>); every frame the API sends is kept.
/// </summary>
public sealed class FakeLinkNode : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _send = new(1, 1);
    private Task _loop = Task.CompletedTask;

    private FakeLinkNode(TestNode node, ClientWebSocket socket, string region, string model)
    {
        Node = node;
        _socket = socket;
        Region = region;
        Model = model;
    }

    /// <summary>The enrolled node.</summary>
    public TestNode Node { get; }

    /// <summary>Its id.</summary>
    public string NodeId => Node.NodeId;

    /// <summary>Its region.</summary>
    public string Region { get; }

    /// <summary>The model it serves.</summary>
    public string Model { get; }

    /// <summary>Every frame the API sent after welcome (dispatch, cancel), in order.</summary>
    public ConcurrentQueue<LinkMessage> Received { get; } = new();

    /// <summary>The welcome frame.</summary>
    public WelcomeMessage? Welcome { get; private set; }

    /// <summary>How dispatches are answered.</summary>
    public Func<FakeLinkNode, DispatchMessage, CancellationToken, Task> Behaviour { get; set; } = (node, d, ct) => node.EchoAsync(d, ct);

    /// <summary>Dispatches seen.</summary>
    public IReadOnlyList<DispatchMessage> Dispatches => [.. Received.OfType<DispatchMessage>()];

    /// <summary>Cancels seen.</summary>
    public IReadOnlyList<CancelMessage> Cancels => [.. Received.OfType<CancelMessage>()];

    /// <summary>The deterministic reply to a request: "echo: " + the last message's content, in pieces of 4 characters.</summary>
    public static IReadOnlyList<string> ReplyPieces(JsonElement request)
    {
        var last = request.GetProperty("messages").EnumerateArray().Last();
        var text = "echo: " + (last.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : "");
        return [.. Enumerable.Range(0, (text.Length + 3) / 4).Select(i => text.Substring(i * 4, Math.Min(4, text.Length - (i * 4))))];
    }

    /// <summary>The whole reply text for <paramref name="prompt"/> as a user message.</summary>
    public static string ReplyTo(string prompt) => "echo: " + prompt;

    /// <summary>Enrolls, heartbeats ready and links a node serving <paramref name="model"/>.</summary>
    public static async Task<FakeLinkNode> StartAsync(HttpClient api, string nodeId, string model, int maxParallel = 4, string region = "ap-southeast")
    {
        ArgumentNullException.ThrowIfNull(api);
        var node = await TestNode.RegisterAsync(api, nodeId, region);
        using (var heartbeat = await node.HeartbeatAsync(ready: true))
        {
            Assert.True(heartbeat.IsSuccessStatusCode, $"heartbeat of {nodeId}: {(int)heartbeat.StatusCode}");
        }

        var socket = await ConnectAsync(api.BaseAddress!, node);
        var fake = new FakeLinkNode(node, socket, region, model);
        var manifest = Manifest(nodeId, model, maxParallel);
        await fake.SendAsync(new HelloMessage(manifest, ManifestSignatures.Sign(node.Key, manifest)), CancellationToken.None);
        fake.Welcome = Assert.IsType<WelcomeMessage>(await fake.ReceiveAsync(CancellationToken.None));
        fake._loop = Task.Run(fake.LoopAsync);
        return fake;
    }

    /// <summary>A manifest of one model.</summary>
    public static CapabilityManifest Manifest(string nodeId, string model, int maxParallel, long? issuedAt = null) => new()
    {
        NodeId = nodeId,
        ClientVersion = "test",
        IssuedAt = issuedAt ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        MaxParallel = maxParallel,
        Hardware = new HardwareManifest { Os = "linux", Arch = "x64", CpuCores = 2 },
        Runtime = new RuntimeManifest { Kind = "ollama", Models = [new ModelManifest(model, 1000, "Q4_0")] },
    };

    /// <summary>Opens a socket to the link with the node's signed upgrade (the caller sends hello).</summary>
    public static async Task<ClientWebSocket> ConnectAsync(Uri api, TestNode node, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(node);
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
        foreach (var (name, value) in headers ?? NodeAuth.SignHeadersV2(node.NodeId, node.Token, "GET", "/v1/nodes/link", [], node.NextTs()))
        {
            socket.Options.SetRequestHeader(name, value);
        }

        var uri = new UriBuilder(api) { Scheme = api.Scheme == "https" ? "wss" : "ws", Path = "/v1/nodes/link" }.Uri;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await socket.ConnectAsync(uri, timeout.Token);
        return socket;
    }

    /// <summary>Sends one frame.</summary>
    public async Task SendAsync(LinkMessage message, CancellationToken ct)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, LinkJsonContext.Default.LinkMessage);
        await _send.WaitAsync(ct);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, true, ct);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>An OpenAI chunk with <paramref name="content"/> (and <paramref name="finish"/>).</summary>
    public static JsonElement Chunk(string model, string? content, string? finish = null)
    {
        var delta = new JsonObject();
        if (content is not null)
        {
            delta["content"] = content;
        }

        var chunk = new JsonObject
        {
            ["id"] = "chatcmpl-runtime",
            ["object"] = "chat.completion.chunk",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
        };
        return JsonDocument.Parse(chunk.ToJsonString()).RootElement.Clone();
    }

    /// <summary>The signed receipt of a task (the agent's shape); <paramref name="tamper"/> changes it after signing.</summary>
    public JsonElement Receipt(DispatchMessage dispatch, string text, int tokensIn, int tokensOut, Action<JsonObject>? tamper = null)
    {
        ArgumentNullException.ThrowIfNull(dispatch);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var receipt = new JsonObject
        {
            ["id"] = dispatch.TaskId,
            ["node_id"] = NodeId,
            ["region"] = Region,
            ["model_id"] = dispatch.Model,
            ["payload"] = new JsonObject
            {
                ["version"] = "1.0",
                ["ts_start"] = now,
                ["ts_end"] = now,
                ["tokens_input"] = tokensIn,
                ["tokens_output"] = tokensOut,
                ["p95_ms"] = 1,
                ["ttft_ms"] = 1,
                ["prompt_hash"] = ExecutionReceipts.PromptHash(dispatch.Request.GetProperty("messages")),
                ["proof"] = ExecutionReceipts.Proof(dispatch.TaskId, text, NodeId),
            },
        };
        var signature = ExecutionReceipts.Sign(Node.Key, JsonDocument.Parse(receipt.ToJsonString()).RootElement);
        receipt["payload"]!["signature"] = signature;
        tamper?.Invoke(receipt);
        return JsonDocument.Parse(receipt.ToJsonString()).RootElement.Clone();
    }

    /// <summary>Answers with the echo reply in chunks, a usage chunk, and a signed result.</summary>
    public async Task EchoAsync(DispatchMessage dispatch, CancellationToken ct, Action<JsonObject>? tamper = null)
    {
        ArgumentNullException.ThrowIfNull(dispatch);
        var pieces = ReplyPieces(dispatch.Request);
        foreach (var piece in pieces)
        {
            await SendAsync(new ChunkMessage(dispatch.TaskId, Chunk(dispatch.Model, piece)), ct);
        }

        await SendAsync(new ChunkMessage(dispatch.TaskId, Chunk(dispatch.Model, null, "stop")), ct);
        var usage = JsonDocument.Parse(new JsonObject
        {
            ["id"] = "chatcmpl-runtime",
            ["object"] = "chat.completion.chunk",
            ["created"] = 1,
            ["model"] = dispatch.Model,
            ["choices"] = new JsonArray(),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 3, ["completion_tokens"] = pieces.Count, ["total_tokens"] = 3 + pieces.Count },
        }.ToJsonString()).RootElement.Clone();
        await SendAsync(new ChunkMessage(dispatch.TaskId, usage), ct);
        var text = string.Concat(pieces);
        await SendAsync(new ResultMessage(dispatch.TaskId, "stop", 3, pieces.Count, Receipt(dispatch, text, 3, pieces.Count, tamper)), ct);
    }

    /// <summary>Closes the link.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (_socket.State == WebSocketState.Open)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "test over", timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // gone
        }

        try
        {
            await _loop;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // gone
        }

        _socket.Dispose();
        _stop.Dispose();
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            LinkMessage? message;
            try
            {
                message = await ReceiveAsync(_stop.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                return;
            }

            if (message is null)
            {
                return;
            }

            Received.Enqueue(message);
            if (message is DispatchMessage dispatch)
            {
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await Behaviour(this, dispatch, _stop.Token);
                    }
                    catch (Exception e) when (e is WebSocketException or OperationCanceledException)
                    {
                        // the link went
                    }
                });
            }
        }
    }

    /// <summary>The next frame, or null when the API closed the link.</summary>
    public async Task<LinkMessage?> ReceiveAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer, ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return JsonSerializer.Deserialize(message.ToArray(), LinkJsonContext.Default.LinkMessage);
            }
        }
    }

    /// <summary>The text of the SSE body's <c>data:</c> lines.</summary>
    public static IReadOnlyList<string> DataLines(string body) =>
        [.. body.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..])];

}
