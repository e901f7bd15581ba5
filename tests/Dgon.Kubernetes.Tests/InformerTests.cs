using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Dgon.Kubernetes.Controllers;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

public sealed class InformerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private sealed class Recorder : IInformerHandler<DgonNode>
    {
        public ConcurrentQueue<string> Log { get; } = new();

        public void OnAdd(DgonNode obj) => Log.Enqueue($"add {obj.Metadata.Name}");

        public void OnUpdate(DgonNode old, DgonNode @new) =>
            Log.Enqueue(old.Metadata.ResourceVersion == @new.Metadata.ResourceVersion ? $"resync {@new.Metadata.Name}" : $"update {@new.Metadata.Name} {@new.Spec.WalletAddress}");

        public void OnDelete(DgonNode obj) => Log.Enqueue($"delete {obj.Metadata.Name}");

        public bool Has(string entry) => Log.Contains(entry);
    }

    [Fact]
    public async Task Lists_with_pages_then_watches_changes_into_the_cache()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(30);
        for (var i = 0; i < 5; i++)
        {
            await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node($"n{i}"), ct);
        }

        var informer = new Informer<DgonNode>(c.Client, KubeResources.DgonNodes, "default", new InformerOptions { PageSize = 2 }, XunitLogger.For(output, "informer"));
        var rec = new Recorder();
        using var reg = informer.AddHandler(rec);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(ct);
        Assert.True(informer.HasSynced);
        Assert.Equal(5, informer.List().Count);
        Assert.Equal(5, rec.Log.Count(l => l.StartsWith("add ", StringComparison.Ordinal)));
        Assert.Equal(3, c.Server.Requests.Count(r => r.Method == "GET" && r.Resource == "dgonnodes" && !r.IsWatch && r.Name is null));

        await Eventually.Until(() => Task.FromResult(ClientIntegrationTests.WatchOpen(c.Server)), Wait, "informer watching");
        await c.Client.PatchAsync(KubeResources.DgonNodes, "default", "n1", new JsonObject { ["spec"] = new JsonObject { ["walletAddress"] = "w1" } }, ct);
        await c.Client.DeleteAsync(KubeResources.DgonNodes, "default", "n2", null, ct);
        await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("n9"), ct);
        await Eventually.Until(() => Task.FromResult(rec.Has("update n1 w1") && rec.Has("delete n2") && rec.Has("add n9")), Wait, "watch events delivered");
        Assert.True(informer.TryGet("default", "n1", out var n1));
        Assert.Equal("w1", n1!.Spec.WalletAddress);
        Assert.False(informer.TryGet("default", "n2", out _));
        Assert.True(informer.TryGet("default", "n9", out _));
        Assert.Equal(1, informer.ListCount);

        // A late handler gets the cache replayed as adds.
        var late = new Recorder();
        using (informer.AddHandler(late))
        {
            Assert.Equal(5, late.Log.Count);
        }

        // A cleanly closed watch is resumed from the last resourceVersion without a relist.
        var watchesBefore = c.Server.Requests.Count(r => r.IsWatch);
        c.Server.CloseWatches();
        await Eventually.Until(() => Task.FromResult(c.Server.Requests.Count(r => r.IsWatch) > watchesBefore), Wait, "re-watch after close");
        await c.Client.PatchAsync(KubeResources.DgonNodes, "default", "n3", new JsonObject { ["spec"] = new JsonObject { ["walletAddress"] = "w3" } }, ct);
        await Eventually.Until(() => Task.FromResult(rec.Has("update n3 w3")), Wait, "update after re-watch");
        Assert.Equal(1, informer.ListCount);
        Assert.False(string.IsNullOrEmpty(informer.LastSyncResourceVersion));

        await stop.CancelAsync();
        await run.WaitAsync(Wait); // completes normally on cancellation
    }

    [Fact]
    public async Task After_410_it_relists_and_delivers_changes_made_in_the_gap()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(40);
        foreach (var name in new[] { "keep", "change", "remove" })
        {
            await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node(name), ct);
        }

        var gated = new GatedClient(c.Client);
        var informer = new Informer<DgonNode>(gated, KubeResources.DgonNodes, "default", new InformerOptions(), XunitLogger.For(output, "informer"));
        var rec = new Recorder();
        using var reg = informer.AddHandler(rec);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(ct);
        await Eventually.Until(() => Task.FromResult(gated.WatchesStarted == 1 && ClientIntegrationTests.WatchOpen(c.Server)), Wait, "informer watching");

        // Open a gap: the informer's watch ends and its next watch is held back while the world changes.
        gated.HoldWatches();
        c.Server.CloseWatches();
        await Task.Delay(300, ct);
        await c.Client.PatchAsync(KubeResources.DgonNodes, "default", "change", new JsonObject { ["spec"] = new JsonObject { ["walletAddress"] = "gap" } }, ct);
        await c.Client.DeleteAsync(KubeResources.DgonNodes, "default", "remove", null, ct);
        await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("fresh"), ct);
        c.Server.ExpireWatchHistory(); // the informer's resourceVersion is now too old: its watch gets 410
        gated.ReleaseWatches();

        await Eventually.Until(() => Task.FromResult(rec.Has("update change gap") && rec.Has("delete remove") && rec.Has("add fresh")), Wait, "gap changes delivered after relist");
        Assert.Equal(2, informer.ListCount);
        Assert.DoesNotContain("update keep ", rec.Log.Select(l => l + " "));
        Assert.Equal(new[] { "change", "fresh", "keep" }, informer.List().Select(n => n.Metadata.Name!).Order().ToArray());
        Assert.True(informer.TryGet("default", "change", out var changed));
        Assert.Equal("gap", changed!.Spec.WalletAddress);

        // And it watches again after the relist.
        await c.Client.PatchAsync(KubeResources.DgonNodes, "default", "keep", new JsonObject { ["spec"] = new JsonObject { ["walletAddress"] = "later" } }, ct);
        await Eventually.Until(() => Task.FromResult(rec.Has("update keep later")), Wait, "watch resumed after relist");
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }

    [Fact]
    public async Task Label_selector_limits_the_cache_and_resync_redelivers()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(30);
        await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("a", labels: new() { ["team"] = "x" }), ct);
        await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("b", labels: new() { ["team"] = "y" }), ct);
        var informer = new Informer<DgonNode>(c.Client, KubeResources.DgonNodes, null,
            new InformerOptions { LabelSelector = "team=x", ResyncPeriod = TimeSpan.FromMilliseconds(300) }, XunitLogger.For(output, "informer"));
        var rec = new Recorder();
        using var reg = informer.AddHandler(rec);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(ct);
        Assert.Equal("a", Assert.Single(informer.List()).Metadata.Name);
        await Eventually.Until(() => Task.FromResult(rec.Has("resync a")), Wait, "periodic resync");
        Assert.DoesNotContain(rec.Log, l => l.EndsWith(" b", StringComparison.Ordinal));
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }

    [Fact]
    public async Task Failures_back_off_and_recover()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(30);
        await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("a"), ct);
        c.Server.InjectFault(r => r.Resource == "dgonnodes" && r.Method == "GET" && !r.IsWatch, times: 2, statusCode: 500);
        var informer = new Informer<DgonNode>(c.Client, KubeResources.DgonNodes, "default",
            new InformerOptions { InitialBackoff = TimeSpan.FromMilliseconds(100) }, XunitLogger.For(output, "informer"));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(ct);
        Assert.Single(informer.List());
        var lists = c.Server.Requests.Where(r => r.Resource == "dgonnodes" && r.Method == "GET" && !r.IsWatch).ToList();
        Assert.Equal(new[] { 500, 500, 200 }, lists.Select(r => r.StatusCode).ToArray());
        Assert.True(lists[2].Time - lists[1].Time >= TimeSpan.FromMilliseconds(150), "second retry waited the doubled back-off");
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }
}
