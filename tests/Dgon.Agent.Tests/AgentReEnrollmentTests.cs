using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Contracts;
using Dgon.Testing;

namespace Dgon.Agent.Tests;

/// <summary>
/// Issue 9, end to end with real processes: the agent enrolls with a join token, then the API is restarted with a
/// key ring that has lost the key its secret was encrypted with (<c>DGON_SECRET_KEY</c> replaced). The API answers
/// 401 <c>secret-unavailable</c>; the running agent re-enrolls by proving its Ed25519 key (no join token left to
/// use: it was single-use) and its node turns active again.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AgentReEnrollmentTests
{
    [Fact]
    public async Task After_the_server_forgot_its_secret_the_agent_re_enrolls_by_key_and_goes_active()
    {
        var pg = await SharedPostgres.GetAsync();
        var url = await pg.CreateDatabaseAsync();
        var port = FreePort.Next();
        await using var ollama = await StubOllama.StartAsync();
        ollama.SetModels("llama3.1:8b");
        using var dir = new TempDir();
        var nodeId = "reenroll-" + Guid.NewGuid().ToString("N")[..8];
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        var api = await Start(url, port, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        ManagedProcess? agent = null;
        try
        {
            var joinToken = await ApiHost.CreateJoinTokenAsync(client, "{\"max_uses\":1}");
            agent = ManagedProcess.Start("dotnet", [RepoPaths.BuiltAssembly("agent", "Dgon.Agent"),
                "--api", client.BaseAddress.ToString(), "--node-id", nodeId, "--region", "eu-west",
                "--ollama-url", ollama.BaseAddress.ToString(), "--interval", "0.5", "--config-dir", dir.Combine("dgon")],
                new Dictionary<string, string?> { ["DGON_JOIN_TOKEN"] = joinToken, ["DGON_API"] = null, ["NODE_ID"] = null, ["DGON_CONFIG_DIR"] = null });
            await Eventually.Until(async () => await StatusAsync(client, nodeId) == "active", TimeSpan.FromSeconds(30), "node active after enrollment\n" + agent.Dump());
            var firstToken = AgentProcessTests.StoredToken(dir.Combine("dgon"), nodeId);

            // The server loses the key its secret was encrypted with.
            await api.DisposeAsync();
            api = await Start(url, port, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
            await Eventually.Until(
                () => Task.FromResult(api.Process.Output.Any(l => l.Contains($"Node {nodeId} registered", StringComparison.Ordinal) && l.Contains("by key proof", StringComparison.Ordinal))),
                TimeSpan.FromSeconds(30),
                "a key-proven re-registration\n" + agent.Dump() + api.Process.Dump());
            await Eventually.Until(async () => await StatusAsync(client, nodeId) is "active" or "pending" && AgentProcessTests.StoredToken(dir.Combine("dgon"), nodeId) != firstToken, TimeSpan.FromSeconds(30), "a fresh token stored\n" + agent.Dump());

            await Eventually.Until(async () => await StatusAsync(client, nodeId) == "active", TimeSpan.FromSeconds(30), "node active again\n" + agent.Dump());
            Assert.Contains(api.Process.Output, l => l.Contains("cannot be decrypted", StringComparison.Ordinal));
            Assert.DoesNotContain(api.Process.Output, l => l.Contains("by join token", StringComparison.Ordinal)); // the single-use token was not needed again
            Assert.DoesNotContain(agent.Output, l => l.Contains(joinToken, StringComparison.Ordinal) || l.Contains(firstToken, StringComparison.Ordinal));
        }
        finally
        {
            if (agent is not null)
            {
                await agent.DisposeAsync();
            }

            await api.DisposeAsync();
        }
    }

    private static Task<ApiHost> Start(string url, int port, string secretKey) =>
        ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, Port = port, Environment = new Dictionary<string, string?> { ["DGON_SECRET_KEY"] = secretKey } });

    private static async Task<string?> StatusAsync(HttpClient client, string nodeId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/nodes");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
        using var response = await client.SendAsync(request);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return null;
        }

        var nodes = JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(), DgonJsonContext.Default.ListNodeView) ?? [];
        return nodes.SingleOrDefault(n => n.Id == nodeId)?.Status;
    }
}
