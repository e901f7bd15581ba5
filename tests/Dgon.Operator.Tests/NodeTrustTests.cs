using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Operator.Tests;

/// <summary>
/// Issue 9 in Kubernetes mode, end to end (real API and operator processes, the Kubernetes API test server, the real
/// kubectl): strangers' failures never touch a DgonNode, replays quarantine it, join tokens as kubectl-made Secrets,
/// the operator's join-token cleaner and abandoned-enrollment TTL, and an admin's key reset with kubectl.
/// </summary>
[Trait("Category", "Integration")]
public sealed class NodeTrustTests(KubernetesModeFixture fx, ITestOutputHelper output) : IClassFixture<KubernetesModeFixture>, IDisposable
{
    private const string Ns = KubernetesModeFixture.Namespace;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly List<KeyedNode> _nodes = [];

    public void Dispose()
    {
        _nodes.ForEach(n => n.Dispose());
        output.WriteLine(fx.Dump());
    }

    private static string NewNodeId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    private static string NewTokenId() => Guid.NewGuid().ToString("N")[..6];

    private async Task Wait(Func<Task<bool>> condition, string what)
    {
        try
        {
            await Eventually.Until(condition, Patience, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + fx.Dump(), e);
        }
    }

    private KeyedNode Node(string prefix)
    {
        var node = new KeyedNode(fx.Api.Client, NewNodeId(prefix));
        _nodes.Add(node);
        return node;
    }

    private async Task<KeyedNode> ActiveNodeAsync(string prefix)
    {
        var node = await Node(prefix).EnrolledAsync(await fx.Api.CreateJoinTokenAsync());
        using var hb = await node.HeartbeatAsync();
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "active" }, $"{node.NodeId} listed active");
        return node;
    }

    private async Task<HttpResponseMessage> RawHeartbeatAsync(string nodeId, string ts, string auth)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, KeyedNode.HeartbeatPath) { Content = new StringContent("""{"ready":true}""", Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("X-Node-Id", nodeId);
        request.Headers.TryAddWithoutValidation("X-Node-Ts", ts);
        request.Headers.TryAddWithoutValidation("X-Node-Auth", auth);
        return await fx.Api.Client.SendAsync(request);
    }

    private int WritesTo(string nodeId, DateTimeOffset since) =>
        fx.Server.Requests.Count(r => r.Resource == "dgonnodes" && r.Name == nodeId && r.Method is "PATCH" or "PUT" or "DELETE" && r.Time >= since);

    [Theory]
    [InlineData(5)]
    [InlineData(50)]
    public async Task Unauthenticated_failures_for_a_node_id_change_nothing_on_its_DgonNode(int count)
    {
        var node = await ActiveNodeAsync("stranger");
        // Let the node settle (offline after the 4 s timeout) so that no lifecycle write can happen while we watch.
        await Wait(async () => await fx.DgonNodeAsync(node.NodeId) is { Status.Phase: "Offline" } n && n.Status.ObservedGeneration == n.Metadata.Generation, "offline");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var before = (await fx.DgonNodeAsync(node.NodeId))!;
        var since = DateTimeOffset.UtcNow;

        var wrongToken = new string('0', 64);
        for (var i = 0; i < count; i++)
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var bytes = Encoding.UTF8.GetBytes("""{"ready":true}""");
            var v2 = Dgon.Domain.Auth.NodeAuth.SignHeadersV2(node.NodeId, wrongToken, "POST", KeyedNode.HeartbeatPath, bytes, now).Single(h => h.Key == "X-Node-Auth").Value;
            using var badV2 = await RawHeartbeatAsync(node.NodeId, KeyedNode.Ts(now), v2);
            using var badV1 = await RawHeartbeatAsync(node.NodeId, KeyedNode.Ts(now), Dgon.Domain.Auth.NodeAuth.Sign(wrongToken, bytes, KeyedNode.Ts(now)));
            using var ancient = await RawHeartbeatAsync(node.NodeId, "1", "00");
            foreach (var response in new[] { badV2, badV1, ancient })
            {
                Assert.True(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.TooManyRequests, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(3)); // the API reports at once; the operator would react within a second
        var after = (await fx.DgonNodeAsync(node.NodeId))!;
        Assert.Equal(before.Metadata.ResourceVersion, after.Metadata.ResourceVersion);
        Assert.False(after.Spec.Quarantine);
        Assert.Null(after.Status!.AuthFailures);
        Assert.Equal("Offline", after.Status.Phase);
        Assert.Equal(0, WritesTo(node.NodeId, since));
        Assert.DoesNotContain(await fx.EventsAboutAsync(node.NodeId), e => e.Reason is "ReplayedRequests" or "QuarantineRequested");

        // The rightful node is unaffected (once any rate limit the flood caused has passed).
        await Wait(
            async () =>
            {
                using var ok = await node.HeartbeatAsync();
                return ok.StatusCode == HttpStatusCode.OK;
            },
            "the rightful node's heartbeat accepted");
    }

    [Fact]
    public async Task Replaying_a_valid_signed_heartbeat_quarantines_the_node_with_reason_ReplayedRequests()
    {
        var node = await ActiveNodeAsync("replay");
        using var original = node.SignedHeartbeat();
        var replays = new List<HttpRequestMessage>();
        for (var i = 0; i < 5; i++)
        {
            replays.Add(await KeyedNode.CopyAsync(original));
        }

        using (var first = await fx.Api.Client.SendAsync(original))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        foreach (var replay in replays)
        {
            using (replay)
            using (var response = await fx.Api.Client.SendAsync(replay))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
                Assert.Equal("replayed", await KeyedNode.ProblemSlugAsync(response));
            }
        }

        await Wait(async () => await fx.DgonNodeAsync(node.NodeId) is { Spec.Quarantine: true, Status.Phase: "Quarantined" }, "quarantined after 5 replays");
        var q = (await fx.DgonNodeAsync(node.NodeId))!;
        Assert.Null(q.Status!.AuthFailures); // acted upon and cleared
        Assert.Equal("ReplayedRequests", q.Metadata.Annotations?["dgon.io/quarantine-reason"]);
        var condition = Assert.Single(q.Status.Conditions!, c => c.Type == "Quarantined");
        Assert.Equal(("True", "ReplayedRequests"), (condition.Status, condition.Reason));
        Assert.Contains("replayed", condition.Message, StringComparison.OrdinalIgnoreCase);
        await Wait(async () => (await fx.EventsAboutAsync(node.NodeId)).Any(e => e.Reason == "ReplayedRequests" && e.Type == "Warning"), "a ReplayedRequests Event");
        var describe = (await fx.Kubectl.RunAsync("describe", "dgonnode", node.NodeId)).EnsureSuccess("describe").Stdout;
        Assert.Contains("ReplayedRequests", describe, StringComparison.Ordinal);

        // The rightful node still authenticates but stays quarantined until an admin clears spec.quarantine.
        using (var hb = await node.HeartbeatAsync())
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
            Assert.Equal("quarantine", JsonNode.Parse(await hb.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
        }

        (await fx.Kubectl.RunAsync("patch", "dgonnode", node.NodeId, "--type=merge", "-p", """{"spec":{"quarantine":false}}""")).EnsureSuccess("clear");
        await Wait(
            async () =>
            {
                using var hb = await node.HeartbeatAsync();
                return hb.StatusCode == HttpStatusCode.OK && JsonNode.Parse(await hb.Content.ReadAsStringAsync())!["status"]!.GetValue<string>() == "active";
            },
            "active again once the quarantine is cleared");
        await Wait(async () => await fx.DgonNodeAsync(node.NodeId) is { Metadata.Annotations: var a } && a?.ContainsKey("dgon.io/quarantine-reason") != true, "the quarantine reason removed");
    }

    [Fact]
    public async Task A_join_token_made_with_kubectl_enrolls_a_node_once_and_the_operator_deletes_expired_ones()
    {
        var id = NewTokenId();
        var secret = Guid.NewGuid().ToString("N")[..16];
        (await fx.Kubectl.RunAsync("create", "secret", "generic", $"dgon-join-token-{id}", "-n", Ns, "--type=dgon.io/join-token",
            $"--from-literal=token-id={id}", $"--from-literal=token-secret={secret}", "--from-literal=expiration=2099-12-31T00:00:00Z",
            "--from-literal=usage-limit=1", "--from-literal=region=eu-central")).EnsureSuccess("create join token");

        var node = Node("kubectl-token");
        using (var enrolled = await node.EnrollAsync($"{id}.{secret}"))
        {
            Assert.Equal(HttpStatusCode.OK, enrolled.StatusCode);
        }

        using (var hb = await node.HeartbeatAsync())
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var dgonNode = (await fx.DgonNodeAsync(node.NodeId))!;
        Assert.Equal(node.PublicKey, dgonNode.Spec.PublicKey);
        Assert.Equal(id, dgonNode.Metadata.Annotations?["dgon.io/enrolled-with"]);
        var uses = (await fx.Kubectl.RunAsync("get", "secret", $"dgon-join-token-{id}", "-o", "jsonpath={.metadata.annotations.dgon\\.io/uses}")).EnsureSuccess("get uses").Stdout;
        Assert.Equal("1", uses);

        // Used up; and a wrong secret or a wrong region is refused.
        using (var second = await Node("kubectl-token").EnrollAsync($"{id}.{secret}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, second.StatusCode);
            Assert.Equal("join-token-used-up", await KeyedNode.ProblemSlugAsync(second));
        }

        using (var wrong = await Node("kubectl-token").EnrollAsync($"{id}.{new string('a', 16)}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.Equal("join-token-invalid", await KeyedNode.ProblemSlugAsync(wrong));
        }

        // An expired token is refused and its Secret deleted by the operator, with an Event.
        var expiredId = NewTokenId();
        (await fx.Kubectl.RunAsync("create", "secret", "generic", $"dgon-join-token-{expiredId}", "-n", Ns, "--type=dgon.io/join-token",
            $"--from-literal=token-id={expiredId}", $"--from-literal=token-secret={secret}", "--from-literal=expiration=2020-01-01T00:00:00Z")).EnsureSuccess("create expired token");
        using (var expired = await Node("expired-token").EnrollAsync($"{expiredId}.{secret}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
            Assert.True(await KeyedNode.ProblemSlugAsync(expired) is "join-token-expired" or "join-token-invalid"); // invalid once the cleaner was faster
        }

        await Wait(async () => await fx.SecretAsync($"dgon-join-token-{expiredId}") is null, "the expired join-token Secret deleted");
        await Wait(async () => (await fx.EventsAboutAsync("Secret", $"dgon-join-token-{expiredId}")).Any(e => e.Reason == "JoinTokenExpired"), "a JoinTokenExpired Event");
        Assert.NotNull(await fx.SecretAsync($"dgon-join-token-{id}")); // used up, not expired: kept
        Assert.Contains(fx.Operator.Process.Output, l => l.Contains($"dgon-join-token-{expiredId}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Join_tokens_created_and_revoked_through_the_api_are_Secrets()
    {
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/join-tokens")
        {
            Content = new StringContent("""{"max_uses":3,"description":"e2e","region":"eu-central"}""", Encoding.UTF8, "application/json"),
        };
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
        using var created = await fx.Api.Client.SendAsync(create);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var view = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
        var token = view["token"]!.GetValue<string>();
        var id = view["id"]!.GetValue<string>();
        Assert.StartsWith(id + ".", token, StringComparison.Ordinal);

        var secret = (await fx.SecretAsync($"dgon-join-token-{id}"))!;
        Assert.Equal("dgon.io/join-token", secret.Type);
        Assert.True(secret.Data!.ContainsKey("token-secret-sha256"));
        Assert.False(secret.Data.ContainsKey("token-secret"));
        Assert.Equal("3", Encoding.UTF8.GetString(secret.Data["usage-limit"]));

        await Node("api-token").EnrolledAsync(token);
        using (var list = new HttpRequestMessage(HttpMethod.Get, "/v1/admin/join-tokens"))
        {
            list.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
            using var listed = await fx.Api.Client.SendAsync(list);
            Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
            var item = JsonNode.Parse(await listed.Content.ReadAsStringAsync())!.AsArray().Single(t => t!["id"]!.GetValue<string>() == id)!;
            Assert.Equal(1, item["uses"]!.GetValue<int>());
            Assert.Null(item["token"]);
        }

        using (var revoke = new HttpRequestMessage(HttpMethod.Delete, $"/v1/admin/join-tokens/{id}"))
        {
            revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
            using var revoked = await fx.Api.Client.SendAsync(revoke);
            Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        }

        var revokedSecret = (await fx.SecretAsync($"dgon-join-token-{id}"))!;
        Assert.True(DateTimeOffset.TryParse(revokedSecret.Metadata.Annotations!["dgon.io/revoked-at"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out _));
        using var refused = await Node("api-token").EnrollAsync(token);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("join-token-revoked", await KeyedNode.ProblemSlugAsync(refused));
    }

    [Fact]
    public async Task Removing_spec_publicKey_with_kubectl_makes_the_nodes_heartbeats_401_until_it_enrolls_again()
    {
        var node = await ActiveNodeAsync("reset");
        (await fx.Kubectl.RunAsync("patch", "dgonnode", node.NodeId, "--type=merge", "-p", """{"spec":{"publicKey":null}}""")).EnsureSuccess("remove the key");

        await Wait(
            async () =>
            {
                using var hb = await node.HeartbeatAsync();
                return hb.StatusCode == HttpStatusCode.Unauthorized;
            },
            "heartbeats refused once the key is removed");
        Assert.Null((await fx.DgonNodeAsync(node.NodeId))!.Spec.PublicKey);

        // The node keeps its resource; it enrolls again with a join token (and may bring the same key).
        await node.EnrolledAsync(await fx.Api.CreateJoinTokenAsync());
        Assert.Equal(node.PublicKey, (await fx.DgonNodeAsync(node.NodeId))!.Spec.PublicKey);
        await Wait(
            async () =>
            {
                using var hb = await node.HeartbeatAsync();
                return hb.StatusCode == HttpStatusCode.OK;
            },
            "heartbeats accepted after enrolling again");
    }

    [Fact]
    public async Task A_node_that_never_sends_a_heartbeat_is_deleted_after_the_pending_ttl()
    {
        var abandoned = await Node("abandoned").EnrolledAsync(await fx.Api.CreateJoinTokenAsync());
        var alive = await Node("alive").EnrolledAsync(await fx.Api.CreateJoinTokenAsync());
        using (var hb = await alive.HeartbeatAsync())
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        var created = (await fx.DgonNodeAsync(abandoned.NodeId))!.Metadata.CreationTimestamp!.Value;
        await Wait(async () => await fx.DgonNodeAsync(abandoned.NodeId) is null, "the abandoned enrollment deleted");
        var ttl = TimeSpan.FromSeconds(KubernetesModeFixture.PendingNodeTtlSeconds);
        // creationTimestamp has whole seconds: the deletion cannot come before created + TTL.
        Assert.True(DateTimeOffset.UtcNow >= created + ttl, $"deleted before its TTL (created {created:O})");
        await Wait(async () => (await fx.EventsAboutAsync(abandoned.NodeId)).Any(e => e.Reason == "NeverHeartbeated"), "a NeverHeartbeated Event");
        await Wait(async () => await fx.ListedNodeAsync(abandoned.NodeId) is null, "its mirror row removed");
        await Wait(
            async () => await fx.SecretAsync("dgonnode-" + abandoned.NodeId) is null,
            "its Secret garbage-collected");

        Assert.NotNull(await fx.DgonNodeAsync(alive.NodeId)); // it sent a heartbeat (it is offline by now, but kept)
    }
}
