using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Contracts;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Agent.Tests;

/// <summary>
/// A real PostgreSQL database and the real API (grace period 3 s, an admin token), shared by the tests of one class,
/// and a join token created through the admin API (issue 9 contract).
/// </summary>
public sealed class ApiFixture : IAsyncLifetime
{
    /// <summary>DGON_ADMIN_TOKEN of the API.</summary>
    public string AdminToken { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public ApiHost Api { get; private set; } = null!;

    /// <summary>A join token without use limit, valid 24 h.</summary>
    public string JoinToken { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        Api = await ApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = url,
            GraceSeconds = 3,
            Environment = { ["DGON_ADMIN_TOKEN"] = AdminToken },
        });
        using var create = Admin(HttpMethod.Post, "/v1/admin/join-tokens");
        create.Content = JsonContent.Create(new { description = "agent process tests" });
        using var response = await Api.Client.SendAsync(create);
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"creating a join token → {(int)response.StatusCode}: {text}");
        }

        JoinToken = JsonSerializer.Deserialize(text, DgonJsonContext.Default.JoinTokenView)!.Token!;
    }

    /// <summary>A request with <c>Authorization: Bearer</c> the admin token.</summary>
    public HttpRequestMessage Admin(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return request;
    }

    public async Task DisposeAsync() => await Api.DisposeAsync();
}

/// <summary>
/// The agent as a process (<c>dotnet Dgon.Agent.dll</c>) against the real API and a stub Ollama. Liveness waits are
/// generous (30 s); nothing depends on tight timing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AgentProcessTests(ApiFixture fixture, ITestOutputHelper output) : IClassFixture<ApiFixture>, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    // Variables the agent reads: cleared so the test machine's environment cannot leak in.
    private static readonly string[] AgentVariables =
    [
        "DGON_API", "NODE_ID", "REGION", "RUNTIME", "OLLAMA_URL", "HEARTBEAT_INTERVAL", "DGON_CONFIG_DIR", "ASN_HINT", "WALLET_ADDRESS",
        "GREEN_ENERGY", "LOG_LEVEL", "DGON_JOIN_TOKEN", "DGON_TOKEN_MAX_AGE", "DGON_INSECURE_HTTP",
    ];

    private readonly List<ManagedProcess> _started = [];

    private ApiHost Api => fixture.Api;

    /// <summary>Writes every agent's output to the test log (shown with a detailed console logger or on failure).</summary>
    public void Dispose()
    {
        foreach (var p in _started)
        {
            output.WriteLine(p.Dump());
        }
    }

    private static string NewNodeId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    /// <summary>Starts the agent; the join token goes in DGON_JOIN_TOKEN (not a flag: flags show in ps) unless <paramref name="joinToken"/> is false.</summary>
    private ManagedProcess StartAgent(string nodeId, string configDir, Uri ollama, bool joinToken = true, params string[] extra)
    {
        var args = new List<string>
        {
            RepoPaths.BuiltAssembly("agent", "Dgon.Agent"),
            "--api", Api.BaseAddress.ToString(),
            "--node-id", nodeId,
            "--ollama-url", ollama.ToString(),
            "--interval", "0.5",
            "--config-dir", configDir,
        };
        if (!extra.Contains("--region"))
        {
            args.AddRange(["--region", "ap-southeast"]);
        }

        args.AddRange(extra);
        var env = AgentVariables.ToDictionary(v => v, _ => (string?)null);
        if (joinToken)
        {
            env["DGON_JOIN_TOKEN"] = fixture.JoinToken;
        }

        var process = ManagedProcess.Start("dotnet", args, env);
        _started.Add(process);
        return process;
    }

    private async Task<NodeView?> NodeAsync(string nodeId)
    {
        var text = await Api.Admin.GetStringAsync("/v1/nodes");
        var nodes = JsonSerializer.Deserialize(text, DgonJsonContext.Default.ListNodeView) ?? [];
        return nodes.SingleOrDefault(n => n.Id == nodeId);
    }

    private static async Task Wait(Func<Task<bool>> condition, string what, params ManagedProcess[] processes)
    {
        try
        {
            await Eventually.Until(condition, Patience, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + string.Join('\n', processes.Select(p => p.Dump())), e);
        }
    }

    /// <summary>Waits until the node has the status after at least one heartbeat (register alone also makes it pending).</summary>
    private Task WaitForStatus(string nodeId, string status, params ManagedProcess[] processes) =>
        Wait(async () => await NodeAsync(nodeId) is { LastHeartbeat: not null } n && n.Status == status, $"node {nodeId} {status} after a heartbeat", processes);

    internal static string StoredToken(string configDir, string nodeId)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(configDir, nodeId + ".json")));
        return doc.RootElement.GetProperty("node_token").GetString()!;
    }

    private void AssertNoSecrets(ManagedProcess agent, params string[] tokens)
    {
        foreach (var secret in tokens.Append(fixture.JoinToken))
        {
            Assert.DoesNotContain(agent.Output, l => l.Contains(secret, StringComparison.Ordinal));
            Assert.DoesNotContain(agent.Output, l => l.Contains(secret[..8], StringComparison.Ordinal));
            Assert.DoesNotContain(agent.Output, l => l.Contains(secret[^8..], StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Node_goes_pending_then_active_then_offline_and_a_restart_reuses_the_token_and_key()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var configDir = dir.Combine("dgon");
        var nodeId = NewNodeId("agent-life");
        var keyFile = Path.Combine(configDir, nodeId + ".key");

        string token;
        byte[] key;
        await using (var agent = StartAgent(nodeId, configDir, ollama.BaseAddress))
        {
            await WaitForStatus(nodeId, "pending", agent);

            var tokenFile = Path.Combine(configDir, nodeId + ".json");
            Assert.True(File.Exists(tokenFile), agent.Dump());
            Assert.True(File.Exists(keyFile), agent.Dump());
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(configDir));
            }

            token = StoredToken(configDir, nodeId);
            key = File.ReadAllBytes(keyFile);
            Assert.Equal(64, token.Length);
            Assert.True((await NodeAsync(nodeId))!.HasKey, "the API enrolled the node's public key");

            ollama.SetModels("llama3.1:8b");
            await WaitForStatus(nodeId, "active", agent);

            await agent.StopAsync();
            Assert.True(agent.ExitCode == 0, $"exit code {agent.ExitCode}\n{agent.Dump()}");
            Assert.Contains(agent.Output, l => l.Contains("Registered node " + nodeId, StringComparison.Ordinal));
            Assert.Contains(agent.Output, l => l.Contains("Phase changed to active", StringComparison.Ordinal));
            AssertNoSecrets(agent, token);
        }

        await WaitForStatus(nodeId, "offline");
        var offlineSince = (await NodeAsync(nodeId))!.LastHeartbeat;

        await using (var restarted = StartAgent(nodeId, configDir, ollama.BaseAddress))
        {
            await Wait(
                async () => await NodeAsync(nodeId) is { Status: "active" } n && n.LastHeartbeat > offlineSince,
                "restarted agent's heartbeat accepted",
                restarted);
            await restarted.StopAsync();
            Assert.True(restarted.ExitCode == 0, restarted.Dump());
            Assert.Contains(restarted.Output, l => l.Contains("Token reused for node " + nodeId, StringComparison.Ordinal));
            Assert.Contains(restarted.Output, l => l.Contains("loaded from " + keyFile, StringComparison.Ordinal));
            Assert.DoesNotContain(restarted.Output, l => l.Contains("Registered node", StringComparison.Ordinal));
            Assert.DoesNotContain(restarted.Output, l => l.Contains("Re-registered node", StringComparison.Ordinal));
        }

        Assert.Equal(token, StoredToken(configDir, nodeId));
        Assert.Equal(key, File.ReadAllBytes(keyFile));
    }

    [Fact]
    public async Task Register_rejected_with_422_exits_2_with_a_clear_message()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-bad");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress, extra: ["--region", "ap southeast!"]);
        var code = await agent.WaitForExitAsync(Patience);

        Assert.True(code == 2, $"exit code {code}\n{agent.Dump()}");
        var message = Assert.Single(agent.Output, l => l.Contains("Registration rejected", StringComparison.Ordinal));
        Assert.Contains("HTTP 422", message, StringComparison.Ordinal);
        Assert.Contains("region", message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, nodeId + ".json")));
        Assert.Null(await NodeAsync(nodeId));
    }

    [Fact]
    public async Task Without_a_join_token_the_agent_exits_2_asking_for_one()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-nojoin");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress, joinToken: false);
        var code = await agent.WaitForExitAsync(Patience);

        Assert.True(code == 2, $"exit code {code}\n{agent.Dump()}");
        var message = Assert.Single(agent.Output, l => l.Contains("Registration rejected", StringComparison.Ordinal));
        Assert.Contains("join-token-required", message, StringComparison.Ordinal);
        Assert.Contains("DGON_JOIN_TOKEN", message, StringComparison.Ordinal);
        Assert.Null(await NodeAsync(nodeId));
    }

    [Fact]
    public async Task Admin_key_reset_makes_the_agent_enroll_again_with_its_join_token()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-reset");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress);
        await WaitForStatus(nodeId, "pending", agent);
        var first = StoredToken(dir.Path, nodeId);

        using (var reset = fixture.Admin(HttpMethod.Post, $"/v1/admin/nodes/{nodeId}/reset-key"))
        using (var response = await Api.Client.SendAsync(reset))
        {
            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        }

        await Wait(() => Task.FromResult(agent.Output.Any(l => l.Contains("Re-registered node " + nodeId, StringComparison.Ordinal))), "re-enrollment", agent);
        Assert.Contains(agent.Output, l => l.Contains("enrolling again with the configured join token", StringComparison.Ordinal));
        var second = StoredToken(dir.Path, nodeId);
        Assert.NotEqual(first, second);
        Assert.True((await NodeAsync(nodeId))!.HasKey);

        var before = (await NodeAsync(nodeId))!.LastHeartbeat;
        await Wait(async () => (await NodeAsync(nodeId))!.LastHeartbeat > before, "heartbeat with the new token", agent);
        await agent.StopAsync();
        Assert.True(agent.ExitCode == 0, agent.Dump());
        AssertNoSecrets(agent, first, second);
    }

    [Fact]
    public async Task Token_older_than_max_age_is_rotated_and_heartbeats_go_on()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-rot");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress, extra: ["--token-max-age", "2"]);
        await WaitForStatus(nodeId, "pending", agent);
        var first = StoredToken(dir.Path, nodeId);

        await Wait(() => Task.FromResult(agent.Output.Any(l => l.Contains("Rotated the node token of " + nodeId, StringComparison.Ordinal))), "rotation", agent);
        await Wait(() => Task.FromResult(StoredToken(dir.Path, nodeId) != first), "new token stored", agent);
        var before = (await NodeAsync(nodeId))!.LastHeartbeat;
        await Wait(async () => (await NodeAsync(nodeId))!.LastHeartbeat > before, "heartbeat with the rotated token", agent);
        Assert.DoesNotContain(agent.Output, l => l.Contains("re-registering", StringComparison.Ordinal));
        await agent.StopAsync();
        Assert.True(agent.ExitCode == 0, agent.Dump());
        AssertNoSecrets(agent, first, StoredToken(dir.Path, nodeId));
    }

    [Fact]
    public async Task Sample_receipt_is_posted_once_the_node_is_active()
    {
        await using var ollama = await StubOllama.StartAsync();
        ollama.SetModels("llama3.1:8b");
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-rcpt");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress, extra: ["--sample-receipt"]);
        await WaitForStatus(nodeId, "active", agent);
        Assert.True(
            await agent.WaitForOutputAsync(l => l.Contains("Sample receipt r_", StringComparison.Ordinal), Patience),
            agent.Dump());
        var line = Assert.Single(agent.Output, l => l.Contains("Sample receipt", StringComparison.Ordinal));
        Assert.Contains("posted for model llama3.1:8b: ok=True", line, StringComparison.Ordinal);
        await agent.StopAsync();
        Assert.True(agent.ExitCode == 0, agent.Dump());
    }
}
