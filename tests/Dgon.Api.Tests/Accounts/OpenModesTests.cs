using System.Net;
using System.Text.Json;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Issue 12's opt-in development mode and the management port: <c>DGON_OPEN_READS=true</c> restores seed 000's open
/// reads (owner-only fields still hidden; admin endpoints still closed), and <c>DGON_MANAGEMENT_URLS</c> moves
/// <c>/metrics</c> off the public port.
/// </summary>
public sealed class OpenModesTests
{
    [Fact]
    public async Task Open_reads_serve_nodes_and_summary_without_a_credential_but_never_wallets_or_admin_endpoints()
    {
        var postgres = await SharedPostgres.GetAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await postgres.CreateDatabaseAsync(),
            Environment = new Dictionary<string, string?> { ["DGON_OPEN_READS"] = "true" },
        });
        var node = await TestNode.RegisterAsync(api.Client, ApiFixture.NewNodeId("open"));
        using (var wallet = await node.ReRegisterAsync(walletAddress: "0xdev"))
        {
            Assert.Equal(HttpStatusCode.OK, wallet.StatusCode);
        }

        var (status, body) = await SendAsync(api.Client, HttpMethod.Get, "/v1/nodes");
        Assert.Equal(HttpStatusCode.OK, status);
        var listed = JsonDocument.Parse(body).RootElement.EnumerateArray().Single(n => n.GetProperty("id").GetString() == node.NodeId);
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("wallet_address").ValueKind);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api.Client, HttpMethod.Get, "/v1/summary")).Status);
        Assert.Contains("0xdev", (await SendAsync(api.Client, HttpMethod.Get, "/v1/nodes", ApiHost.AdminToken)).Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api.Client, HttpMethod.Get, "/v1/admin/join-tokens")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api.Client, HttpMethod.Get, "/v1/admin/users")).Status);
    }

    [Fact]
    public async Task With_a_management_port_metrics_answer_only_there_and_health_on_both()
    {
        var postgres = await SharedPostgres.GetAsync();
        var management = FreePort.Next();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await postgres.CreateDatabaseAsync(),
            Environment = new Dictionary<string, string?> { ["DGON_MANAGEMENT_URLS"] = $"http://127.0.0.1:{management}" },
        });
        using var mgmt = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{management}") };
        Assert.Equal(HttpStatusCode.NotFound, (await api.Client.GetAsync("/metrics")).StatusCode);
        using var metrics = await mgmt.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Contains("dgon_", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await mgmt.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.Client.GetAsync("/healthz")).StatusCode);
    }
}
