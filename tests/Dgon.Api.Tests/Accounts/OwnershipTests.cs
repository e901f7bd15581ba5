using System.Net;
using System.Text.Json;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Issue 12's operators: a join token an operator creates binds the nodes it enrolls to them; they see and manage
/// only those, and wallet addresses and ASN hints are shown only to admins and the owner.
/// </summary>
public sealed class OwnershipTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task An_operators_join_token_makes_them_the_owner_who_alone_sees_and_manages_the_node()
    {
        var api = fx.Client;
        var (alice, bob, carol) = (NewEmail("alice"), NewEmail("bob"), NewEmail("carol"));
        var aliceId = await CreateUserAsync(api, alice, "operator");
        await CreateUserAsync(api, bob, "operator");
        await CreateUserAsync(api, carol, "viewer");
        var (aliceSession, bobSession, viewer) = (await LoginAsync(api, alice), await LoginAsync(api, bob), await LoginAsync(api, carol));

        var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/admin/join-tokens", aliceSession, "{\"max_uses\":1,\"description\":\"alice's mac\"}");
        Assert.Equal(HttpStatusCode.Created, status);
        var token = JsonDocument.Parse(body).RootElement;
        Assert.Equal(aliceId, token.GetProperty("owner_id").GetString());

        var nodeId = ApiFixture.NewNodeId("owned");
        var node = await TestNode.RegisterAsync(api, nodeId, joinToken: token.GetProperty("token").GetString());
        using (var wallet = await node.ReRegisterAsync(walletAddress: "0xa11ce"))
        {
            Assert.Equal(HttpStatusCode.OK, wallet.StatusCode);
        }

        // Alice sees her node with its wallet and owner; Bob sees nothing; a viewer and an admin see it, the viewer without the wallet.
        var aliceView = await FindAsync(aliceSession, nodeId);
        Assert.Equal("0xa11ce", aliceView?.GetProperty("wallet_address").GetString());
        Assert.Equal(aliceId, aliceView?.GetProperty("owner_id").GetString());
        Assert.Null(await FindAsync(bobSession, nodeId));
        var viewerView = await FindAsync(viewer, nodeId);
        Assert.Equal(JsonValueKind.Null, viewerView?.GetProperty("wallet_address").ValueKind);
        Assert.Equal(JsonValueKind.Null, viewerView?.GetProperty("owner_id").ValueKind);
        Assert.Equal("0xa11ce", (await FindAsync(ApiHost.AdminToken, nodeId))?.GetProperty("wallet_address").GetString());

        // Summaries: Alice's counts her node only; the provider summary too.
        var summary = JsonDocument.Parse((await SendAsync(api, HttpMethod.Get, "/v1/summary", aliceSession)).Body).RootElement;
        Assert.Equal(1, summary.GetProperty("total_nodes").GetInt32());
        Assert.Equal(0, JsonDocument.Parse((await SendAsync(api, HttpMethod.Get, "/v1/summary", bobSession)).Body).RootElement.GetProperty("total_nodes").GetInt32());
        var provider = JsonDocument.Parse((await SendAsync(api, HttpMethod.Get, "/v1/me/summary", aliceSession)).Body).RootElement;
        Assert.Equal(1, provider.GetProperty("nodes_total").GetInt32());
        Assert.Equal(JsonValueKind.Null, provider.GetProperty("earnings_compute_units").ValueKind);

        // Join tokens: each operator lists only their own; Bob cannot revoke Alice's.
        Assert.Contains(token.GetProperty("id").GetString()!, (await SendAsync(api, HttpMethod.Get, "/v1/admin/join-tokens", aliceSession)).Body, StringComparison.Ordinal);
        Assert.DoesNotContain(token.GetProperty("id").GetString()!, (await SendAsync(api, HttpMethod.Get, "/v1/admin/join-tokens", bobSession)).Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(api, HttpMethod.Delete, $"/v1/admin/join-tokens/{token.GetProperty("id").GetString()}", bobSession)).Status);

        // Node actions: Bob's are "not found"; Alice quarantines and releases her node, which the phase shows.
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(api, HttpMethod.Post, $"/v1/admin/nodes/{nodeId}/quarantine", bobSession)).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(api, HttpMethod.Post, $"/v1/admin/nodes/{nodeId}/quarantine", aliceSession)).Status);
        Assert.Equal("quarantine", (await FindAsync(aliceSession, nodeId))?.GetProperty("status").GetString());
        using (var held = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, held.StatusCode);
            Assert.Contains("\"status\":\"quarantine\"", await held.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(api, HttpMethod.Post, $"/v1/admin/nodes/{nodeId}/release", aliceSession)).Status);
        await Eventually.Until(
            async () =>
            {
                using var beat = await node.HeartbeatAsync(ready: true);
                return (await beat.Content.ReadAsStringAsync()).Contains("\"status\":\"active\"", StringComparison.Ordinal);
            },
            TimeSpan.FromSeconds(30),
            "the released node becomes active with its next heartbeat");

        // Delete: gone for everyone; its token no longer works; the audit log names Alice for each action.
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(api, HttpMethod.Delete, $"/v1/admin/nodes/{nodeId}", aliceSession)).Status);
        Assert.Null(await FindAsync(ApiHost.AdminToken, nodeId));
        await Eventually.Until(
            async () =>
            {
                using var beat = await node.HeartbeatAsync(ready: true);
                return beat.StatusCode == HttpStatusCode.Unauthorized;
            },
            TimeSpan.FromSeconds(30),
            "a deleted node's heartbeats are refused");
        var audit = (await SendAsync(api, HttpMethod.Get, $"/v1/admin/audit?actor={aliceId}", ApiHost.AdminToken)).Body;
        foreach (var action in new[] { "join_token.create", "node.quarantine", "node.release", "node.delete" })
        {
            Assert.Contains($"\"action\":\"{action}\"", audit, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_token_made_with_the_admin_token_enrolls_unowned_nodes_that_no_operator_sees()
    {
        var api = fx.Client;
        var email = NewEmail("op");
        await CreateUserAsync(api, email, "operator");
        var session = await LoginAsync(api, email);
        var nodeId = ApiFixture.NewNodeId("unowned");
        await TestNode.RegisterAsync(api, nodeId);
        Assert.Null(await FindAsync(session, nodeId));
        var admin = await FindAsync(ApiHost.AdminToken, nodeId);
        Assert.Equal(JsonValueKind.Null, admin?.GetProperty("owner_id").ValueKind);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(api, HttpMethod.Post, $"/v1/admin/nodes/{nodeId}/reset-key", session)).Status);
    }

    private async Task<JsonElement?> FindAsync(string bearer, string nodeId)
    {
        var (status, body) = await SendAsync(fx.Client, HttpMethod.Get, $"/v1/nodes?prefix={nodeId}", bearer);
        Assert.True(status == HttpStatusCode.OK, body);
        foreach (var node in JsonDocument.Parse(body).RootElement.EnumerateArray())
        {
            if (node.GetProperty("id").GetString() == nodeId)
            {
                return node.Clone();
            }
        }

        return null;
    }
}
