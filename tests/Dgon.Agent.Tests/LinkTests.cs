using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Dgon.Agent.Link;
using Dgon.Agent.Manifest;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Dgon.Domain.Receipts;
using Dgon.Testing;
using Microsoft.Extensions.Logging.Testing;
using NSec.Cryptography;

namespace Dgon.Agent.Tests;

/// <summary>
/// The coordinator link and the work executor in process, against a fake link endpoint (Kestrel WebSockets, HMAC
/// checked with the domain's NodeAuth) and a stub runtime speaking OpenAI SSE, on real loopback sockets.
/// </summary>
public sealed class LinkTests : IAsyncLifetime
{
    private const string NodeId = "link-node";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly Key _key = NodeKeyProof.NewKey();
    private readonly string _token = NodeAuth.NewToken();
    private readonly FakeLogger _log = new();
    private readonly HttpClient _runtimeHttp = AgentHost.CreateRuntimeHttpClient();
    private readonly HttpClient _probeHttp = new();
    private StubChatRuntime _runtime = null!;
    private FakeLink _link = null!;
    private LoopbackServer _server = null!;

    private string PublicKey => NodeKeyProof.PublicKeyText(_key);

    public async Task InitializeAsync()
    {
        _runtime = await StubChatRuntime.StartAsync();
        (_link, _server) = await FakeLink.StartAsync(id => id == NodeId ? new LinkNode(_token, PublicKey) : null);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _runtime.DisposeAsync();
        _runtimeHttp.Dispose();
        _probeHttp.Dispose();
        _key.Dispose();
    }

    private sealed class Running(CoordinatorLink link, AgentStatus status, Task run, CancellationTokenSource cts) : IAsyncDisposable
    {
        public CoordinatorLink Link => link;

        public AgentStatus Status => status;

        public Task Task => run;

        public Task StopAsync() => cts.CancelAsync();

        public async ValueTask DisposeAsync()
        {
            await cts.CancelAsync();
            await run.WaitAsync(Patience);
            cts.Dispose();
        }
    }

    private Running StartLink(int maxParallel = 1, Func<NodeCredentials?>? credentials = null, TimeSpan? drain = null)
    {
        var time = TimeProvider.System;
        var status = new AgentStatus(NodeId, maxParallel, linkEnabled: true, time, _log);
        var executor = new WorkExecutor(_runtimeHttp, _runtime.BaseAddress, NodeId, "eu-west", _key, maxParallel, status, time, _log);
        var system = new CannedSystem("linux");
        system.Commands[CannedSystem.NvidiaSmi] = "NVIDIA H100 80GB HBM3, 81559\n";
        var manifests = new ManifestBuilder(new HardwareDetector(system), new RuntimeModels(_probeHttp, _runtime.BaseAddress, NodeRuntime.Ollama), NodeId, NodeRuntime.Ollama, maxParallel, time);
        var link = new CoordinatorLink(_server.BaseAddress, false, NodeId, NodeRuntime.Ollama, new RequestClock(time),
            credentials ?? (() => new NodeCredentials(NodeId, _token)), _key, manifests, executor, status, time, _log, random: () => 0.1)
        {
            DrainLimit = drain ?? CoordinatorLink.DrainTimeout,
        };
        var cts = new CancellationTokenSource();
        return new Running(link, status, Task.Run(() => link.RunAsync(cts.Token)), cts);
    }

    private static JsonElement Chat(string content) =>
        JsonDocument.Parse($$"""{"model":"client-alias","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"{{content}}"}],"stream":false,"temperature":0}""").RootElement.Clone();

    private static string Text(IEnumerable<ChunkMessage> chunks)
    {
        var text = new StringBuilder();
        foreach (var c in chunks)
        {
            foreach (var choice in c.Chunk.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("delta").TryGetProperty("content", out var piece) && piece.ValueKind == JsonValueKind.String)
                {
                    text.Append(piece.GetString());
                }
            }
        }

        return text.ToString();
    }

    private string LogText => string.Join('\n', _log.Collector.GetSnapshot().Select(r => $"{r.Level} {r.Id.Name}: {r.Message}"));

    [Fact]
    public async Task Hello_carries_a_signed_manifest_and_a_dispatch_streams_chunks_and_a_receipt_that_verifies()
    {
        await using var running = StartLink();
        var session = await _link.NextSessionAsync(Patience);

        var manifest = session.Hello.Manifest;
        Assert.True(ManifestSignatures.Verify(PublicKey, manifest, session.Hello.Signature));
        Assert.Equal(NodeId, manifest.NodeId);
        Assert.Equal(1, manifest.MaxParallel);
        Assert.Equal("ollama", manifest.Runtime.Kind);
        Assert.Contains(new ModelManifest("echo-1", 4_661_224_676L, "Q4_K_M"), manifest.Runtime.Models);
        Assert.Equal([new GpuManifest("nvidia", "NVIDIA H100 80GB HBM3", 79.65)], manifest.Hardware.Gpus);
        Assert.Equal(AgentStates.Ready, (await session.NextAsync<StateMessage>()).State);

        var request = Chat("hello there");
        await session.SendAsync(new DispatchMessage("task-1", "echo-1", request, 30));
        var result = await session.NextAsync<ResultMessage>(r => r.TaskId == "task-1");

        var chunks = session.All.OfType<ChunkMessage>().Where(c => c.TaskId == "task-1").ToList();
        var text = Text(chunks);
        Assert.Equal(StubChatRuntime.EchoReply("hello there"), text);
        Assert.True(chunks.Count >= 4, $"{chunks.Count} chunks");
        Assert.Contains(chunks, c => c.Chunk.TryGetProperty("usage", out _)); // the usage chunk is forwarded too
        Assert.Equal("stop", result.FinishReason);
        Assert.Equal(4, result.PromptTokens); // the stub's usage: words of both messages
        Assert.Equal(3, result.CompletionTokens);

        Assert.Equal(ReceiptVerification.Ok, ExecutionReceipts.Verify(PublicKey, result.Receipt));
        var receipt = result.Receipt;
        Assert.Equal("task-1", receipt.GetProperty("id").GetString());
        Assert.Equal(NodeId, receipt.GetProperty("node_id").GetString());
        Assert.Equal("eu-west", receipt.GetProperty("region").GetString());
        Assert.Equal("echo-1", receipt.GetProperty("model_id").GetString());
        var payload = receipt.GetProperty("payload");
        Assert.Equal(ExecutionReceipts.Proof("task-1", text, NodeId), payload.GetProperty("proof").GetString());
        Assert.Equal(ExecutionReceipts.PromptHash(request.GetProperty("messages")), payload.GetProperty("prompt_hash").GetString());
        Assert.Equal(4, payload.GetProperty("tokens_input").GetInt32());
        Assert.Equal(3, payload.GetProperty("tokens_output").GetInt32());
        Assert.True(payload.GetProperty("ts_end").GetInt64() >= payload.GetProperty("ts_start").GetInt64());
        Assert.True(payload.GetProperty("ttft_ms").GetInt64() >= 0);
        Assert.True(payload.GetProperty("p95_ms").GetInt64() >= 0);
        Assert.Equal("1.0", payload.GetProperty("version").GetString());

        // a receipt altered after signing does not verify
        var tampered = JsonDocument.Parse(receipt.GetRawText().Replace("\"tokens_output\":3", "\"tokens_output\":300", StringComparison.Ordinal)).RootElement;
        Assert.False(ExecutionReceipts.Verify(PublicKey, tampered).Valid);

        var sent = Assert.Single(_runtime.Bodies);
        Assert.Equal("echo-1", sent["model"]!.GetValue<string>());
        Assert.True(sent["stream"]!.GetValue<bool>());
        Assert.True(sent["stream_options"]!["include_usage"]!.GetValue<bool>());
        Assert.Equal(0, sent["temperature"]!.GetValue<int>());

        await Eventually.Until(() => Task.FromResult(running.Status.State == AgentStates.Ready), Patience, "back to READY");
        var states = session.All.OfType<StateMessage>().Select(s => s.State).ToList();
        Assert.Contains(AgentStates.Executing, states);
        Assert.Contains(_log.Collector.GetSnapshot(), r => r.Id.Name == "state.transition" && r.Message.Contains("READY -> EXECUTING", StringComparison.Ordinal));
        var totals = running.Status.Snapshot().Totals;
        Assert.Equal(new StatusTotals(1, 0, 4, 3), totals);
    }

    [Fact]
    public async Task Cancel_aborts_the_runtime_call_and_answers_cancelled()
    {
        await using var running = StartLink();
        var session = await _link.NextSessionAsync(Patience);
        await session.SendAsync(new DispatchMessage("task-slow", "slow-1", Chat("go"), 60));
        await session.NextAsync<ChunkMessage>(c => c.TaskId == "task-slow");

        await session.SendAsync(new CancelMessage("task-slow"));
        var failure = await session.NextAsync<FailureMessage>(f => f.TaskId == "task-slow");

        Assert.Equal("cancelled", failure.Code);
        Assert.False(failure.BeforeFirstChunk);
        await Eventually.Until(() => Task.FromResult(_runtime.Aborted == 1), Patience, "the runtime saw the request aborted");
        Assert.Equal(0, _runtime.Completed);
    }

    [Fact]
    public async Task A_dispatch_beyond_max_parallel_fails_busy_before_the_first_chunk()
    {
        await using var running = StartLink(maxParallel: 1);
        var session = await _link.NextSessionAsync(Patience);
        await session.SendAsync(new DispatchMessage("task-a", "slow-1", Chat("one"), 60));
        await session.NextAsync<ChunkMessage>(c => c.TaskId == "task-a");

        await session.SendAsync(new DispatchMessage("task-b", "echo-1", Chat("two"), 60));
        var busy = await session.NextAsync<FailureMessage>(f => f.TaskId == "task-b");

        Assert.Equal("busy", busy.Code);
        Assert.True(busy.BeforeFirstChunk);
        Assert.Single(_runtime.Bodies); // task-b never reached the runtime
        Assert.Equal(1, running.Status.InFlight);
        await session.SendAsync(new CancelMessage("task-a"));
        await session.NextAsync<FailureMessage>(f => f.TaskId == "task-a");
    }

    [Fact]
    public async Task Runtime_errors_become_failures_with_the_right_code()
    {
        await using var running = StartLink(maxParallel: 4);
        var session = await _link.NextSessionAsync(Patience);

        await session.SendAsync(new DispatchMessage("t-404", "nope-1", Chat("x"), 30));
        await session.SendAsync(new DispatchMessage("t-500", "fail-1", Chat("x"), 30));
        await session.SendAsync(new DispatchMessage("t-cut", "cut-1", Chat("a b c d e"), 30));
        var unknown = await session.NextAsync<FailureMessage>(f => f.TaskId == "t-404");
        var failed = await session.NextAsync<FailureMessage>(f => f.TaskId == "t-500");
        var cut = await session.NextAsync<FailureMessage>(f => f.TaskId == "t-cut");

        Assert.Equal(("unknown_model", true), (unknown.Code, unknown.BeforeFirstChunk));
        Assert.Contains("not found", unknown.Message, StringComparison.Ordinal);
        Assert.Equal(("runtime_error", true), (failed.Code, failed.BeforeFirstChunk));
        Assert.Contains("fails on purpose", failed.Message, StringComparison.Ordinal);
        Assert.Equal(("runtime_error", false), (cut.Code, cut.BeforeFirstChunk));
    }

    [Fact]
    public async Task After_the_server_drops_the_link_the_agent_reconnects_with_a_later_timestamp_and_aborts_the_lost_task()
    {
        await using var running = StartLink();
        var first = await _link.NextSessionAsync(Patience);
        await first.SendAsync(new DispatchMessage("task-lost", "slow-1", Chat("go"), 60));
        await first.NextAsync<ChunkMessage>(c => c.TaskId == "task-lost");

        first.Abort();
        var second = await _link.NextSessionAsync(Patience);

        Assert.True(second.Ts > first.Ts, $"{second.Ts} > {first.Ts}");
        await Eventually.Until(() => Task.FromResult(_runtime.Aborted == 1), Patience, "the lost task's runtime call was aborted");
        await second.SendAsync(new DispatchMessage("task-2", "echo-1", Chat("again"), 30));
        var result = await second.NextAsync<ResultMessage>(r => r.TaskId == "task-2");
        Assert.True(ExecutionReceipts.Verify(PublicKey, result.Receipt).Valid);
        Assert.Contains("link.down", LogText, StringComparison.Ordinal);
        Assert.NotNull(running.Status.Snapshot().Link.LastError);
        Assert.True(running.Status.Snapshot().Link.Connected);
    }

    [Fact]
    public async Task A_401_at_the_upgrade_is_retried_with_the_credentials_of_the_next_attempt()
    {
        var calls = 0;
        await using var running = StartLink(credentials: () => Interlocked.Increment(ref calls) == 1 ? new NodeCredentials(NodeId, NodeAuth.NewToken()) : new NodeCredentials(NodeId, _token));
        var session = await _link.NextSessionAsync(Patience);

        var attempts = _link.Attempts;
        Assert.Equal((401, "bad-signature"), (attempts[0].Status, attempts[0].Problem));
        Assert.Equal(101, attempts[^1].Status);
        Assert.Contains("401", running.Status.Snapshot().Link.LastError, StringComparison.Ordinal);
        Assert.Equal(NodeId, session.Hello.Manifest.NodeId);
    }

    [Fact]
    public async Task A_changed_model_list_is_sent_as_a_new_signed_manifest()
    {
        await using var running = StartLink();
        var session = await _link.NextSessionAsync(Patience);

        _runtime.SetModels("echo-1", "echo-2");
        running.Link.OnRuntimeProbed(new OllamaStatus(true, [new OllamaModel("echo-1", null), new OllamaModel("echo-2", null)], null));
        var update = await session.NextAsync<ManifestMessage>();

        Assert.True(ManifestSignatures.Verify(PublicKey, update.Manifest, update.Signature));
        Assert.Equal(["echo-1", "echo-2"], update.Manifest.Runtime.Models.Select(m => m.Id));
        Assert.True(update.Manifest.IssuedAt > session.Hello.Manifest.IssuedAt);
    }

    [Fact]
    public async Task Stopping_drains_refuses_new_work_finishes_the_running_task_and_closes_normally()
    {
        _runtime.SlowChunks = 10;
        var running = StartLink(drain: TimeSpan.FromSeconds(20));
        var session = await _link.NextSessionAsync(Patience);
        await session.SendAsync(new DispatchMessage("task-finish", "slow-1", Chat("go"), 60));
        await session.NextAsync<ChunkMessage>(c => c.TaskId == "task-finish");

        await running.StopAsync();
        await session.NextAsync<StateMessage>(s => s.State == AgentStates.Draining);
        await session.SendAsync(new DispatchMessage("task-late", "echo-1", Chat("late"), 60));
        var busy = await session.NextAsync<FailureMessage>(f => f.TaskId == "task-late");
        var result = await session.NextAsync<ResultMessage>(r => r.TaskId == "task-finish");

        Assert.Equal(("busy", true), (busy.Code, busy.BeforeFirstChunk));
        Assert.True(ExecutionReceipts.Verify(PublicKey, result.Receipt).Valid);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, await session.Closed.WaitAsync(Patience));
        await running.Task.WaitAsync(Patience);
        Assert.Equal(AgentStates.Draining, running.Status.State);
        Assert.Contains("EXECUTING -> DRAINING", LogText, StringComparison.Ordinal);
        await running.DisposeAsync();
    }

    [Fact]
    public void The_link_url_follows_the_api_scheme_and_refuses_plain_ws_to_other_hosts()
    {
        Assert.Equal(new Uri("wss://api.example.com/prefix/v1/nodes/link"), CoordinatorLink.LinkUri(new Uri("https://api.example.com/prefix/")));
        Assert.Equal(new Uri("ws://127.0.0.1:8001/v1/nodes/link"), CoordinatorLink.LinkUri(new Uri("http://127.0.0.1:8001")));
        var status = new AgentStatus(NodeId, 1, true, TimeProvider.System, _log);
        var executor = new WorkExecutor(_runtimeHttp, _runtime.BaseAddress, NodeId, "r", _key, 1, status, TimeProvider.System, _log);
        var manifests = new ManifestBuilder(new HardwareDetector(new CannedSystem("linux")), new RuntimeModels(_probeHttp, _runtime.BaseAddress, NodeRuntime.Ollama), NodeId, NodeRuntime.Ollama, 1, TimeProvider.System);
        CoordinatorLink Make(string api, bool insecure) => new(new Uri(api), insecure, NodeId, NodeRuntime.Ollama, new RequestClock(TimeProvider.System), () => null, _key, manifests, executor, status, TimeProvider.System, _log);

        Assert.Throws<ArgumentException>(() => Make("http://api.example.com", insecure: false));
        Assert.Equal("ws", Make("http://api.example.com", insecure: true).Uri.Scheme);
        Assert.Equal("wss", Make("https://api.example.com", insecure: false).Uri.Scheme);
    }

    [Fact]
    public void Backoff_is_full_jitter_capped_at_30_seconds_and_p95_is_nearest_rank()
    {
        Assert.Equal(TimeSpan.FromSeconds(0.5), CoordinatorLink.Backoff(0, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(4), CoordinatorLink.Backoff(3, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(15), CoordinatorLink.Backoff(20, 0.5));
        Assert.Equal(0, WorkExecutor.P95([]));
        Assert.Equal(7, WorkExecutor.P95([7]));
        Assert.Equal(95, WorkExecutor.P95([.. Enumerable.Range(1, 100).Select(i => (double)i)]));
    }
}
