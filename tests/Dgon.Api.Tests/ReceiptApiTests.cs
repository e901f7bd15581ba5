using System.Net;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>Receipt ingest: HMAC, ownership (403), idempotency (200) and conflict (409), durability across an API crash.</summary>
public sealed class ReceiptApiTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    private static string Receipt(string id, string nodeId, string tokensOutput = "92") => $$$"""
        {"id":"{{{id}}}","node_id":"{{{nodeId}}}","region":"ap-southeast","model_id":"llama3.1-8b",
         "payload":{"version":"1.0","ts_start":1736538502,"ts_end":1736538518,"model_hash":"sha256:abc","prompt_hash":"blake3:def",
                    "tokens_input":128,"tokens_output":{{{tokensOutput}}},"p95_ms":310,"s3_checkpoints":[100],"hedged":false,"cache_hit":true,
                    "signature":"ed25519:AAAA"}}
        """;

    [Fact]
    public async Task A_receipt_is_stored_whole_and_answered_ok()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        var id = "r_" + Guid.NewGuid().ToString("N");
        using var response = await node.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True((await Json.ReadAsync(response)).GetProperty("ok").GetBoolean());

        Assert.Equal(node.NodeId, await fx.ScalarAsync<string>("SELECT node_id FROM receipts WHERE id = $1", id));
        Assert.Equal(92, await fx.ScalarAsync<int>("SELECT (payload->>'tokens_output')::int FROM receipts WHERE id = $1", id));
        Assert.Equal("ed25519:AAAA", await fx.ScalarAsync<string>("SELECT payload->>'signature' FROM receipts WHERE id = $1", id));
    }

    [Fact]
    public async Task Re_posting_the_same_receipt_is_idempotent_even_reformatted()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        var id = "r_" + Guid.NewGuid().ToString("N");
        using var first = await node.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId));
        using var again = await node.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId));
        var compact = System.Text.Json.JsonSerializer.Serialize(System.Text.Json.JsonDocument.Parse(Receipt(id, node.NodeId)).RootElement);
        using var reformatted = await node.SendSignedAsync("/v1/receipts", compact);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(HttpStatusCode.OK, reformatted.StatusCode);
        Assert.Equal(1L, await fx.ScalarAsync<long>("SELECT count(*) FROM receipts WHERE id = $1", id));
    }

    [Fact]
    public async Task The_same_id_with_a_different_body_is_409_and_the_original_is_kept()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        var id = "r_" + Guid.NewGuid().ToString("N");
        using var first = await node.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId));
        using var changed = await node.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId, tokensOutput: "93"));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await Json.AssertProblemAsync(changed, 409, "receipt-conflict");
        Assert.Equal(92, await fx.ScalarAsync<int>("SELECT (payload->>'tokens_output')::int FROM receipts WHERE id = $1", id));
    }

    [Fact]
    public async Task A_receipt_for_another_node_is_403()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        var other = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        var id = "r_" + Guid.NewGuid().ToString("N");
        using var response = await node.SendSignedAsync("/v1/receipts", Receipt(id, other.NodeId));
        await Json.AssertProblemAsync(response, 403, "node-mismatch");
        Assert.Equal(0L, await fx.ScalarAsync<long>("SELECT count(*) FROM receipts WHERE id = $1", id));
    }

    [Fact]
    public async Task An_unsigned_receipt_is_401()
    {
        using var response = await fx.Client.PostAsync("/v1/receipts", new StringContent(Receipt("r_x", "n-x"), System.Text.Encoding.UTF8, "application/json"));
        await Json.AssertProblemAsync(response, 401, "missing-auth-headers");
    }

    [Theory]
    [InlineData("{\"id\":\"r_1\",\"node_id\":\"NODE\",\"region\":\"eu\",\"model_id\":\"m\",\"payload\":{}}", "node_id")]
    [InlineData("{\"id\":\"r_1\",\"region\":\"eu\",\"model_id\":\"m\",\"payload\":[]}", "payload")]
    [InlineData("{\"id\":\"r 1\",\"region\":\"eu\",\"model_id\":\"m\",\"payload\":{}}", "id")]
    [InlineData("{\"id\":\"r_1\",\"region\":\"eu\",\"payload\":{}}", "model_id")]
    public async Task A_malformed_receipt_is_422_naming_the_field(string body, string field)
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        using var response = await node.SendSignedAsync("/v1/receipts", body);
        var problem = await Json.AssertProblemAsync(response, 422, "validation-failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task An_acknowledged_receipt_survives_an_API_crash()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId());
        var id = "r_" + Guid.NewGuid().ToString("N");
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = fx.DatabaseUrl });
        var viaSecond = node.Via(api.Client);
        using (var ack = await viaSecond.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId)))
        {
            Assert.Equal(HttpStatusCode.OK, ack.StatusCode);
        }

        api.Process.Kill(); // SIGKILL right after the 200: no graceful shutdown, no flush

        await using var restarted = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = fx.DatabaseUrl });
        viaSecond = node.Via(restarted.Client);
        using var replay = await viaSecond.SendSignedAsync("/v1/receipts", Receipt(id, node.NodeId, tokensOutput: "93"));
        await Json.AssertProblemAsync(replay, 409, "receipt-conflict"); // the acknowledged original is there
        Assert.Equal(92, await fx.ScalarAsync<int>("SELECT (payload->>'tokens_output')::int FROM receipts WHERE id = $1", id));
    }
}
