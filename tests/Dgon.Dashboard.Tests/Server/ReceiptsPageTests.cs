using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Dashboard.Tests.Support;
using Dgon.Domain.Receipts;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Dashboard.Tests.Server;

/// <summary>The receipts explorer (issue 13) against the real API: receipts with the signature status the API found.</summary>
public sealed class ReceiptsPageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_receipts_page_lists_receipts_with_their_signature_status_and_filters_by_node()
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = await pg.CreateDatabaseAsync() });
        var node = await TestNode.RegisterAsync(api.Client, "rcpt-node-1");
        var other = await TestNode.RegisterAsync(api.Client, "rcpt-node-2");
        await PostAsync(node, "r-good", tamper: false);
        await PostAsync(node, "r-bad", tamper: true);
        await PostAsync(other, "r-other", tamper: false);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: true);
        try
        {
            using var session = new DashboardSession(dashboard);
            using var page = await session.GetAsync("receipts?node=rcpt-node-1");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("data-id=\"r-good\" data-signature=\"valid\"", html, StringComparison.Ordinal);
            Assert.Contains("data-id=\"r-bad\" data-signature=\"invalid\"", html, StringComparison.Ordinal);
            Assert.DoesNotContain("r-other", html, StringComparison.Ordinal);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    private static async Task PostAsync(TestNode node, string id, bool tamper)
    {
        var receipt = new JsonObject
        {
            ["id"] = id,
            ["node_id"] = node.NodeId,
            ["region"] = "ap-southeast",
            ["model_id"] = "llama3.1:8b",
            ["payload"] = new JsonObject { ["version"] = "1.0", ["tokens_input"] = 3, ["tokens_output"] = 5, ["proof"] = ExecutionReceipts.Proof(id, "x", node.NodeId) },
        };
        using (var document = JsonDocument.Parse(receipt.ToJsonString()))
        {
            receipt["payload"]!["signature"] = ExecutionReceipts.Sign(node.Key, document.RootElement);
        }

        if (tamper)
        {
            receipt["payload"]!["tokens_output"] = 500;
        }

        using var response = await node.SendSignedAsync("/v1/receipts", receipt.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
