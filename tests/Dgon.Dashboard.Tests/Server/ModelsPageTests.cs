using System.Net;
using Dgon.Dashboard.Tests.Support;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Dashboard.Tests.Server;

/// <summary>
/// The Models page and node detail (issue 13) against the real API and a real agent linked in front of a runtime stub:
/// the model the runtime lists, the node serving it, its capacity, and its manifest on the node's page.
/// </summary>
public sealed class ModelsPageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Models_lists_the_linked_nodes_model_and_node_detail_shows_its_manifest()
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = await pg.CreateDatabaseAsync() });
        await using var runtime = await StubRuntime.StartAsync(null, "qwen2.5:7b");
        var config = Directory.CreateTempSubdirectory("dgon-models-");
        string[] cleared = ["DGON_API", "NODE_ID", "REGION", "RUNTIME", "OLLAMA_URL", "HEARTBEAT_INTERVAL", "DGON_CONFIG_DIR", "LOG_LEVEL", "DGON_LINK", "DGON_MAX_PARALLEL"];
        var env = cleared.ToDictionary(v => v, _ => (string?)null);
        env["DGON_JOIN_TOKEN"] = await api.CreateJoinTokenAsync();
        await using var agent = ManagedProcess.Start("dotnet", [
            RepoPaths.BuiltAssembly("agent", "Dgon.Agent"), "--api", api.BaseAddress.ToString(), "--node-id", "models-node-1", "--region", "eu-west",
            "--ollama-url", runtime.BaseAddress.ToString(), "--interval", "0.5", "--max-parallel", "3", "--config-dir", config.FullName,
        ], env);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: true);
        try
        {
            using var session = new DashboardSession(dashboard);
            await Eventually.Until(
                async () =>
                {
                    using var page = await session.GetAsync("models");
                    return (await page.Content.ReadAsStringAsync()).Contains("data-model=\"qwen2.5:7b\"", StringComparison.Ordinal);
                },
                TimeSpan.FromSeconds(60),
                "the Models page lists the agent's model\n" + agent.Dump());
            using var models = await session.GetAsync("models");
            var html = await models.Content.ReadAsStringAsync();
            Assert.Contains(">models-node-1</a>", html, StringComparison.Ordinal);
            Assert.Contains("data-testid=\"model-capacity\">3<", html, StringComparison.Ordinal);

            using var detail = await session.GetAsync("nodes/models-node-1");
            Assert.Equal(HttpStatusCode.OK, detail.StatusCode);
            var page2 = await detail.Content.ReadAsStringAsync();
            Assert.Contains("data-testid=\"node-models\">qwen2.5:7b<", page2, StringComparison.Ordinal);
            Assert.Contains("data-testid=\"node-manifest\"", page2, StringComparison.Ordinal);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
            output.WriteLine(agent.Dump());
            config.Delete(recursive: true);
        }
    }
}
