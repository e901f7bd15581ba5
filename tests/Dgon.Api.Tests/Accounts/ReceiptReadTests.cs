using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Domain.Receipts;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Issue 13's receipts side: a node's <c>ed25519:</c> receipt signature is checked against its enrolled key before the
/// receipt is stored (valid, invalid — kept as evidence —, or unsigned), and receipts are read back with
/// <c>GET /v1/receipts</c> (scope <c>receipts:read</c>, filters, keyset paging), checked with
/// <c>POST /v1/receipts/verify</c>, and summed by <c>GET /v1/usage</c>.
/// </summary>
public sealed class ReceiptReadTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task A_signed_receipt_is_stored_valid_a_tampered_one_invalid_and_the_seeds_placeholder_unsigned()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("rcpt"));
        var good = Signed(node, "r-" + Guid.NewGuid().ToString("N"), 92);
        Assert.Equal("valid", await PostAsync(node, good));

        var tampered = Signed(node, "r-" + Guid.NewGuid().ToString("N"), 92);
        tampered["payload"]!["tokens_output"] = 9200;
        Assert.Equal("invalid", await PostAsync(node, tampered));

        var placeholder = Signed(node, "r-" + Guid.NewGuid().ToString("N"), 1);
        placeholder["payload"]!["signature"] = "ed25519:base64...";
        Assert.Equal("unsigned", await PostAsync(node, placeholder));

        // Read back: the admin sees statuses; the verifier agrees with what was stored.
        var (status, body) = await SendAsync(fx.Client, HttpMethod.Get, $"/v1/receipts?node={node.NodeId}", ApiHost.AdminToken);
        Assert.Equal(HttpStatusCode.OK, status);
        var listed = JsonDocument.Parse(body).RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("id").GetString()!, r => r.Clone());
        Assert.Equal("valid", listed[good["id"]!.GetValue<string>()].GetProperty("signature_status").GetString());
        Assert.Equal("invalid", listed[tampered["id"]!.GetValue<string>()].GetProperty("signature_status").GetString());
        var verified = await SendAsync(fx.Client, HttpMethod.Post, "/v1/receipts/verify", ApiHost.AdminToken, listed[good["id"]!.GetValue<string>()].GetRawText());
        Assert.Contains("\"valid\":true", verified.Body, StringComparison.Ordinal);
        var refused = await SendAsync(fx.Client, HttpMethod.Post, "/v1/receipts/verify", ApiHost.AdminToken, listed[tampered["id"]!.GetValue<string>()].GetRawText());
        Assert.Contains("\"valid\":false", refused.Body, StringComparison.Ordinal);
        Assert.Contains("bad_signature", refused.Body, StringComparison.Ordinal);
        var stranger = await SendAsync(fx.Client, HttpMethod.Post, "/v1/receipts/verify", ApiHost.AdminToken, "{\"node_id\":\"no-such-node\",\"payload\":{}}");
        Assert.Contains("unknown_node", stranger.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Receipts_page_newest_first_filter_by_model_and_sum_into_usage()
    {
        var node = await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("page"));
        for (var i = 0; i < 5; i++)
        {
            var receipt = Signed(node, $"p-{node.NodeId}-{i}", 10 + i);
            receipt["model_id"] = i % 2 == 0 ? "llama3.1:8b" : "qwen2.5:7b";
            receipt["payload"]!["signature"] = null;
            receipt["payload"]!.AsObject().Remove("signature");
            Assert.Equal("unsigned", await PostAsync(node, receipt));
        }

        var seen = new List<string>();
        string? url = $"/v1/receipts?node={node.NodeId}&limit=2";
        while (url is not null)
        {
            using var request = Request(HttpMethod.Get, url, ApiHost.AdminToken);
            using var response = await fx.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            seen.AddRange(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray().Select(r => r.GetProperty("id").GetString()!));
            url = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1] : null;
        }

        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"p-{node.NodeId}-{4 - i}"), seen);
        var qwen = JsonDocument.Parse((await SendAsync(fx.Client, HttpMethod.Get, $"/v1/receipts?node={node.NodeId}&model=qwen2.5:7b", ApiHost.AdminToken)).Body).RootElement;
        Assert.Equal(2, qwen.GetArrayLength());

        var usage = JsonDocument.Parse((await SendAsync(fx.Client, HttpMethod.Get, "/v1/usage?by=node", ApiHost.AdminToken)).Body).RootElement;
        var row = usage.EnumerateArray().Single(u => u.GetProperty("key").GetString() == node.NodeId);
        Assert.Equal(5, row.GetProperty("requests").GetInt64());
        Assert.Equal(10 + 11 + 12 + 13 + 14, row.GetProperty("tokens_output").GetInt64());
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(fx.Client, HttpMethod.Get, "/v1/receipts?cursor=nope", ApiHost.AdminToken)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(fx.Client, HttpMethod.Get, "/v1/usage?by=planet", ApiHost.AdminToken)).Status);
    }

    [Fact]
    public async Task Receipt_reads_need_receipts_read_and_operators_see_only_their_nodes()
    {
        var api = fx.Client;
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Get, "/v1/receipts")).Status);
        var email = NewEmail("op");
        await CreateUserAsync(api, email, "operator");
        var session = await LoginAsync(api, email);
        var (_, inferenceOnly) = await CreateKeyAsync(api, session, "inference");
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(api, HttpMethod.Get, "/v1/receipts", inferenceOnly)).Status);

        var foreign = await TestNode.RegisterAsync(api, ApiFixture.NewNodeId("foreign"));
        Assert.Equal("valid", await PostAsync(foreign, Signed(foreign, "f-" + Guid.NewGuid().ToString("N"), 3)));
        var (status, body) = await SendAsync(api, HttpMethod.Get, $"/v1/receipts?node={foreign.NodeId}", session);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("[]", body);
    }

    private static JsonObject Signed(TestNode node, string id, int tokensOutput)
    {
        var receipt = new JsonObject
        {
            ["id"] = id,
            ["node_id"] = node.NodeId,
            ["region"] = "ap-southeast",
            ["model_id"] = "llama3.1:8b",
            ["payload"] = new JsonObject
            {
                ["version"] = "1.0",
                ["ts_start"] = 1_765_000_000,
                ["ts_end"] = 1_765_000_002,
                ["tokens_input"] = 12,
                ["tokens_output"] = tokensOutput,
                ["p95_ms"] = 31,
                ["prompt_hash"] = "sha256:00",
                ["proof"] = ExecutionReceipts.Proof(id, "result text", node.NodeId),
            },
        };
        using var document = JsonDocument.Parse(receipt.ToJsonString());
        receipt["payload"]!["signature"] = ExecutionReceipts.Sign(node.Key, document.RootElement);
        return receipt;
    }

    private static async Task<string> PostAsync(TestNode node, JsonObject receipt)
    {
        using var response = await node.SendSignedAsync("/v1/receipts", receipt.ToJsonString());
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("signature_status").GetString()!;
    }
}
