using System.Text.RegularExpressions;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>
/// The seed's own Python dev agent (shared/seeds/001 §3), extracted from the seed document at test time and run
/// unmodified with the image's python3, against our API. It reads Ollama at the fixed address 127.0.0.1:11434, so
/// the stub Ollama listens there. The seed agent registers without a join token and signs v1, so it runs against an
/// API in open-registration mode (issue 9: <c>DGON_OPEN_REGISTRATION=true</c>, development only), which says so in
/// <c>/readyz</c>.
/// </summary>
public sealed partial class SeedAgentTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task The_seed_python_agent_registers_and_turns_active()
    {
        var python = RequiredTool.Python3WithRequests(); // fails, never skips, without python3 + requests
        var script = ExtractSeedAgent();
        var path = Path.Combine(Path.GetTempPath(), $"agent_mac_dev_{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(path, script);

        await using var ollama = await StubOllama.StartAsync(11434);
        ollama.SetModels("llama3.1:8b");
        var nodeId = ApiFixture.NewNodeId("macbook");
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await fx.Postgres.CreateDatabaseAsync(),
            Environment = new Dictionary<string, string?> { ["DGON_OPEN_REGISTRATION"] = "true" },
        });
        var ready = await (await api.Client.GetAsync("/readyz")).Content.ReadAsStringAsync();
        Assert.Contains("INSECURE: DGON_OPEN_REGISTRATION=true", ready, StringComparison.Ordinal);
        Assert.Contains(api.Output, l => l.Contains("SECURITY WARNING: DGON_OPEN_REGISTRATION=true", StringComparison.Ordinal));
        await using var agent = ManagedProcess.Start(python, ["-u", path], new Dictionary<string, string?>
        {
            ["DGON_API"] = api.BaseAddress.ToString().TrimEnd('/'),
            ["NODE_ID"] = nodeId,
            ["REGION"] = "ap-southeast",
        });

        var ok = await agent.WaitForOutputAsync(l => l.Contains("heartbeat: 200", StringComparison.Ordinal) && l.Contains("\"active\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        Assert.True(ok, agent.Dump());
        Assert.Contains(agent.Output, l => l.StartsWith("Registered. token:", StringComparison.Ordinal));

        var node = (await Json.ReadAsync(await api.Admin.GetAsync("/v1/nodes?status=active"))).EnumerateArray()
            .Single(n => n.GetProperty("id").GetString() == nodeId);
        Assert.Equal("ap-southeast", node.GetProperty("region").GetString());
        Assert.Equal("residential", node.GetProperty("asn_hint").GetString());
        Assert.True(ollama.Requests >= 1);
    }

    /// <summary>The Python block that follows "Create `agent_mac_dev.py`" in seed 001.</summary>
    private static string ExtractSeedAgent()
    {
        var seed = Directory.GetFiles(RepoPaths.SharedSeeds, "001_*").Single();
        var text = File.ReadAllText(seed);
        var match = SeedAgentBlock().Match(text);
        Assert.True(match.Success, $"no agent_mac_dev.py block found in {seed}");
        return match.Groups["code"].Value;
    }

    [GeneratedRegex(@"Create `agent_mac_dev\.py`.*?```python\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex SeedAgentBlock();
}
