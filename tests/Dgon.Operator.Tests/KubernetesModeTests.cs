using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Operator.Tests;

/// <summary>
/// Issue 3 end to end: agent → API → DgonNode → operator → PostgreSQL → <c>/v1/nodes</c>, checked also with the
/// real kubectl. Issue 9's trust rules (replays, join tokens, key reset) are in <see cref="NodeTrustTests"/>. Liveness waits are generous (30 s); the one timing bound asserted is the issue's own
/// ("offline within the timeout + 5 s").
/// </summary>
[Trait("Category", "Integration")]
public sealed class KubernetesModeTests(KubernetesModeFixture fx, ITestOutputHelper output) : IClassFixture<KubernetesModeFixture>, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly List<ManagedProcess> _agents = [];

    public void Dispose()
    {
        foreach (var a in _agents)
        {
            output.WriteLine(a.Dump());
        }

        output.WriteLine(fx.Dump());
    }

    private static string NewNodeId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    private Task Wait(Func<Task<bool>> condition, string what) => WaitFor(condition, what, Patience);

    private async Task WaitFor(Func<Task<bool>> condition, string what, TimeSpan patience)
    {
        try
        {
            await Eventually.Until(condition, patience, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + fx.Dump(), e);
        }
    }

    private ManagedProcess StartAgent(string nodeId, Uri ollama, string configDir, string joinToken)
    {
        var args = new List<string>
        {
            RepoPaths.BuiltAssembly("agent", "Dgon.Agent"),
            "--api", fx.Api.BaseAddress.ToString(),
            "--node-id", nodeId,
            "--region", "eu-central",
            "--ollama-url", ollama.ToString(),
            "--interval", "0.5",
            "--config-dir", configDir,
        };
        string[] cleared = ["DGON_API", "NODE_ID", "REGION", "RUNTIME", "OLLAMA_URL", "HEARTBEAT_INTERVAL", "DGON_CONFIG_DIR", "ASN_HINT", "WALLET_ADDRESS", "GREEN_ENERGY", "LOG_LEVEL"];
        var env = cleared.ToDictionary(v => v, _ => (string?)null);
        env["DGON_JOIN_TOKEN"] = joinToken; // issue 9: a new node enrolls with a join token
        var process = ManagedProcess.Start("dotnet", args, env);
        _agents.Add(process);
        return process;
    }

    private async Task<TestNode> ActiveNodeAsync(string prefix)
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, NewNodeId(prefix));
        using var hb = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "active" }, $"{node.NodeId} listed active");
        return node;
    }

    private static async Task<string> HeartbeatPhaseAsync(TestNode node)
    {
        using var hb = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        return JsonNode.Parse(await hb.Content.ReadAsStringAsync())!["status"]!.GetValue<string>();
    }

    private Task WaitUntilHeartbeatAnswers(TestNode node, string phase, string what) =>
        Wait(async () => await HeartbeatPhaseAsync(node) == phase, what);

    private int StatusWrites(string nodeId, DateTimeOffset from, DateTimeOffset to) =>
        fx.Server.Requests.Count(r => r.Method == "PATCH" && r.Resource == "dgonnodes" && r.Subresource == "status"
            && r.Name == nodeId && r.StatusCode == 200 && r.Time >= from && r.Time <= to);

    [Fact]
    public async Task Agent_turns_its_node_active_and_offline_after_it_stops_with_an_event_and_kubectl_shows_it()
    {
        await using var ollama = await StubOllama.StartAsync();
        ollama.SetModels("llama3.1:8b");
        var configDir = Path.Combine(fx.Directory, "agent-" + Guid.NewGuid().ToString("N")[..6]);
        var nodeId = NewNodeId("e2e");
        var agent = StartAgent(nodeId, ollama.BaseAddress, configDir, await fx.Api.CreateJoinTokenAsync("""{"max_uses":1}"""));

        await Wait(async () => await fx.ListedNodeAsync(nodeId) is { Status: "active", Region: "eu-central" }, $"{nodeId} listed active via the mirror");

        var node = await fx.DgonNodeAsync(nodeId);
        Assert.NotNull(node);
        Assert.Equal("Active", node.Status?.Phase);
        Assert.Equal("eu-central", node.Spec.Region);
        Assert.Equal("ollama", node.Spec.Runtime);
        Assert.Contains(node.Status!.Conditions!, c => c is { Type: "Ready", Status: "True" });
        Assert.Contains(node.Status.Conditions!, c => c is { Type: "Heartbeating", Status: "True" });
        var secret = (await fx.SecretAsync("dgonnode-" + nodeId))!;
        Assert.Contains(secret.Metadata.OwnerReferences!, o => o.Kind == "DgonNode" && o.Uid == node.Metadata.Uid);
        Assert.StartsWith("ed25519:", node.Spec.PublicKey, StringComparison.Ordinal); // the agent enrolled its key
        Assert.Equal(node.Spec.PublicKey, secret.Metadata.Annotations?["dgon.io/public-key"]);

        var get = (await fx.Kubectl.RunAsync("get", "dgonnodes")).EnsureSuccess("get dgonnodes");
        var header = get.Stdout.Split('\n')[0];
        foreach (var column in new[] { "NAME", "STATUS", "REGION", "RUNTIME", "LAST HEARTBEAT", "AGE" })
        {
            Assert.Contains(column, header, StringComparison.Ordinal);
        }

        var row = get.Stdout.Split('\n').Single(l => l.StartsWith(nodeId + " ", StringComparison.Ordinal));
        Assert.Contains("Active", row, StringComparison.Ordinal);
        Assert.Contains("eu-central", row, StringComparison.Ordinal);

        // Labels written at registration select like a core resource's; another region selects nothing of ours.
        var byRegion = (await fx.Kubectl.RunAsync("get", "dgn", "-l", "region=eu-central,runtime=ollama", "-o", "name")).EnsureSuccess("get -l region");
        Assert.Contains("dgonnode.dgon.io/" + nodeId, byRegion.Stdout, StringComparison.Ordinal);
        var otherRegion = (await fx.Kubectl.RunAsync("get", "dgn", "-l", "region=ap-south", "-o", "name")).EnsureSuccess("get -l other region");
        Assert.DoesNotContain(nodeId, otherRegion.Stdout, StringComparison.Ordinal);
        // The first activation is an Event too (from the operator, the one writer of phase).
        await Wait(async () => (await fx.EventsAboutAsync(nodeId)).Any(e => e.Reason == "RuntimeReady" && e.Note.Contains("-> Active", StringComparison.Ordinal)), "an Event for the first activation");

        await agent.StopAsync();
        var stopped = Stopwatch.StartNew();
        await Wait(async () => await fx.ListedNodeAsync(nodeId) is { Status: "offline" }, $"{nodeId} offline after the agent stopped");
        var seenOffline = DateTimeOffset.UtcNow;
        // Issue 10: offline within grace + 5 s of the agent stopping (no refresh lag on top any more).
        Assert.True(stopped.Elapsed <= KubernetesModeFixture.Timeout + TimeSpan.FromSeconds(5), $"offline after {stopped.Elapsed.TotalSeconds:0.0} s");

        var offline = await fx.DgonNodeAsync(nodeId);
        // The recorded last heartbeat is the real one (the trailing write), so offline comes grace after it.
        var sinceLastHeartbeat = seenOffline - offline!.Status!.LastHeartbeatTime!.Value;
        output.WriteLine($"offline {stopped.Elapsed.TotalSeconds:0.0} s after the agent stopped, {sinceLastHeartbeat.TotalSeconds:0.0} s after its recorded last heartbeat (grace {KubernetesModeFixture.GraceSeconds} s)");
        Assert.True(sinceLastHeartbeat <= KubernetesModeFixture.Timeout + TimeSpan.FromSeconds(5), $"offline {sinceLastHeartbeat.TotalSeconds:0.0} s after the recorded last heartbeat");
        Assert.Equal("Offline", offline!.Status?.Phase);
        Assert.Contains(offline.Status!.Conditions!, c => c is { Type: "Heartbeating", Status: "False", Reason: "HeartbeatTimeout" });
        Assert.Equal(offline.Metadata.Generation, offline.Status.ObservedGeneration);
        await Wait(async () => (await fx.EventsAboutAsync(nodeId)).Any(e => e.Reason == "HeartbeatTimeout" && e.Type == "Warning"), "a HeartbeatTimeout Event");

        var describe = (await fx.Kubectl.RunAsync("describe", "dgonnode", nodeId)).EnsureSuccess("describe");
        Assert.Contains("HeartbeatTimeout", describe.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_the_DgonNode_revokes_the_node_and_removes_its_mirror_row()
    {
        var node = await ActiveNodeAsync("del");

        (await fx.Kubectl.RunAsync("delete", "dgonnode", node.NodeId)).EnsureSuccess("delete dgonnode");

        await Wait(
            async () =>
            {
                using var hb = await node.HeartbeatAsync(ready: true);
                return hb.StatusCode == HttpStatusCode.Unauthorized;
            },
            "heartbeat refused with 401 after the delete");
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is null, "mirror row removed");
        await Wait(
            async () => await fx.SecretAsync("dgonnode-" + node.NodeId) is null,
            "the owned Secret garbage-collected");

        // Registering again brings it back with a fresh secret.
        var again = await TestNode.RegisterAsync(fx.Api.Client, node.NodeId);
        again.ContinueClockOf(node); // the replay clock of the id outlives the deletion
        using var ok = await again.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Steady_heartbeats_write_the_status_at_most_once_per_refresh_interval()
    {
        var node = await ActiveNodeAsync("steady");
        var from = DateTimeOffset.UtcNow;
        var sent = 0;
        var run = Stopwatch.StartNew();
        while (run.Elapsed < TimeSpan.FromSeconds(5))
        {
            using var hb = await node.HeartbeatAsync(ready: true, gpuUtil: Random.Shared.NextDouble());
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
            sent++;
            await Task.Delay(50);
        }

        var to = DateTimeOffset.UtcNow;
        var writes = StatusWrites(node.NodeId, from, to);
        var intervals = (int)Math.Ceiling((to - from).TotalSeconds / KubernetesModeFixture.RefreshSeconds);
        output.WriteLine($"{sent} heartbeats, {writes} status writes in {(to - from).TotalSeconds:0.0} s");
        Assert.True(sent >= 20, $"only {sent} heartbeats were sent");
        Assert.True(writes <= intervals, $"{writes} status writes for {sent} heartbeats in {intervals} refresh intervals");
        Assert.True(writes >= 2, $"the status was refreshed only {writes} times in {(to - from).TotalSeconds:0.0} s");

        // The trailing write: the last heartbeat, held back by the throttle, is recorded within the refresh interval,
        // so the recorded time is the real last heartbeat (not one up to a refresh interval older).
        var lastSent = to;
        var caughtUp = Stopwatch.StartNew();
        await Wait(
            async () => (await fx.DgonNodeAsync(node.NodeId))?.Status?.LastHeartbeatTime >= lastSent - TimeSpan.FromSeconds(0.2),
            "the held last heartbeat written");
        output.WriteLine($"last heartbeat recorded {caughtUp.Elapsed.TotalSeconds:0.0} s after it was sent (refresh {KubernetesModeFixture.RefreshSeconds} s)");
    }

    [Fact]
    public async Task Conflicting_status_writes_are_retried()
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, NewNodeId("conflict"));
        // Let the operator finish with the new node first, so the injected conflicts hit the API's heartbeat write.
        await Wait(async () => await fx.DgonNodeAsync(node.NodeId) is { Status.ObservedGeneration: not null }, "operator reconciled the registration");
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "pending" }, "mirror pending");
        var since = DateTimeOffset.UtcNow;
        fx.Server.InjectFault(r => r.Method == "PATCH" && r.Subresource == "status" && r.Name == node.NodeId, 2, 409);

        using var hb = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        Assert.Equal("active", JsonNode.Parse(await hb.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());

        await Wait(async () => (await fx.DgonNodeAsync(node.NodeId))?.Status?.Phase == "Active", "status written despite two conflicts");
        // At least the two injected ones (a real race with the operator may add one).
        Assert.True(fx.Server.Requests.Count(r => r.Name == node.NodeId && r.StatusCode == 409 && r.Time >= since) >= 2);
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "active" }, "mirror active");
    }

    [Fact]
    public async Task Watch_expiry_relists_without_losing_an_update()
    {
        var node = await TestNode.RegisterAsync(fx.Api.Client, NewNodeId("gone"));
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "pending" }, "mirror pending");
        var since = DateTimeOffset.UtcNow;

        // Every open watch gets 410 Gone and watching from any older resourceVersion fails: informers must relist.
        fx.Server.ExpireWatchHistory();
        using var hb = await node.HeartbeatAsync(ready: true);
        Assert.Equal(HttpStatusCode.OK, hb.StatusCode);

        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "active" }, "the update made across the 410 reached the mirror");
        await Wait(
            () => Task.FromResult(fx.Server.Requests.Count(r => r.Method == "GET" && r.Resource == "dgonnodes" && !r.IsWatch && r.Name is null && r.Time >= since) >= 2),
            "the API's and the operator's informers relisted");
    }

    [Fact]
    public async Task Quarantine_follows_spec_and_clearing_it_lets_the_node_rejoin()
    {
        var node = await ActiveNodeAsync("quar");

        (await fx.Kubectl.RunAsync("patch", "dgonnode", node.NodeId, "--type=merge", "-p", """{"spec":{"quarantine":true}}""")).EnsureSuccess("patch quarantine");
        await Wait(async () => (await fx.DgonNodeAsync(node.NodeId))?.Status?.Phase == "Quarantined", "quarantined");
        var quarantined = (await fx.DgonNodeAsync(node.NodeId))!;
        Assert.Contains(quarantined.Status!.Conditions!, c => c is { Type: "Quarantined", Status: "True", Reason: "QuarantineRequested" });
        Assert.Equal(quarantined.Metadata.Generation, quarantined.Status.ObservedGeneration);

        // Heartbeats are accepted but cannot lift the quarantine.
        Assert.Equal("quarantine", await HeartbeatPhaseAsync(node));

        await Wait(async () => (await fx.EventsAboutAsync(node.NodeId)).Any(e => e.Reason == "QuarantineRequested"), "a QuarantineRequested Event");
        await Wait(async () => await fx.ListedNodeAsync(node.NodeId) is { Status: "quarantine" }, "mirror quarantine");

        (await fx.Kubectl.RunAsync("patch", "dgonnode", node.NodeId, "--type=merge", "-p", """{"spec":{"quarantine":false}}""")).EnsureSuccess("clear quarantine");
        await Wait(async () => (await fx.DgonNodeAsync(node.NodeId))?.Status?.Phase is "Pending" or "Offline", "out of quarantine");
        await WaitUntilHeartbeatAnswers(node, "active", "active again after clearing the quarantine");
    }

    [Fact]
    public async Task Heartbeats_are_answered_from_the_cache_without_reading_the_api_server()
    {
        var node = await ActiveNodeAsync("cache");
        var since = DateTimeOffset.UtcNow;
        for (var i = 0; i < 10; i++)
        {
            using var hb = await node.HeartbeatAsync(ready: true);
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        // No GET of the node or its Secret per heartbeat (only watches and coalesced status writes).
        var reads = fx.Server.Requests.Count(r => r.Method == "GET" && !r.IsWatch && r.Time >= since
            && (r.Name == node.NodeId || r.Name == "dgonnode-" + node.NodeId));
        Assert.Equal(0, reads);
        using var doc = JsonDocument.Parse(await fx.Api.Admin.GetStringAsync("/v1/summary"));
        Assert.True(doc.RootElement.GetProperty("active_nodes").GetInt32() >= 1);
    }
    [Fact]
    public async Task An_operators_node_is_theirs_in_Kubernetes_mode_and_their_actions_write_the_spec()
    {
        // An operator account (issue 12; accounts live in PostgreSQL in both modes).
        var email = $"op-{Guid.NewGuid():N}@example.test";
        using (var create = Json(HttpMethod.Post, "/v1/admin/users", ApiHost.AdminToken, $$"""{"email":"{{email}}","password":"correct horse battery staple","role":"operator"}"""))
        using (var created = await fx.Api.Client.SendAsync(create))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        string session;
        using (var login = Json(HttpMethod.Post, "/v1/auth/sessions", null, $$"""{"email":"{{email}}","password":"correct horse battery staple"}"""))
        using (var answer = await fx.Api.Client.SendAsync(login))
        {
            session = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
        }

        // Their join token (a Secret with data owner-id) enrolls a node annotated dgon.io/owner.
        string token, owner;
        using (var create = Json(HttpMethod.Post, "/v1/admin/join-tokens", session, "{}"))
        using (var created = await fx.Api.Client.SendAsync(create))
        {
            var body = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
            token = body["token"]!.GetValue<string>();
            owner = body["owner_id"]!.GetValue<string>();
        }

        var node = await TestNode.RegisterAsync(fx.Api.Client, NewNodeId("owned"), joinToken: token);
        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        Assert.Equal(owner, (await fx.DgonNodeAsync(node.NodeId))!.Metadata.Annotations!["dgon.io/owner"]);
        await Wait(async () => (await ReadAsync("/v1/nodes?prefix=" + node.NodeId, session)).Contains($"\"owner_id\":\"{owner}\"", StringComparison.Ordinal), "the operator lists their node");
        Assert.Contains("\"total_nodes\":1", await ReadAsync("/v1/summary", session), StringComparison.Ordinal);

        // Quarantine through the API: spec.quarantine, then the operator's phase; release clears it; delete removes it.
        Assert.Equal(HttpStatusCode.NoContent, await ActAsync(HttpMethod.Post, $"/v1/admin/nodes/{node.NodeId}/quarantine", session));
        Assert.True((await fx.DgonNodeAsync(node.NodeId))!.Spec.Quarantine);
        await Wait(async () => (await fx.DgonNodeAsync(node.NodeId))?.Status?.Phase == "Quarantined", "quarantined by the operator");
        Assert.Equal(HttpStatusCode.NoContent, await ActAsync(HttpMethod.Post, $"/v1/admin/nodes/{node.NodeId}/release", session));
        Assert.False((await fx.DgonNodeAsync(node.NodeId))!.Spec.Quarantine);
        await WaitUntilHeartbeatAnswers(node, "active", "active again after the release");
        Assert.Equal(HttpStatusCode.NoContent, await ActAsync(HttpMethod.Delete, $"/v1/admin/nodes/{node.NodeId}", session));
        await Wait(async () => await fx.DgonNodeAsync(node.NodeId) is null, "the DgonNode is deleted");
        Assert.Equal(HttpStatusCode.NotFound, await ActAsync(HttpMethod.Delete, $"/v1/admin/nodes/{node.NodeId}", session));
    }

    [Fact]
    public async Task A_linked_agent_serves_chat_completions_through_the_gateway_in_Kubernetes_mode()
    {
        await using var runtime = await StubRuntime.StartAsync(null, "k8s-model");
        var nodeId = NewNodeId("infer");
        var configDir = Path.Combine(fx.Directory, "agent-infer-" + Guid.NewGuid().ToString("N")[..6]);
        StartAgent(nodeId, runtime.BaseAddress, configDir, await fx.Api.CreateJoinTokenAsync("""{"max_uses":1}"""));
        string key;
        using (var create = Json(HttpMethod.Post, "/v1/admin/api-keys", ApiHost.AdminToken, """{"name":"k8s","scopes":["inference"]}"""))
        using (var created = await fx.Api.Client.SendAsync(create))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            key = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["key"]!.GetValue<string>();
        }

        // The DgonNode turns Active (operator) and the agent links: then the gateway routes to it.
        string? answer = null;
        await Wait(
            async () =>
            {
                using var request = Json(HttpMethod.Post, "/v1/chat/completions", key, """{"model":"k8s-model","messages":[{"role":"user","content":"hello cluster"}]}""");
                using var response = await fx.Api.Client.SendAsync(request);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return false;
                }

                answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["choices"]![0]!["message"]!["content"]!.GetValue<string>();
                return true;
            },
            "a completion through the gateway from the linked node");
        Assert.Equal(StubRuntime.ReplyText("hello cluster", StubModel.Echo.Chunks), answer);
        await Wait(async () => (await ReadAsync($"/v1/receipts?node={nodeId}", ApiHost.AdminToken)).Contains("\"signature_status\":\"valid\"", StringComparison.Ordinal), "a valid receipt of the node");
    }

    private static HttpRequestMessage Json(HttpMethod method, string path, string? bearer, string? body)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }

        return request;
    }

    private async Task<string> ReadAsync(string path, string bearer)
    {
        using var request = Json(HttpMethod.Get, path, bearer, null);
        using var response = await fx.Api.Client.SendAsync(request);
        return await response.Content.ReadAsStringAsync();
    }

    private async Task<HttpStatusCode> ActAsync(HttpMethod method, string path, string bearer)
    {
        using var request = Json(method, path, bearer, null);
        using var response = await fx.Api.Client.SendAsync(request);
        return response.StatusCode;
    }
}
