using System.Net;
using System.Text.Json.Nodes;
using Dgon.KubeTestServer;

namespace Dgon.Kubernetes.Tests;

public sealed class ClientIntegrationTests
{
    [Fact]
    public async Task DgonNode_CRUD_round_trip_with_status_subresource_and_generation()
    {
        await using var c = await Cluster.StartAsync();
        var k = c.Client;
        var ct = Cluster.Timeout();
        var created = await k.CreateAsync(KubeResources.DgonNodes, Cluster.Node("n1"), ct);
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.False(string.IsNullOrEmpty(created.Metadata.ResourceVersion));
        Assert.Equal(1, created.Metadata.Generation);
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.False(created.Spec.Quarantine);

        var got = await k.GetAsync(KubeResources.DgonNodes, "default", "n1", ct);
        Assert.Equal(created.Metadata.Uid, got.Metadata.Uid);
        Assert.Equal("ollama", got.Spec.Runtime);

        got.Spec.Quarantine = true;
        got.Status = new DgonNodeStatus { Phase = "active" }; // ignored by a main-resource PUT (status subresource)
        var replaced = await k.ReplaceAsync(KubeResources.DgonNodes, got, ct);
        Assert.True(replaced.Spec.Quarantine);
        Assert.Equal(2, replaced.Metadata.Generation);
        Assert.Null(replaced.Status?.Phase);

        var heartbeat = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
        var patched = await k.PatchStatusAsync(KubeResources.DgonNodes, "default", "n1", new JsonObject
        {
            ["status"] = new JsonObject { ["phase"] = "active", ["ready"] = true, ["lastHeartbeatTime"] = "2026-11-21T10:00:00Z", ["reputation"] = 60 },
        }, ct);
        Assert.Equal("active", patched.Status!.Phase);
        Assert.Equal(heartbeat, patched.Status.LastHeartbeatTime);
        Assert.Equal(2, patched.Metadata.Generation); // status changes do not bump generation

        patched.Status.ObservedGeneration = 2;
        patched.Status.Conditions = [new Condition { Type = "Ready", Status = "True", Reason = "Heartbeating", Message = "ok", LastTransitionTime = heartbeat, ObservedGeneration = 2 }];
        var withStatus = await k.ReplaceStatusAsync(KubeResources.DgonNodes, patched, ct);
        Assert.Equal(2, withStatus.Status!.ObservedGeneration);
        Assert.Equal("Heartbeating", Assert.Single(withStatus.Status.Conditions!).Reason);

        var specPatched = await k.PatchAsync(KubeResources.DgonNodes, "default", "n1", new JsonObject
        {
            ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["tier"] = "gold" } },
            ["spec"] = new JsonObject { ["asnHint"] = "AS64500" },
        }, ct);
        Assert.Equal("gold", specPatched.Metadata.Labels!["tier"]);
        Assert.Equal("AS64500", specPatched.Spec.AsnHint);
        Assert.True(specPatched.Spec.Quarantine); // merge patch kept the rest
        Assert.Equal("active", specPatched.Status!.Phase);

        var list = await k.ListAsync(KubeResources.DgonNodes, "default", null, ct);
        Assert.Equal("n1", Assert.Single(list.Items).Metadata.Name);
        Assert.False(string.IsNullOrEmpty(list.Metadata.ResourceVersion));

        await k.DeleteAsync(KubeResources.DgonNodes, "default", "n1", new DeleteOptions { PropagationPolicy = "Background" }, ct);
        Assert.Null(await k.TryGetAsync(KubeResources.DgonNodes, "default", "n1", ct));
        var nf = await Assert.ThrowsAsync<KubeNotFoundException>(() => k.GetAsync(KubeResources.DgonNodes, "default", "n1", ct));
        Assert.Equal(HttpStatusCode.NotFound, nf.StatusCode);
        Assert.Equal("NotFound", nf.Reason);
        await Assert.ThrowsAsync<KubeNotFoundException>(() => k.DeleteAsync(KubeResources.DgonNodes, "default", "n1", null, ct));
    }

    [Fact]
    public async Task Stale_replace_is_a_conflict_and_RetryOnConflict_rides_over_injected_409s()
    {
        await using var c = await Cluster.StartAsync();
        var k = c.Client;
        var ct = Cluster.Timeout();
        var created = await k.CreateAsync(KubeResources.DgonNodes, Cluster.Node("n1"), ct);
        var first = await k.GetAsync(KubeResources.DgonNodes, "default", "n1", ct);
        var second = await k.GetAsync(KubeResources.DgonNodes, "default", "n1", ct);
        first.Spec.WalletAddress = "w1";
        await k.ReplaceAsync(KubeResources.DgonNodes, first, ct);
        second.Spec.WalletAddress = "w2";
        var conflict = await Assert.ThrowsAsync<KubeConflictException>(() => k.ReplaceAsync(KubeResources.DgonNodes, second, ct));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal("Conflict", conflict.Reason);

        var dup = await Assert.ThrowsAsync<KubeAlreadyExistsException>(() => k.CreateAsync(KubeResources.DgonNodes, Cluster.Node("n1"), ct));
        Assert.Equal("AlreadyExists", dup.Reason);

        c.Server.InjectFault(r => r.Method == "PUT" && r.Name == "n1", times: 2, statusCode: 409);
        var attempts = 0;
        var result = await KubeRetry.OnConflictAsync(async t =>
        {
            attempts++;
            var fresh = await k.GetAsync(KubeResources.DgonNodes, "default", "n1", t);
            fresh.Spec.WalletAddress = "w3";
            return await k.ReplaceAsync(KubeResources.DgonNodes, fresh, t);
        }, ct);
        Assert.Equal(3, attempts);
        Assert.Equal("w3", result.Spec.WalletAddress);
        Assert.Equal(new[] { 409, 409, 200 }, c.Server.Requests.Where(r => r.Method == "PUT").Skip(2).Select(r => r.StatusCode).ToArray());
        Assert.NotEqual(created.Metadata.ResourceVersion, result.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Invalid_object_is_422_with_causes()
    {
        await using var c = await Cluster.StartAsync();
        var bad = Cluster.Node("bad");
        bad.Spec.Runtime = "docker";
        bad.Spec.Region = "-nope-";
        var e = await Assert.ThrowsAsync<KubeInvalidException>(() => c.Client.CreateAsync(KubeResources.DgonNodes, bad, Cluster.Timeout()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.StatusCode);
        Assert.Equal("Invalid", e.Reason);
        Assert.Contains(e.Causes, cause => cause.Field == "spec.runtime");
        Assert.Contains(e.Causes, cause => cause.Field == "spec.region");
    }

    [Fact]
    public async Task List_paginates_with_continue_and_filters_by_label()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        for (var i = 0; i < 7; i++)
        {
            await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node($"n{i}", labels: new() { ["parity"] = i % 2 == 0 ? "even" : "odd" }), ct);
        }

        var names = new List<string>();
        string? cont = null;
        var pages = 0;
        do
        {
            var page = await c.Client.ListAsync(KubeResources.DgonNodes, "default", new ListOptions { Limit = 3, Continue = cont }, ct);
            Assert.InRange(page.Items.Count, 1, 3);
            names.AddRange(page.Items.Select(n => n.Metadata.Name!));
            cont = page.Metadata.Continue;
            pages++;
        }
        while (!string.IsNullOrEmpty(cont));

        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"n{i}").Order(), names.Order());

        var odd = await c.Client.ListAsync(KubeResources.DgonNodes, "default", new ListOptions { LabelSelector = "parity=odd" }, ct);
        Assert.Equal(new[] { "n1", "n3", "n5" }, odd.Items.Select(n => n.Metadata.Name!).Order().ToArray());
        var notOdd = await c.Client.ListAsync(KubeResources.DgonNodes, null, new ListOptions { LabelSelector = "parity!=odd" }, ct);
        Assert.Equal(4, notOdd.Items.Count);
    }

    [Fact]
    public async Task Watch_delivers_added_modified_deleted_and_bookmarks()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        var list = await c.Client.ListAsync(KubeResources.DgonNodes, "default", null, ct);
        var events = new List<WatchEvent<DgonNode>>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watching = Task.Run(async () =>
        {
            await foreach (var e in c.Client.WatchAsync(KubeResources.DgonNodes, "default", new WatchOptions { ResourceVersion = list.Metadata.ResourceVersion }, stop.Token))
            {
                lock (events)
                {
                    events.Add(e);
                }
            }
        }, CancellationToken.None);

        await Dgon.Testing.Eventually.Until(() => Task.FromResult(c.Server.Requests.Any(r => r.IsWatch) || Locked(events, e => e.Count > 0)), TimeSpan.FromSeconds(10), "watch started");
        var node = await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("w1"), ct);
        node.Spec.Quarantine = true;
        await c.Client.ReplaceAsync(KubeResources.DgonNodes, node, ct);
        await c.Client.DeleteAsync(KubeResources.DgonNodes, "default", "w1", null, ct);

        await Dgon.Testing.Eventually.Until(() => Task.FromResult(Locked(events, e =>
            e.Any(x => x.Type == "DELETED") && e.Any(x => x.Type == "BOOKMARK" && e.IndexOf(x) > e.FindIndex(y => y.Type == "DELETED")))),
            TimeSpan.FromSeconds(15), "DELETED then a BOOKMARK");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching);

        var types = Locked(events, e => e.Where(x => x.Type != "BOOKMARK").Select(x => x.Type).ToArray());
        Assert.Equal(new[] { "ADDED", "MODIFIED", "DELETED" }, types);
        var modified = Locked(events, e => e.Single(x => x.Type == "MODIFIED"));
        Assert.True(modified.Object!.Spec.Quarantine);
        var bookmark = Locked(events, e => e.Last(x => x.Type == "BOOKMARK"));
        Assert.False(string.IsNullOrEmpty(bookmark.Object!.Metadata.ResourceVersion));
    }

    [Fact]
    public async Task Watch_ends_normally_when_the_server_closes_it_and_410_after_expiry()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        var created = await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("x"), ct);
        var count = 0;
        var bookmarks = 0;
        var watching = Task.Run(async () =>
        {
            await foreach (var e in c.Client.WatchAsync(KubeResources.DgonNodes, "default", new WatchOptions { ResourceVersion = created.Metadata.ResourceVersion }, ct))
            {
                Interlocked.Increment(ref e.Type == "BOOKMARK" ? ref bookmarks : ref count);
            }
        }, CancellationToken.None);
        await Dgon.Testing.Eventually.Until(() => Task.FromResult(Volatile.Read(ref bookmarks) > 0), TimeSpan.FromSeconds(10), "watch open (first bookmark)");
        c.Server.CloseWatches();
        await watching.WaitAsync(TimeSpan.FromSeconds(10)); // completes without an exception
        Assert.Equal(0, count);

        await c.Client.PatchAsync(KubeResources.DgonNodes, "default", "x", new JsonObject { ["spec"] = new JsonObject { ["walletAddress"] = "w" } }, ct);
        c.Server.ExpireWatchHistory();
        var gone = await Assert.ThrowsAsync<KubeGoneException>(async () =>
        {
            await foreach (var e in c.Client.WatchAsync(KubeResources.DgonNodes, "default", new WatchOptions { ResourceVersion = created.Metadata.ResourceVersion }, ct))
            {
                Assert.Fail("no event expected before the 410, got " + e.Type);
            }
        });
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public async Task Bearer_token_is_sent_and_required()
    {
        await using var c = await Cluster.StartAsync(new KubeApiTestServerOptions { BearerToken = "s3cret" });
        var ct = Cluster.Timeout();
        var e = await Assert.ThrowsAsync<KubeApiException>(() => c.Client.ListAsync(KubeResources.DgonNodes, "default", null, ct));
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);

        using var wrong = Cluster.NewClient(c.Server, "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<KubeApiException>(() => wrong.ListAsync(KubeResources.DgonNodes, "default", null, ct))).StatusCode);

        using var dir = new TempDir();
        var path = c.Server.WriteKubeconfig(Path.Combine(dir.Path, "kubeconfig"), token: "s3cret");
        using var right = new KubeClient(KubeClientConfig.FromKubeconfig(path));
        var list = await right.ListAsync(KubeResources.DgonNodes, "default", null, ct);
        Assert.Empty(list.Items);
    }

    [Fact]
    public async Task Secret_data_round_trips_as_bytes()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        await c.Client.CreateAsync(KubeResources.Secrets, new Secret
        {
            Metadata = new ObjectMeta { Name = "node-key", Namespace = "default" },
            Type = "Opaque",
            Data = new() { ["hmac"] = [1, 2, 3, 250] },
            StringData = new() { ["note"] = "hi" },
        }, ct);
        var secret = await c.Client.GetAsync(KubeResources.Secrets, null, "node-key", ct); // null ns → the config's namespace
        Assert.Equal(new byte[] { 1, 2, 3, 250 }, secret.Data!["hmac"]);
        Assert.Equal("hi"u8.ToArray(), secret.Data["note"]);
    }

    /// <summary>True once the server has started a watch stream (the test server records watches when their stream starts).</summary>
    internal static bool WatchOpen(KubeApiTestServer server) => server.Requests.Any(r => r.IsWatch);

    private static TResult Locked<TItem, TResult>(List<TItem> list, Func<List<TItem>, TResult> read)
    {
        lock (list)
        {
            return read(list);
        }
    }
}
