using System.Text.Json;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Contracts;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Agent.Tests;

/// <summary>A real PostgreSQL database and the real API (grace period 3 s), shared by the tests of one class.</summary>
public sealed class ApiFixture : IAsyncLifetime
{
    public ApiHost Api { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        Api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, GraceSeconds = 3 });
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
        ["DGON_API", "NODE_ID", "REGION", "RUNTIME", "OLLAMA_URL", "HEARTBEAT_INTERVAL", "DGON_CONFIG_DIR", "ASN_HINT", "WALLET_ADDRESS", "GREEN_ENERGY", "LOG_LEVEL"];

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

    private ManagedProcess StartAgent(string nodeId, string configDir, Uri ollama, params string[] extra)
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
        var process = ManagedProcess.Start("dotnet", args, AgentVariables.ToDictionary(v => v, _ => (string?)null));
        _started.Add(process);
        return process;
    }

    private async Task<NodeView?> NodeAsync(string nodeId)
    {
        var text = await Api.Client.GetStringAsync("/v1/nodes");
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

    private static string StoredToken(string configDir, string nodeId)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(configDir, nodeId + ".json")));
        return doc.RootElement.GetProperty("node_token").GetString()!;
    }

    [Fact]
    public async Task Node_goes_pending_then_active_then_offline_and_a_restart_reuses_the_token()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var configDir = dir.Combine("dgon");
        var nodeId = NewNodeId("agent-life");

        string token;
        await using (var agent = StartAgent(nodeId, configDir, ollama.BaseAddress))
        {
            await WaitForStatus(nodeId, "pending", agent);

            var tokenFile = Path.Combine(configDir, nodeId + ".json");
            Assert.True(File.Exists(tokenFile), agent.Dump());
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(configDir));
            }

            token = StoredToken(configDir, nodeId);
            Assert.Equal(64, token.Length);

            ollama.SetModels("llama3.1:8b");
            await WaitForStatus(nodeId, "active", agent);

            await agent.StopAsync();
            Assert.True(agent.ExitCode == 0, $"exit code {agent.ExitCode}\n{agent.Dump()}");
            Assert.Contains(agent.Output, l => l.Contains("Registered node " + nodeId, StringComparison.Ordinal));
            Assert.Contains(agent.Output, l => l.Contains("Phase changed to active", StringComparison.Ordinal));
            Assert.DoesNotContain(agent.Output, l => l.Contains(token, StringComparison.Ordinal));
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
            Assert.DoesNotContain(restarted.Output, l => l.Contains("Registered node", StringComparison.Ordinal));
            Assert.DoesNotContain(restarted.Output, l => l.Contains("Re-registered node", StringComparison.Ordinal));
        }

        Assert.Equal(token, StoredToken(configDir, nodeId));
    }

    [Fact]
    public async Task Register_rejected_with_422_exits_2_with_a_clear_message()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-bad");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress, "--region", "ap southeast!");
        var code = await agent.WaitForExitAsync(Patience);

        Assert.True(code == 2, $"exit code {code}\n{agent.Dump()}");
        var message = Assert.Single(agent.Output, l => l.Contains("Registration rejected", StringComparison.Ordinal));
        Assert.Contains("HTTP 422", message, StringComparison.Ordinal);
        Assert.Contains("region", message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, nodeId + ".json")));
        Assert.Null(await NodeAsync(nodeId));
    }

    [Fact]
    public async Task Token_rejected_after_a_rotation_makes_the_agent_register_again()
    {
        await using var ollama = await StubOllama.StartAsync();
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-rot");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress);
        await WaitForStatus(nodeId, "pending", agent);
        var first = StoredToken(dir.Path, nodeId);

        // Someone else registers the same node id: the API issues a new secret, the agent's token now fails (bad-signature).
        var other = await TestNode.RegisterAsync(Api.Client, nodeId);

        await Wait(() => Task.FromResult(agent.Output.Any(l => l.Contains("Re-registered node " + nodeId, StringComparison.Ordinal))), "re-registration", agent);
        var second = StoredToken(dir.Path, nodeId);
        Assert.NotEqual(first, second);
        Assert.NotEqual(other.Token, second);
        Assert.Contains(agent.Output, l => l.Contains("re-registering", StringComparison.Ordinal) && l.Contains("bad-signature", StringComparison.Ordinal));

        var before = (await NodeAsync(nodeId))!.LastHeartbeat;
        await Wait(async () => (await NodeAsync(nodeId))!.LastHeartbeat > before, "heartbeat with the new token", agent);
        await agent.StopAsync();
        Assert.True(agent.ExitCode == 0, agent.Dump());
    }

    [Fact]
    public async Task Sample_receipt_is_posted_once_the_node_is_active()
    {
        await using var ollama = await StubOllama.StartAsync();
        ollama.SetModels("llama3.1:8b");
        using var dir = new TempDir();
        var nodeId = NewNodeId("agent-rcpt");

        await using var agent = StartAgent(nodeId, dir.Path, ollama.BaseAddress, "--sample-receipt");
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
