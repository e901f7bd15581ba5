using System.Diagnostics;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Auth;
using Dgon.Domain.Nodes;
using Dgon.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Testing;

namespace Dgon.Agent.Tests;

/// <summary>The agent loop in process against a programmable stub API and a stub Ollama, on real loopback sockets.</summary>
public sealed class AgentLoopTests : IAsyncLifetime
{
    private const string NodeId = "loop-node";
    private const string Heartbeat = "/v1/nodes/heartbeat";
    private const string Register = "/v1/nodes/register";
    private const string Rotate = "/v1/nodes/rotate-token";
    private const string Receipts = "/v1/receipts";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly TempDir _dir = new();
    private readonly FakeLogger<AgentLoop> _log = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly HttpClient _apiHttp = AgentHost.CreateApiHttpClient();
    private readonly FakeMetrics _metrics = new(new HostSample(MemUsedGb: 6.5, GpuUtil: null));
    private readonly List<string> _secrets = [StubApi.JoinToken];
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
        _apiHttp.Dispose();
        _dir.Dispose();
    }

    private AgentOptions Options(bool sampleReceipt = false, NodeRuntime runtime = NodeRuntime.Ollama, bool joinToken = true, TimeSpan? maxAge = null) => new()
    {
        Api = _api.BaseAddress,
        NodeId = NodeId,
        Region = "ap-southeast",
        Runtime = runtime,
        OllamaUrl = _ollama.BaseAddress,
        Interval = TimeSpan.FromMilliseconds(100),
        ConfigDir = _dir.Path,
        SampleReceipt = sampleReceipt,
        AsnHint = "residential",
        JoinToken = joinToken ? new SecretText(StubApi.JoinToken) : null,
        TokenMaxAge = maxAge ?? TimeSpan.FromSeconds(AgentOptions.DefaultTokenMaxAgeSeconds),
    };

    private TokenStore Store => new(_dir.Path);

    private NodeKeyStore Keys => new(_dir.Path);

    private string KeyPath => Keys.PathFor(NodeId);

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

    private Running Start(AgentOptions options, TimeProvider? time = null)
    {
        var clock = time ?? TimeProvider.System;
        var loop = new AgentLoop(options, new NodeApiClient(_apiHttp, options.Api, clock), Store, Keys,
            new OllamaProbe(_http, options.OllamaUrl), _metrics, clock, _log, random: () => 0);
        var cts = new CancellationTokenSource();
        return new Running(Task.Run(() => loop.RunAsync(cts.Token)), cts);
    }

    private Task Until(Func<bool> condition, string what) =>
        Eventually.Until(() => Task.FromResult(condition()), Patience, what + "\n" + LogText);

    /// <summary>The agent's log so far as lines <c>Level: message</c>.</summary>
    private IReadOnlyList<string> LogLines => [.. _log.Collector.GetSnapshot().Select(r => $"{r.Level}: {r.Message}")];

    private string LogText => string.Join('\n', LogLines);

    private int LogCount(string fragment) => LogLines.Count(l => l.Contains(fragment, StringComparison.Ordinal));

    private int Accepted(string path) => _api.On(path).Count(r => r.Status == 200);

    private void SaveToken(string token, string? api = null, DateTimeOffset? registeredAt = null, DateTimeOffset? issuedAt = null)
    {
        _secrets.Add(token);
        Store.Save(new StoredToken(api ?? TokenStore.NormaliseApi(_api.BaseAddress), NodeId, token, registeredAt ?? DateTimeOffset.UtcNow, issuedAt));
    }

    /// <summary>Creates the agent's key file now (as a previous run would have) and returns its public key.</summary>
    private string ExistingKey()
    {
        using var key = Keys.LoadOrCreate(NodeId);
        _secrets.Add(Convert.ToBase64String(NodeKeyProof.ExportPrivateKey(key.Key)));
        return key.PublicKeyText;
    }

    /// <summary>A node the stub knows with the agent's key and a token the agent has stored.</summary>
    private (string Token, string PublicKey) EnrolledNode()
    {
        var publicKey = ExistingKey();
        var token = NodeAuth.NewToken();
        _api.SetNode(NodeId, token, publicKey);
        SaveToken(token);
        return (token, publicKey);
    }

    private static bool V2Valid(RecordedRequest r, string token) =>
        r.Header(NodeAuth.SignatureHeader) is { } sig && sig.StartsWith(NodeAuth.V2Prefix, StringComparison.Ordinal)
        && NodeAuth.Verify(token, "POST", r.Path, r.Header(NodeAuth.NodeIdHeader)!, r.Body, r.Header(NodeAuth.TimestampHeader)!, sig, acceptV1: false) == NodeAuthResult.Ok;

    private static bool ProofValid(RecordedRequest r, string publicKey) =>
        r.Header(NodeKeyProof.ProofHeader) is { } proof
        && NodeKeyProof.Verify(publicKey, proof, "POST", r.Path, NodeId, r.Body, r.Header(NodeAuth.TimestampHeader)!);

    /// <summary>No node token (whole or its first 8 characters), join token or private key text appears in any log line.</summary>
    private void AssertNoSecretsLogged()
    {
        var secrets = _secrets.Concat(_api.IssuedTokens).ToList();
        Assert.NotEmpty(LogLines);
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(LogLines, l => l.Contains(secret, StringComparison.Ordinal));
            Assert.DoesNotContain(LogLines, l => l.Contains(secret[..8], StringComparison.Ordinal));
        }

        Assert.DoesNotContain(LogLines, l => l.Contains(StubApi.JoinToken.Split('.')[1], StringComparison.Ordinal));
    }

    [Fact]
    public async Task Registers_once_with_the_join_token_and_public_key_and_sends_v2_signed_heartbeats()
    {
        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 3, "three heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var register = Assert.Single(_api.On(Register));
        Assert.Equal("Bearer " + StubApi.JoinToken, register.Header("Authorization"));
        Assert.Null(register.Header(NodeKeyProof.ProofHeader));
        Assert.Equal(NodeId, register.Json.GetProperty("node_id").GetString());
        Assert.Equal("ap-southeast", register.Json.GetProperty("region").GetString());
        Assert.Equal("ollama", register.Json.GetProperty("runtime").GetString());
        Assert.Equal("residential", register.Json.GetProperty("asn_hint").GetString());
        using (var key = Keys.LoadOrCreate(NodeId))
        {
            Assert.False(key.Created);
            Assert.Equal(key.PublicKeyText, register.Json.GetProperty("public_key").GetString());
            Assert.Equal(key.PublicKeyText, _api.PublicKeyOf(NodeId));
            _secrets.Add(Convert.ToBase64String(NodeKeyProof.ExportPrivateKey(key.Key)));
        }

        var token = _api.TokenOf(NodeId)!;
        Assert.Equal(token, Store.Load(_api.BaseAddress, NodeId).Token?.NodeToken);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(TokenStore.FileMode, File.GetUnixFileMode(Store.PathFor(NodeId)));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyPath));
        }

        var heartbeats = _api.On(Heartbeat);
        foreach (var hb in heartbeats)
        {
            Assert.Equal(NodeId, hb.Header(NodeAuth.NodeIdHeader));
            Assert.StartsWith("application/json", hb.Header("Content-Type"), StringComparison.Ordinal);
            Assert.True(V2Valid(hb, token), "v2 signature verifies");
            Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(token, "POST", Receipts, NodeId, hb.Body, hb.Header(NodeAuth.TimestampHeader)!, hb.Header(NodeAuth.SignatureHeader)!, acceptV1: true));
            Assert.Null(hb.Header("Authorization"));
            Assert.False(hb.Json.GetProperty("ready").GetBoolean());
            Assert.Equal(6.5, hb.Json.GetProperty("mem_used_gb").GetDouble());
            Assert.False(hb.Json.TryGetProperty("gpu_util", out _));
            Assert.False(hb.Json.TryGetProperty("p95_ms", out _));
        }

        Assert.True(heartbeats.Zip(heartbeats.Skip(1)).All(p => p.Second.Ts > p.First.Ts), "timestamps strictly increase");
        Assert.Equal(1, LogCount("generated and stored in " + KeyPath));
        Assert.Equal(1, LogCount("Registered node loop-node with key SHA256:"));
        Assert.Equal(1, LogCount("Phase changed to pending"));
        Assert.Equal(1, LogCount("Runtime not ready"));
        Assert.Equal(1, LogCount("Stopping"));
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task Key_file_is_reused_across_restarts_and_later_registrations_are_key_signed_without_the_join_token()
    {
        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "first run's heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var keyFile = File.ReadAllBytes(KeyPath);
        var publicKey = _api.PublicKeyOf(NodeId)!;
        var firstRun = _api.Requests.Count;

        await using (var agent = Start(Options()))
        {
            await Until(() => LogCount("loaded from " + KeyPath) == 1 && Accepted(Heartbeat) >= 4, "second run's heartbeats");
            _api.SetToken(NodeId, NodeAuth.NewToken()); // the API now holds another token: bad-signature
            await Until(() => LogCount("Re-registered node") == 1, "re-registration");
            var after = Accepted(Heartbeat);
            await Until(() => Accepted(Heartbeat) >= after + 2, "heartbeats with the new token");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Equal(keyFile, File.ReadAllBytes(KeyPath));
        Assert.Equal(1, LogCount("Token reused for node loop-node"));
        var registers = _api.On(Register);
        Assert.Equal(2, registers.Count);
        Assert.NotNull(registers[0].Header("Authorization"));
        var second = registers[1];
        Assert.True(_api.Requests.ToList().IndexOf(second) >= firstRun, "the second registration is the second run's");
        Assert.Null(second.Header("Authorization"));
        Assert.True(ProofValid(second, publicKey), "re-registration carries a valid key proof");
        Assert.Equal(publicKey, second.Json.GetProperty("public_key").GetString());
        Assert.Equal(200, second.Status);
        AssertNoSecretsLogged();
    }

    [Theory]
    [InlineData("0644")]
    [InlineData("0640")]
    [InlineData("0604")]
    public async Task Key_file_wider_than_0600_is_refused_with_exit_2(string mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ExistingKey();
        var content = File.ReadAllBytes(KeyPath);
        File.SetUnixFileMode(KeyPath, (UnixFileMode)Convert.ToInt32(mode, 8));

        await using var agent = Start(Options());
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));

        Assert.Empty(_api.Requests);
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains(KeyPath, line, StringComparison.Ordinal);
        Assert.Contains("mode " + mode, line, StringComparison.Ordinal);
        Assert.Contains("chmod 600 " + KeyPath, line, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllBytes(KeyPath));
        Assert.False(File.Exists(Store.PathFor(NodeId)));
    }

    [Fact]
    public async Task A_longer_interval_asked_by_the_API_is_followed_and_a_shorter_one_is_not()
    {
        _api.HeartbeatIntervalSeconds = 2; // the agent runs at 100 ms
        await using var agent = Start(Options());
        await Until(() => LogCount("Heartbeat interval 0.1 s -> 2 s") == 1, "the agent adopts the API's interval");
        var adopted = _api.On(Heartbeat).Count;
        await Task.Delay(TimeSpan.FromSeconds(3));
        // At 100 ms there would be ~30 more; at 2 s at most 2 (plus one in flight).
        Assert.InRange(_api.On(Heartbeat).Count - adopted, 0, 3);

        _api.HeartbeatIntervalSeconds = 0; // nonsense and "shorter than --interval" both fall back to the agent's own
        await Until(() => LogCount("Heartbeat interval 2 s -> 0.1 s") == 1, "the agent falls back to --interval");
        Assert.Equal(0, await agent.StopAsync());
    }

    [Fact]
    public async Task Ready_runtime_makes_the_node_active_and_logs_each_change_once()
    {
        await using var agent = Start(Options());
        await Until(() => LogCount("Phase changed to pending") == 1, "pending");
        _ollama.SetModels("llama3.1:8b");
        await Until(() => LogCount("Phase changed to active") == 1, "active");
        var before = _api.On(Heartbeat).Count;
        await Until(() => _api.On(Heartbeat).Count >= before + 3, "more heartbeats");
        Assert.Equal(0, await agent.StopAsync());

        Assert.True(_api.On(Heartbeat)[^1].Json.GetProperty("ready").GetBoolean());
        Assert.Equal(1, LogCount("Runtime ready: 1 model(s), first llama3.1:8b"));
        Assert.Equal(1, LogCount("Phase changed to active"));
    }

    [Fact]
    public async Task Stored_token_is_reused_without_registering()
    {
        var (token, _) = EnrolledNode();

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "two heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Empty(_api.On(Register));
        Assert.Equal(1, LogCount("Token reused for node loop-node"));
        Assert.All(_api.On(Heartbeat), hb => Assert.True(V2Valid(hb, token)));
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task Token_stored_for_another_api_is_not_reused()
    {
        SaveToken(NodeAuth.NewToken(), api: "http://127.0.0.1:1");
        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 1, "a heartbeat");
        }

        Assert.Single(_api.On(Register));
        Assert.Equal(1, LogCount("Stored token not reused"));
        Assert.Equal(_api.TokenOf(NodeId), Store.Load(_api.BaseAddress, NodeId).Token?.NodeToken);
    }

    [Theory]
    [InlineData("bad-signature")] // the API holds another token
    [InlineData("secret-unavailable")] // the API cannot decrypt the node's secret any more (key ring lost its key)
    public async Task Rejected_token_leads_to_one_key_signed_re_registration(string problem)
    {
        var (old, publicKey) = EnrolledNode();
        if (problem == "bad-signature")
        {
            _api.SetToken(NodeId, NodeAuth.NewToken());
        }
        else
        {
            _api.ForgetSecret(NodeId);
        }

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 3, "heartbeats after re-registration");
            Assert.Equal(0, await agent.StopAsync());
        }

        var rejected = _api.On(Heartbeat)[0];
        Assert.Equal(401, rejected.Status);
        Assert.Equal(problem, rejected.Problem);
        var register = Assert.Single(_api.On(Register));
        Assert.Null(register.Header("Authorization"));
        Assert.True(ProofValid(register, publicKey), "the stub verified the key proof");
        Assert.Equal(200, register.Status);
        Assert.True(register.Ts > rejected.Ts, "the proof's timestamp is later than the rejected heartbeat's");
        var fresh = _api.TokenOf(NodeId)!;
        Assert.NotEqual(old, fresh);
        Assert.Equal(fresh, Store.Load(_api.BaseAddress, NodeId).Token?.NodeToken);
        Assert.All(_api.On(Heartbeat).Where(h => h.Status == 200), hb => Assert.True(V2Valid(hb, fresh)));
        Assert.Equal(1, LogCount("re-registering, signed with node key SHA256:"));
        Assert.Equal(1, LogCount("Re-registered node loop-node"));
        Assert.Contains(LogLines, l => l.Contains("re-registering", StringComparison.Ordinal) && l.Contains(problem, StringComparison.Ordinal));
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task After_the_server_forgets_the_secret_the_running_agent_re_enrolls_by_key_and_goes_on()
    {
        var (_, publicKey) = EnrolledNode();
        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "heartbeats");
            _api.ForgetSecret(NodeId);
            await Until(() => LogCount("Re-registered node loop-node") == 1, "re-enrollment");
            var after = Accepted(Heartbeat);
            await Until(() => Accepted(Heartbeat) >= after + 3, "heartbeats after re-enrollment");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Contains(_api.On(Heartbeat), h => h.Problem == "secret-unavailable");
        var register = Assert.Single(_api.On(Register));
        Assert.True(ProofValid(register, publicKey));
        Assert.Null(register.Header("Authorization"));
        Assert.Equal(publicKey, _api.PublicKeyOf(NodeId));
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task Node_the_server_deleted_is_enrolled_again_with_the_join_token()
    {
        var (_, publicKey) = EnrolledNode();
        _api.DeleteNode(NodeId);

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "heartbeats after enrollment");
            Assert.Equal(0, await agent.StopAsync());
        }

        var registers = _api.On(Register);
        Assert.Equal(2, registers.Count);
        Assert.True(ProofValid(registers[0], publicKey), "first the key proof");
        Assert.Null(registers[0].Header("Authorization"));
        Assert.Equal("join-token-required", registers[0].Problem);
        Assert.Equal("Bearer " + StubApi.JoinToken, registers[1].Header("Authorization"));
        Assert.Equal(200, registers[1].Status);
        Assert.Equal(publicKey, _api.PublicKeyOf(NodeId));
        Assert.Equal(1, LogCount("enrolling again with the configured join token"));
        Assert.Equal(1, LogCount("Re-registered node loop-node"));
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task Node_the_server_deleted_without_a_join_token_exits_2_asking_for_a_new_one()
    {
        EnrolledNode();
        _api.DeleteNode(NodeId);

        await using var agent = Start(Options(joinToken: false));
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));

        var register = Assert.Single(_api.On(Register));
        Assert.NotNull(register.Header(NodeKeyProof.ProofHeader));
        Assert.Null(register.Header("Authorization"));
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("no longer knows this node's key; get a new join token", line, StringComparison.Ordinal);
        Assert.Contains("DGON_JOIN_TOKEN", line, StringComparison.Ordinal);
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task Admin_key_reset_makes_the_agent_enroll_again_with_its_join_token()
    {
        var (_, publicKey) = EnrolledNode();
        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "heartbeats");
            _api.ResetKey(NodeId);
            await Until(() => LogCount("Re-registered node") == 1, "re-enrollment");
            var after = Accepted(Heartbeat);
            await Until(() => Accepted(Heartbeat) >= after + 2, "heartbeats after re-enrollment");
            Assert.Equal(0, await agent.StopAsync());
        }

        var registers = _api.On(Register);
        Assert.Equal(2, registers.Count);
        Assert.NotNull(registers[0].Header(NodeKeyProof.ProofHeader));
        Assert.Equal("join-token-required", registers[0].Problem);
        Assert.NotNull(registers[1].Header("Authorization"));
        Assert.Equal(publicKey, _api.PublicKeyOf(NodeId));
    }

    [Fact]
    public async Task First_registration_without_a_join_token_exits_2_naming_the_setting()
    {
        await using var agent = Start(Options(joinToken: false));
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));

        var register = Assert.Single(_api.On(Register));
        Assert.Null(register.Header("Authorization"));
        Assert.StartsWith(NodeKeyProof.PublicKeyPrefix, register.Json.GetProperty("public_key").GetString(), StringComparison.Ordinal);
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("HTTP 401", line, StringComparison.Ordinal);
        Assert.Contains("needs a join token", line, StringComparison.Ordinal);
        Assert.Contains("--join-token", line, StringComparison.Ordinal);
        Assert.False(File.Exists(Store.PathFor(NodeId)));
    }

    [Fact]
    public async Task Open_registration_needs_no_join_token()
    {
        _api.OpenRegistration = true;
        await using (var agent = Start(Options(joinToken: false)))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var register = Assert.Single(_api.On(Register));
        Assert.Null(register.Header("Authorization"));
        Assert.NotNull(_api.PublicKeyOf(NodeId));
    }

    [Theory]
    [InlineData(false)] // the key was just generated: the join-token registration is refused
    [InlineData(true)] // the key file exists but is not the enrolled key: the proof is refused
    public async Task Node_enrolled_with_another_key_exits_2_with_what_to_do(bool keyFileExists)
    {
        using var other = NodeKeyProof.NewKey();
        _api.SetNode(NodeId, NodeAuth.NewToken(), NodeKeyProof.PublicKeyText(other));
        if (keyFileExists)
        {
            ExistingKey();
        }

        await using var agent = Start(Options());
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));

        var register = Assert.Single(_api.On(Register));
        Assert.Equal("proof-required", register.Problem);
        Assert.Equal(keyFileExists, register.Header(NodeKeyProof.ProofHeader) is not null);
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("HTTP 409", line, StringComparison.Ordinal);
        Assert.Contains("/v1/admin/nodes/loop-node/reset-key", line, StringComparison.Ordinal);
        Assert.Contains(keyFileExists ? "did not accept the proof" : "was just generated", line, StringComparison.Ordinal);
        Assert.NotEqual(NodeKeyProof.PublicKeyText(other), register.Json.GetProperty("public_key").GetString());
    }

    [Fact]
    public async Task Key_mismatch_exits_2()
    {
        EnrolledNode();
        _api.SetToken(NodeId, NodeAuth.NewToken());
        _api.Override = r => r.Path == Register ? StubApi.Problem(409, "key-mismatch", "public_key differs from the enrolled key") : null;

        await using var agent = Start(Options());
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("key-mismatch", line, StringComparison.Ordinal);
        Assert.Contains("holds another public key", line, StringComparison.Ordinal);
        Assert.Single(_api.On(Register));
    }

    [Fact]
    public async Task Replayed_heartbeat_is_sent_again_with_a_later_timestamp_without_re_registering()
    {
        EnrolledNode();
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        _api.SetClock(NodeId, now + 3); // a previous run got ahead of the clock

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 3, "accepted heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var heartbeats = _api.On(Heartbeat);
        Assert.Equal("replayed", heartbeats[0].Problem);
        var firstAccepted = heartbeats.First(h => h.Status == 200);
        Assert.True(firstAccepted.Ts > now + 3);
        Assert.All(heartbeats.TakeWhile(h => h.Status != 200), h => Assert.Equal("replayed", h.Problem));
        Assert.Empty(_api.On(Register));
        Assert.Equal(1, LogCount("refused the heartbeat timestamp as replayed"));
        Assert.Equal(1, LogCount("API accepts requests again"));
        Assert.Equal(0, LogCount("re-registering"));
    }

    [Fact]
    public async Task Timestamps_strictly_increase_when_the_clock_does_not_move()
    {
        var (token, _) = EnrolledNode();
        _ollama.SetModels("llama3.1:8b");
        // The clock starts on a whole second and only this test moves it, by 1 ms per poll: one heartbeat tick each,
        // all within that second.
        var frozen = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        var start = frozen.GetUtcNow().ToUnixTimeSeconds();

        await using (var agent = Start(Options(sampleReceipt: true) with { Interval = TimeSpan.FromMilliseconds(1) }, frozen))
        {
            await Until(
                () =>
                {
                    frozen.Advance(TimeSpan.FromMilliseconds(1));
                    return LogCount("Sample receipt") == 1 && Accepted(Heartbeat) >= 6;
                },
                "heartbeats and a receipt");
            Assert.Equal(0, await agent.StopAsync());
        }

        var heartbeats = _api.On(Heartbeat);
        Assert.All(heartbeats, h => Assert.Equal(200, h.Status));
        Assert.All(heartbeats, h => Assert.True(V2Valid(h, token)));
        Assert.True(heartbeats.Zip(heartbeats.Skip(1)).All(p => p.Second.Ts > p.First.Ts), "heartbeat timestamps strictly increase");
        var receipt = Assert.Single(_api.On(Receipts));
        Assert.True(V2Valid(receipt, token));
        var all = heartbeats.Append(receipt).Select(r => r.Ts).Order().ToList();
        Assert.Equal(Enumerable.Range(0, all.Count).Select(i => start + i), all); // one clock: every second used once
        Assert.Equal(1, LogCount("ok=True"));
    }

    [Fact]
    public async Task Token_older_than_max_age_is_rotated_saved_and_used()
    {
        var publicKey = ExistingKey();
        var old = NodeAuth.NewToken();
        _api.SetNode(NodeId, old, publicKey);
        var registeredAt = DateTimeOffset.UtcNow.AddDays(-2);
        SaveToken(old, registeredAt: registeredAt);

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 3, "heartbeats after the rotation");
            Assert.Equal(0, await agent.StopAsync());
        }

        var rotate = Assert.Single(_api.On(Rotate));
        Assert.Equal("{}", rotate.Text);
        Assert.True(ProofValid(rotate, publicKey), "rotate-token is signed with the node key");
        Assert.Equal(200, rotate.Status);
        var fresh = _api.TokenOf(NodeId)!;
        Assert.NotEqual(old, fresh);
        var stored = Store.Load(_api.BaseAddress, NodeId).Token!;
        Assert.Equal(fresh, stored.NodeToken);
        Assert.Equal(registeredAt.ToUnixTimeSeconds(), stored.RegisteredAt.ToUnixTimeSeconds());
        Assert.InRange(stored.TokenIssuedAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow);
        var heartbeats = _api.On(Heartbeat);
        Assert.All(heartbeats, hb => Assert.True(V2Valid(hb, fresh) && !V2Valid(hb, old), "signed with the new token"));
        Assert.True(heartbeats[0].Ts > rotate.Ts);
        Assert.Empty(_api.On(Register));
        Assert.Equal(1, LogCount("Rotated the node token of loop-node"));
        AssertNoSecretsLogged();
    }

    [Fact]
    public async Task Token_max_age_0_disables_rotation()
    {
        var (token, _) = EnrolledNode();
        SaveToken(token, registeredAt: DateTimeOffset.UtcNow.AddDays(-400));

        await using (var agent = Start(Options(maxAge: TimeSpan.Zero)))
        {
            await Until(() => Accepted(Heartbeat) >= 3, "heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Empty(_api.On(Rotate));
        Assert.All(_api.On(Heartbeat), hb => Assert.True(V2Valid(hb, token)));
    }

    [Fact]
    public async Task Failed_rotation_keeps_the_current_token_and_waits_before_trying_again()
    {
        var publicKey = ExistingKey();
        var token = NodeAuth.NewToken();
        _api.SetNode(NodeId, token, publicKey);
        SaveToken(token, registeredAt: DateTimeOffset.UtcNow.AddDays(-2));
        _api.Override = r => r.Path == Rotate ? StubApi.Problem(401, "bad-proof") : null;

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 5, "heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Single(_api.On(Rotate));
        Assert.All(_api.On(Heartbeat), hb => Assert.True(V2Valid(hb, token)));
        var line = Assert.Single(LogLines, l => l.Contains("Token rotation failed", StringComparison.Ordinal));
        Assert.Contains("bad-proof", line, StringComparison.Ordinal);
        Assert.Contains("next attempt in 600 s", line, StringComparison.Ordinal);
        Assert.Equal(token, Store.Load(_api.BaseAddress, NodeId).Token?.NodeToken);
    }

    [Fact]
    public async Task Stale_timestamp_is_logged_as_clock_skew_once_and_does_not_re_register()
    {
        EnrolledNode();
        _api.Override = r => r.Path == Heartbeat ? StubApi.Problem(401, "stale-timestamp", "X-Node-Ts is 300 s away from the server's time") : null;

        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 4, "retried heartbeats");
            _api.Override = null;
            await Until(() => LogCount("API accepts requests again") == 1, "recovery");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Empty(_api.On(Register));
        Assert.Equal(1, LogCount("Clock skew"));
        Assert.Contains(LogLines, l => l.Contains("Clock skew", StringComparison.Ordinal) && l.Contains("300 s", StringComparison.Ordinal));
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
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("HTTP 422", line, StringComparison.Ordinal);
        Assert.Contains("The request body is invalid.", line, StringComparison.Ordinal);
        Assert.Contains("region: must be 1-63 characters", line, StringComparison.Ordinal);
        Assert.False(File.Exists(Store.PathFor(NodeId)));
    }

    [Fact]
    public async Task Control_characters_in_a_problem_are_not_logged_raw()
    {
        const string Detail = "bad region\u001b[2J\r\nCritical: forged line\u202e\u0007";
        _api.Override = r => r.Path == Register
            ? StubApi.Problem(422, "validation\u001b[31m", Detail, new Dictionary<string, string[]> { ["region\n"] = ["no\rgood"] })
            : null;

        await using var agent = Start(Options());
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));

        Assert.DoesNotContain(LogLines, l => l.Any(c => c is '\u001b' or '\r' or '\n' or '\u202e' or '\u0007'));
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("bad region\\u001b[2J\\u000d\\u000aCritical: forged line\\u202e\\u0007", line, StringComparison.Ordinal);
        Assert.Contains("validation\\u001b[31m", line, StringComparison.Ordinal);
        Assert.Contains("region\\u000a: no\\u000dgood", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Redirect_is_not_followed()
    {
        _api.Override = r => r.Path == Register ? new RedirectResult(307, new Uri(_api.BaseAddress, "/elsewhere/v1/nodes/register").AbsoluteUri) : null;

        await using var agent = Start(Options());
        Assert.Equal(2, await agent.Task.WaitAsync(Patience));

        Assert.Single(_api.On(Register));
        Assert.DoesNotContain(_api.Requests, r => r.Path.StartsWith("/elsewhere", StringComparison.Ordinal));
        var line = Assert.Single(LogLines, l => l.StartsWith("Critical", StringComparison.Ordinal));
        Assert.Contains("HTTP 307", line, StringComparison.Ordinal);
        Assert.Contains("redirect to " + _api.BaseAddress.AbsoluteUri.TrimEnd('/') + "/elsewhere/v1/nodes/register", line, StringComparison.Ordinal);
        Assert.Contains("does not follow redirects", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_response_fails_cleanly_and_the_agent_goes_on()
    {
        var (token, _) = EnrolledNode();
        var huge = "{\"status\":\"" + new string('x', 1024 * 1024) + "\"}";
        _api.Override = r => r.Path == Heartbeat ? Results.Text(huge, "application/json") : null;

        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(Heartbeat).Count >= 3, "heartbeats answered with huge bodies");
            _api.Override = null;
            await Until(() => LogCount("API accepts requests again") == 1, "recovery");
            Assert.Equal(0, await agent.StopAsync());
        }

        // one Error line for the state change (the Debug retry lines repeat the reason)
        Assert.Single(LogLines, l => l.StartsWith("Error", StringComparison.Ordinal) && l.Contains("over 65536 bytes", StringComparison.Ordinal));
        Assert.DoesNotContain(LogLines, l => l.Contains("xxxxxxxx", StringComparison.Ordinal));
        Assert.Empty(_api.On(Register));
        Assert.True(V2Valid(_api.On(Heartbeat)[^1], token));
    }

    [Fact]
    public async Task Server_errors_are_retried_and_logged_once_per_state_change()
    {
        var failures = 2;
        _api.Override = r => r.Path == Register && Interlocked.Decrement(ref failures) >= 0 ? Results.StatusCode(503) : null;

        await using (var agent = Start(Options()))
        {
            await Until(() => Accepted(Heartbeat) >= 2, "heartbeats after recovery");
            Assert.Equal(0, await agent.StopAsync());
        }

        Assert.Equal(3, _api.On(Register).Count);
        Assert.All(_api.On(Register), r => Assert.Equal("Bearer " + StubApi.JoinToken, r.Header("Authorization")));
        Assert.Equal(1, LogCount("API unreachable"));
        Assert.Equal(1, LogCount("API reachable again"));
        Assert.Equal(1, LogCount("Registered node"));
    }

    [Theory]
    [InlineData(Heartbeat)]
    [InlineData(Register)]
    public async Task Retry_after_on_429_is_honoured(string path)
    {
        if (path == Heartbeat)
        {
            EnrolledNode();
        }

        var first = 1;
        _api.Override = r => r.Path == path && Interlocked.Exchange(ref first, 0) == 1 ? Results.Extensions.RetryAfter429() : null;

        var watch = Stopwatch.StartNew();
        await using (var agent = Start(Options()))
        {
            await Until(() => _api.On(path).Count >= 2 && Accepted(Heartbeat) >= 1, "second attempt");
            Assert.Equal(0, await agent.StopAsync());
        }

        var attempts = _api.On(path);
        Assert.Equal(429, attempts[0].Status);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"second attempt after {watch.Elapsed}");
        Assert.Equal(0, LogCount("Critical"));
    }

    [Fact]
    public async Task Sample_receipt_is_posted_once_after_the_node_is_active()
    {
        _ollama.SetModels("llama3.1:8b", "qwen2.5:7b");
        await using (var agent = Start(Options(sampleReceipt: true)))
        {
            await Until(() => LogCount("Sample receipt") == 1, "receipt logged");
            var before = _api.On(Heartbeat).Count;
            await Until(() => _api.On(Heartbeat).Count >= before + 3, "more heartbeats");
            Assert.Equal(0, await agent.StopAsync());
        }

        var receipt = Assert.Single(_api.On(Receipts));
        var token = _api.TokenOf(NodeId)!;
        Assert.True(V2Valid(receipt, token));
        var json = receipt.Json;
        Assert.StartsWith("r_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal(34, json.GetProperty("id").GetString()!.Length);
        Assert.Equal(NodeId, json.GetProperty("node_id").GetString());
        Assert.Equal("ap-southeast", json.GetProperty("region").GetString());
        Assert.Equal("llama3.1:8b", json.GetProperty("model_id").GetString());
        var payload = json.GetProperty("payload");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(payload.GetProperty("ts_start").GetInt64(), now - 60, now);
        Assert.InRange(payload.GetProperty("ts_end").GetInt64(), payload.GetProperty("ts_start").GetInt64(), now);
        Assert.True(payload.GetProperty("sample").GetBoolean());
        Assert.Equal(1, LogCount("posted for model llama3.1:8b: ok=True"));
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

    private sealed class RetryAfterResult : IResult, IStatusCodeHttpResult
    {
        public int? StatusCode => StatusCodes.Status429TooManyRequests;

        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            httpContext.Response.Headers.RetryAfter = "1";
            return Task.CompletedTask;
        }
    }
}

/// <summary>A redirect answer with a given status (ASP.NET's helpers give 301/302/307/308 only through flags).</summary>
internal sealed class RedirectResult(int status, string location) : IResult, IStatusCodeHttpResult
{
    public int? StatusCode => status;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = status;
        httpContext.Response.Headers.Location = location;
        return Task.CompletedTask;
    }
}
