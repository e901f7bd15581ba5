using System.ClientModel;
using System.Net;
using System.Text;
using Dgon.Testing;
using OpenAI.Chat;
using OpenAI.Models;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// Issue 13 across two API processes on one PostgreSQL: a node linked to replica A serves a request that arrives at
/// replica B, which forwards it to A (node_links), authenticated replica to replica with the shared secret (here the
/// admin token, the documented fallback when <c>DGON_REPLICA_SECRET</c> is unset); a forged forwarding header is 401.
/// </summary>
public sealed class GatewayReplicaTests
{
    [Fact]
    public async Task A_request_at_the_replica_without_the_link_is_forwarded_to_the_one_holding_it()
    {
        var postgres = await SharedPostgres.GetAsync();
        var url = await postgres.CreateDatabaseAsync();
        await using var a = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url });
        await using var b = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url });
        var email = NewEmail("replicas");
        await CreateUserAsync(a.Client, email, "operator");
        var (keyId, key) = await CreateKeyAsync(a.Client, await LoginAsync(a.Client, email), "inference");

        var model = $"m-fwd-{Guid.NewGuid():N}"[..20];
        await using var node = await FakeLinkNode.StartAsync(a.Client, $"n-fwd-{Guid.NewGuid():N}"[..20], model);

        // B learns of the node (its table, from PostgreSQL) and of the link (node_links) without talking to it.
        var models = new OpenAIModelClient(new ApiKeyCredential(key), GatewayFixture.SdkOptions(b.BaseAddress));
        await Eventually.Until(async () => (await models.GetModelsAsync()).Value.Any(m => m.Id == model), TimeSpan.FromSeconds(30), "replica B lists the model linked at A");

        var chat = new ChatClient(model, new ApiKeyCredential(key), GatewayFixture.SdkOptions(b.BaseAddress));
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("via b")]);
        Assert.Equal(FakeLinkNode.ReplyTo("via b"), completion.Content[0].Text);

        var streamed = new StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("streamed via b")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(FakeLinkNode.ReplyTo("streamed via b"), streamed.ToString());
        Assert.Equal(2, node.Dispatches.Count);

        // The receipts name the key that authenticated at B.
        await Eventually.Until(async () => (await SendAsync(a.Admin, HttpMethod.Get, "/metrics")).Body.Contains("dgon_gateway_receipts_total{status=\"valid\"} 2", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "A stored both receipts");
        var bMetrics = (await SendAsync(b.Admin, HttpMethod.Get, "/metrics")).Body;
        Assert.Contains("dgon_gateway_routing_total{outcome=\"forwarded\"} 2", bMetrics, StringComparison.Ordinal);

        // A forged replica header is refused at A.
        using var forged = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($"{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}", Encoding.UTF8, "application/json"),
        };
        forged.Headers.Add("X-DGON-Replica-Auth", "not the secret");
        forged.Headers.Add("X-DGON-Api-Key-Id", keyId);
        using var refused = await a.Client.SendAsync(forged);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(2, node.Dispatches.Count);
    }
}
