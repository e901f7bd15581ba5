using System.Diagnostics;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Auth;
using Dgon.Domain.Nodes;
using Dgon.Testing;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests;

/// <summary>The agent loop in process against a programmable stub API and a stub Ollama, on real loopback sockets.</summary>
public sealed class AgentLoopTests : IAsyncLifetime
{
    private const string Heartbeat = "/v1/nodes/heartbeat";
    private const string Register = "/v1/nodes/register";
    private const string Receipts = "/v1/receipts";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly TempDir _dir = new();
    private readonly ListLogger<AgentLoop> _log = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly FakeMetrics _metrics = new(new HostSample(MemUsedGb: 6.5, GpuUtil: null));
    private StubApi _api = null!;
    private StubOllama _ollama = null!;

    public async Task InitializeAsync()
    {
        _api = await StubApi.StartAsync();
        _ollama = await StubOllama.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        await _ollama.DisposeAsync();
        _http.Dispose();
        _dir.Dispose();
    }

    private AgentOptions Options(bool sampleReceipt = false, NodeRuntime runtime = NodeRuntime.Ollama) => new()
    {
        Api = _api.BaseAddress,
        NodeId = "loop-node",
        Region = "ap-southeast",
        Runtime = runtime,
        OllamaUrl = _ollama.BaseAddress,
        Interval = TimeSpan.FromMilliseconds(100),
        ConfigDir = _dir.Path,
        SampleReceipt = sampleReceipt,
        AsnHint = "residential",
    };

    private TokenStore Store => new(_dir.Path);

    private sealed class Running(Task<int> run, CancellationTokenSource cts) : IAsyncDisposable
    {
        public Task<int> Task => run;

        public async Task<int> StopAsync()
        {
            await cts.CancelAsync();
            return await run.WaitAsync(Patience);
        }

        public async ValueTask DisposeAsync()
        {
            await cts.CancelAsync();
            try
            {
                await run.WaitAsync(Patience);
            }
            catch (TimeoutException)
            {
            }

            cts.Dispose();
        }
    }

    private Running Start(AgentOptions options)
    {
        var loop = new AgentLoop(options, new NodeApiClient(_http, options.Api, TimeProvider.System), Store,
            new OllamaProbe(_http, options.OllamaUrl), _metrics, TimeProvider.System, _log, random: () => 0);
        var cts = new CancellationTokenSource();
        return new Running(Task.Run(() => loop.RunAsync(cts.Token)), cts);
    }

    private Task Until(Func<bool> condition, string what) =>
        Eventually.Until(() => Task.FromResult(condition()), Patience, what + "\n" + _log);

    private void SaveToken(string token, string? api = null) =>
        Store.Save(new StoredToken(api ?? TokenStore.NormaliseApi(_api.BaseAddress), "loop-node", token, DateTimeOffset.UtcNow));

    [Fact]
    public async Task Registers_once_stores_the_token_and_sends_signed_heartbeats_with_measured_fields_only()
    {
        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 3, "three heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var register = Assert.Single(_api.On(Register));
        Assert.Equal("loop-node", register.Json.GetProperty("node_id").GetString());
        Assert.Equal("ap-southeast", register.Json.GetProperty("region").GetString());
        Assert.Equal("ollama", register.Json.GetProperty("runtime").GetString());
        Assert.Equal("residential", register.Json.GetProperty("asn_hint").GetString());

        var token = _api.TokenOf("loop-node")!;
        var stored = Store.Load(_api.BaseAddress, "loop-node").Token;
        Assert.Equal(token, stored?.NodeToken);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(TokenStore.FileMode, File.GetUnixFileMode(Store.PathFor("loop-node")));
        }

        foreach (var hb in _api.On(Heartbeat))
        {
            Assert.Equal("loop-node", hb.Header(NodeAuth.NodeIdHeader));
            Assert.StartsWith("application/json", hb.Header("Content-Type"), StringComparison.Ordinal);
            Assert.Equal(NodeAuthResult.Ok, NodeAuth.VerifySignature(token, hb.Body, hb.Header(NodeAuth.TimestampHeader)!, hb.Header(NodeAuth.SignatureHeader)!));
            Assert.False(hb.Json.GetProperty("ready").GetBoolean());
            Assert.Equal(6.5, hb.Json.GetProperty("mem_used_gb").GetDouble());
            Assert.False(hb.Json.TryGetProperty("gpu_util", out _));
            Assert.False(hb.Json.TryGetProperty("p95_ms", out _));
        }

        Assert.Equal(1, _log.Count("Registered node loop-node"));
        Assert.Equal(1, _log.Count("Phase changed to pending"));
        Assert.Equal(1, _log.Count("Runtime not ready"));
        Assert.Equal(1, _log.Count("Stopping"));
        Assert.DoesNotContain(_log.Lines, l => l.Contains(token, StringComparison.Ordinal));
        Assert.Contains(_log.Lines, l => l.Contains(token[..8], StringComparison.Ordinal));
    }

    [Fact]
    public async Task Ready_runtime_makes_the_node_active_and_logs_each_change_once()
    {
        await using var agent = Start(Options());
        await Until(() => _log.Count("Phase changed to pending") == 1, "pending");
        _ollama.SetModels("llama3.1:8b");
        await Until(() => _log.Count("Phase changed to active") == 1, "active");
        var before = _api.On(Heartbeat).Count;
        await Until(() => _api.On(Heartbeat).Count >= before + 3, "more heartbeats");
        Assert.Equal(0, await agent.StopAsync());

        Assert.True(_api.On(Heartbeat)[^1].Json.GetProperty("ready").GetBoolean());
        Assert.Equal(1, _log.Count("Runtime ready: 1 model(s), first llama3.1:8b"));
        Assert.Equal(1, _log.Count("Phase changed to active"));
    }

    [Fact]
    public async Task Stored_token_is_reused_without_registering()
    {
        var token = NodeAuth.NewToken();
        _api.SetToken("loop-node", token);
        SaveToken(token);

        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 2, "two heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Empty(_api.On(Register));
        Assert.Equal(1, _log.Count("Token reused for node loop-node"));
        Assert.All(_api.On(Heartbeat), hb => Assert.Equal(NodeAuthResult.Ok,
            NodeAuth.VerifySignature(token, hb.Body, hb.Header(NodeAuth.TimestampHeader)!, hb.Header(NodeAuth.SignatureHeader)!)));
    }

    [Fact]
    public async Task Token_stored_for_another_api_is_not_reused()
    {
        SaveToken(NodeAuth.NewToken(), api: "http://127.0.0.1:1");
        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 1, "a heartbeat");
        }

        Assert.Single(_api.On(Register));
        Assert.Equal(1, _log.Count("Stored token not reused"));
        Assert.Equal(_api.TokenOf("loop-node"), Store.Load(_api.BaseAddress, "loop-node").Token?.NodeToken);
    }

    [Theory]
    [InlineData(false)] // the API does not know the node: unknown-node
    [InlineData(true)] // the API holds another token: bad-signature
    public async Task Rejected_token_leads_to_one_re_registration(bool apiKnowsAnotherToken)
    {
        var old = NodeAuth.NewToken();
        SaveToken(old);
        if (apiKnowsAnotherToken)
        {
            _api.SetToken("loop-node", NodeAuth.NewToken());
        }

        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 4, "heartbeats after re-registration");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Single(_api.On(Register));
        var fresh = _api.TokenOf("loop-node")!;
        Assert.NotEqual(old, fresh);
        Assert.Equal(fresh, Store.Load(_api.BaseAddress, "loop-node").Token?.NodeToken);
        Assert.Equal(1, _log.Count("re-registering"));
        Assert.Equal(1, _log.Count("Re-registered node loop-node"));
        Assert.Contains(_log.Lines, l => l.Contains(apiKnowsAnotherToken ? "bad-signature" : "unknown-node", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stale_timestamp_is_logged_as_clock_skew_once_and_does_not_re_register()
    {
        var token = NodeAuth.NewToken();
        _api.SetToken("loop-node", token);
        SaveToken(token);
        _api.Override = r => r.Path == Heartbeat ? StubApi.Problem(401, "stale-timestamp", "X-Node-Ts is 300 s away from the server's time") : null;

        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 4, "retried heartbeats");
            _api.Override = null;
            await Until(() => _log.Count("API accepts requests again") == 1, "recovery");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Empty(_api.On(Register));
        Assert.Equal(1, _log.Count("Clock skew"));
        Assert.Contains(_log.Lines, l => l.Contains("Clock skew", StringComparison.Ordinal) && l.Contains("300 s", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Register_rejected_with_422_exits_2_with_detail_and_errors()
    {
        _api.Override = r => r.Path == Register
            ? StubApi.Problem(422, "validation", "The request body is invalid.", new Dictionary<string, string[]> { ["region"] = ["must be 1-63 characters of letters, digits"] })
            : null;

        await using var agent = Start(Options());
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));
        Assert.Single(_api.On(Register));
        Assert.Empty(_api.On(Heartbeat));
        var line = Assert.Single(_log.Lines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("HTTP 422", line, StringComparison.Ordinal);
        Assert.Contains("The request body is invalid.", line, StringComparison.Ordinal);
        Assert.Contains("region: must be 1-63 characters", line, StringComparison.Ordinal);
        Assert.False(File.Exists(Store.PathFor("loop-node")));
    }

    [Fact]
    public async Task Server_errors_are_retried_and_logged_once_per_state_change()
    {
        var failures = 2;
        _api.Override = r => r.Path == Register && Interlocked.Decrement(ref failures) >= 0 ? Results.StatusCode(503) : null;

        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 2, "heartbeats after recovery");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Equal(3, _api.On(Register).Count);
        Assert.Equal(1, _log.Count("API unreachable"));
        Assert.Equal(1, _log.Count("API reachable again"));
        Assert.Equal(1, _log.Count("Registered node"));
    }

    [Fact]
    public async Task Retry_after_on_429_is_honoured()
    {
        var token = NodeAuth.NewToken();
        _api.SetToken("loop-node", token);
        SaveToken(token);
        var first = 1;
        _api.Override = r =>
        {
            if (r.Path == Heartbeat && Interlocked.Exchange(ref first, 0) == 1)
            {
                return Results.Extensions.RetryAfter429();
            }

            return null;
        };

        var watch = Stopwatch.StartNew();
        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 2, "second heartbeat");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"second heartbeat after {watch.Elapsed}");
    }

    [Fact]
    public async Task Sample_receipt_is_posted_once_after_the_node_is_active()
    {
        _ollama.SetModels("llama3.1:8b", "qwen2.5:7b");
        await using (var agent = Start(Options(sampleReceipt: true)))
        {
            await Until(() => _log.Count("Sample receipt") == 1, "receipt logged");
            var before = _api.On(Heartbeat).Count;
            await Until(() => _api.On(Heartbeat).Count >= before + 3, "more heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var receipt = Assert.Single(_api.On(Receipts));
        var token = _api.TokenOf("loop-node")!;
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.VerifySignature(token, receipt.Body, receipt.Header(NodeAuth.TimestampHeader)!, receipt.Header(NodeAuth.SignatureHeader)!));
        var json = receipt.Json;
        Assert.StartsWith("r_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal(34, json.GetProperty("id").GetString()!.Length);
        Assert.Equal("loop-node", json.GetProperty("node_id").GetString());
        Assert.Equal("ap-southeast", json.GetProperty("region").GetString());
        Assert.Equal("llama3.1:8b", json.GetProperty("model_id").GetString());
        var payload = json.GetProperty("payload");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(payload.GetProperty("ts_start").GetInt64(), now - 60, now);
        Assert.InRange(payload.GetProperty("ts_end").GetInt64(), payload.GetProperty("ts_start").GetInt64(), now);
        Assert.True(payload.GetProperty("sample").GetBoolean());
        Assert.Equal(1, _log.Count("posted for model llama3.1:8b: ok=True"));
    }

    [Fact]
    public async Task Runtime_without_a_probe_reports_not_ready()
    {
        _ollama.SetModels("llama3.1:8b");
        await using (var agent = Start(Options(runtime: NodeRuntime.Vllm)))
        {
            await Until(() => _api.On(Heartbeat).Count >= 2, "heartbeats");
        }

        Assert.All(_api.On(Heartbeat), hb => Assert.False(hb.Json.GetProperty("ready").GetBoolean()));
        Assert.Equal(0, _ollama.Requests);
        Assert.Equal("vllm", _api.On(Register)[0].Json.GetProperty("runtime").GetString());
    }
}

internal static class RetryAfterResults
{
    public static IResult RetryAfter429(this IResultExtensions _) => new RetryAfterResult();

    private sealed class RetryAfterResult : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            httpContext.Response.Headers.RetryAfter = "1";
            return Task.CompletedTask;
        }
    }
}
