using System.Text.Json;
using Dgon.Agent.Link;
using Dgon.Agent.Tests.Support;
using Dgon.Testing;
using Microsoft.Extensions.Logging.Testing;

namespace Dgon.Agent.Tests;

/// <summary>Local states, the status file and <c>dgon-agent status</c> (in process and as real processes).</summary>
public sealed class StatusTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly TempDir _dir = new();
    private readonly FakeLogger _log = new();

    public void Dispose() => _dir.Dispose();

    private static ManagedProcess Agent(params string[] args)
    {
        var env = new Dictionary<string, string?> { ["DGON_API"] = null, ["NODE_ID"] = null, ["DGON_CONFIG_DIR"] = null, ["DGON_JOIN_TOKEN"] = null, ["DGON_LINK"] = null, ["DGON_MAX_PARALLEL"] = null };
        return ManagedProcess.Start("dotnet", [RepoPaths.BuiltAssembly("agent", "Dgon.Agent"), .. args], env);
    }

    [Fact]
    public void States_follow_the_link_and_the_work_and_every_change_is_a_state_transition_event()
    {
        var status = new AgentStatus("n1", 2, linkEnabled: true, TimeProvider.System, _log);
        var seen = new List<string>();
        status.StateChanged += (from, to, _) => seen.Add($"{from}->{to}");

        status.LinkUp("r1");
        status.TaskStarted("t1", "m");
        status.TaskStarted("t2", "m");
        status.TaskEnded("t1", succeeded: true, 3, 5);
        status.TaskEnded("t2", succeeded: false);
        status.LinkDown("boom");
        status.BeginDraining();

        Assert.Equal(["IDLE->READY", "READY->EXECUTING", "EXECUTING->READY", "READY->IDLE", "IDLE->DRAINING"], seen);
        var events = _log.Collector.GetSnapshot().Where(r => r.Id.Name == "state.transition").ToList();
        Assert.Equal(5, events.Count);
        var first = events[0].StructuredState!.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(("IDLE", "READY"), (first["From"], first["To"]));
        var snapshot = status.Snapshot();
        Assert.Equal(new StatusTotals(1, 1, 3, 5), snapshot.Totals);
        Assert.Equal("boom", snapshot.Link.LastError);
    }

    [Fact]
    public async Task The_status_file_is_private_and_status_prints_work_totals_and_link_health()
    {
        var status = new AgentStatus("n1", 2, linkEnabled: true, TimeProvider.System, _log);
        var writer = new StatusFileWriter(status, _dir.Path, "n1", TimeProvider.System, _log);
        using var stop = new CancellationTokenSource();
        var run = writer.RunAsync(stop.Token);
        status.LinkUp("replica-a");
        status.TaskStarted("task-42", "llama3.1:8b");
        status.TaskStarted("task-7", "echo-1");
        status.TaskEnded("task-7", succeeded: true, 10, 20);

        await Eventually.Until(async () => File.Exists(writer.FilePath) && (await File.ReadAllTextAsync(writer.FilePath)).Contains("task-42", StringComparison.Ordinal), Patience, "status file written");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(writer.FilePath));
        }

        using var output = new StringWriter();
        var code = await StatusCommand.RunAsync(_dir.Path, "n1", output, DateTimeOffset.UtcNow);
        var text = output.ToString();
        Assert.Equal(0, code);
        Assert.Contains("node n1: EXECUTING", text, StringComparison.Ordinal);
        Assert.Contains("task-42  llama3.1:8b", text, StringComparison.Ordinal);
        Assert.Contains("totals: 1 done, 0 failed, tokens 10 in / 20 out", text, StringComparison.Ordinal);
        Assert.Contains("link: connected since", text, StringComparison.Ordinal);
        Assert.Contains("replica replica-a", text, StringComparison.Ordinal);

        using var later = new StringWriter();
        Assert.Equal(StatusCommand.NotRunningExitCode, await StatusCommand.RunAsync(_dir.Path, "n1", later, DateTimeOffset.UtcNow.AddSeconds(30)));
        Assert.Contains("not running", later.ToString(), StringComparison.Ordinal);

        await stop.CancelAsync();
        await run;
        writer.WriteFinal();
        using var stopped = new StringWriter();
        Assert.Equal(StatusCommand.NotRunningExitCode, await StatusCommand.RunAsync(_dir.Path, "n1", stopped, DateTimeOffset.UtcNow));
        Assert.Contains("not running (stopped at", stopped.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_running_agent_process_writes_its_status_and_the_status_subcommand_reads_it()
    {
        await using var api = await StubApi.StartAsync();
        await using var runtime = await StubChatRuntime.StartAsync();
        var nodeId = "status-node";
        var configDir = _dir.Combine("cfg");

        await using (var missing = Agent("status", "--config-dir", configDir, "--node-id", nodeId))
        {
            Assert.Equal(StatusCommand.NotRunningExitCode, await missing.WaitForExitAsync(Patience));
            Assert.Contains(missing.Output, l => l.Contains("not running (no status file", StringComparison.Ordinal));
        }

        await using var agent = Agent("--api", api.BaseAddress.ToString(), "--node-id", nodeId, "--config-dir", configDir, "--ollama-url", runtime.BaseAddress.ToString(),
            "--interval", "0.5", "--join-token", StubApi.JoinToken, "--max-parallel", "3");
        var statusFile = StatusFileWriter.PathFor(configDir, nodeId);
        // the stub API has no link endpoint: the link fails (HTTP 404 at the upgrade) and the node stays IDLE
        try
        {
            await Eventually.Until(async () => File.Exists(statusFile) && (await File.ReadAllTextAsync(statusFile)).Contains("404", StringComparison.Ordinal), Patience, "status with the link error");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + agent.Dump(), e);
        }

        var status = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(statusFile), StatusJsonContext.Default.StatusFile)!;
        Assert.Equal(agent.Id, status.Pid);
        Assert.Equal(3, status.MaxParallel);
        Assert.Equal(AgentStates.Idle, status.State);

        await using (var query = Agent("status", "--config-dir", configDir, "--node-id", nodeId))
        {
            Assert.Equal(0, await query.WaitForExitAsync(Patience));
            var text = string.Join('\n', query.Output);
            Assert.Contains($"node {nodeId}: IDLE", text, StringComparison.Ordinal);
            Assert.Contains("max parallel 3", text, StringComparison.Ordinal);
            Assert.Contains("work: none", text, StringComparison.Ordinal);
            Assert.Contains("link: not connected", text, StringComparison.Ordinal);
            Assert.Contains("HTTP 404", text, StringComparison.Ordinal);
        }

        await agent.StopAsync();
        Assert.Equal(0, agent.ExitCode);
        Assert.Contains(agent.Output, l => l.Contains("state.transition IDLE -> DRAINING", StringComparison.Ordinal));
        await using var after = Agent("status", "--config-dir", configDir, "--node-id", nodeId);
        Assert.Equal(StatusCommand.NotRunningExitCode, await after.WaitForExitAsync(Patience));
        Assert.Contains(after.Output, l => l.Contains("not running", StringComparison.Ordinal));
    }

    [Fact]
    public void Max_parallel_and_the_link_switch_resolve_from_flags_and_environment()
    {
        static AgentEnvironment Env(Dictionary<string, string?> vars) => new(n => vars.GetValueOrDefault(n), () => "host", () => "/home/u/.config");
        var defaults = AgentCommandLine.Parse([], Env([])).Options!;
        Assert.Equal((1, true), (defaults.MaxParallel, defaults.Link));
        var fromEnv = AgentCommandLine.Parse([], Env(new() { ["DGON_MAX_PARALLEL"] = "4", ["DGON_LINK"] = "off" })).Options!;
        Assert.Equal((4, false), (fromEnv.MaxParallel, fromEnv.Link));
        var fromFlags = AgentCommandLine.Parse(["--max-parallel", "8", "--no-link"], Env(new() { ["DGON_MAX_PARALLEL"] = "4" })).Options!;
        Assert.Equal((8, false), (fromFlags.MaxParallel, fromFlags.Link));
        Assert.Contains(AgentCommandLine.Parse(["--max-parallel", "0"], Env([])).Errors, e => e.Contains("--max-parallel", StringComparison.Ordinal));
        Assert.Contains(AgentCommandLine.Parse([], Env(new() { ["DGON_LINK"] = "maybe" })).Errors, e => e.Contains("DGON_LINK", StringComparison.Ordinal));
    }
}
