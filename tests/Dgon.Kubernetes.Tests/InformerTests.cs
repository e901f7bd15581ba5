using System.Collections.Concurrent;
using Dgon.Kubernetes.Controllers;
using Dgon.Testing;
using k8s;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary>The informer against an in-memory <see cref="FakeListerWatcher"/>, and once against the test server with the official client.</summary>
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

    private static Task Until(Func<bool> condition, string what) => Eventually.Until(() => Task.FromResult(condition()), Wait, what);

    private (Informer<DgonNode> Informer, Recorder Recorder, Task Run, CancellationTokenSource Stop) Start(IListerWatcher<DgonNode> source, InformerOptions? options = null, TimeProvider? time = null)
    {
        var informer = new Informer<DgonNode>(source, options ?? new InformerOptions(), TestLog.For(output, "informer"), time);
        var recorder = new Recorder();
        informer.AddHandler(recorder);
        var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return (informer, recorder, informer.RunAsync(stop.Token), stop);
    }

    [Fact]
    public async Task Lists_in_pages_then_applies_watch_events_and_bookmarks()
    {
        var fake = new FakeListerWatcher();
        for (var i = 0; i < 5; i++)
        {
            fake.Put($"n{i}");
        }

        var (informer, rec, run, stop) = Start(fake, new InformerOptions { PageSize = 2 });
        await informer.WaitForSyncAsync(Cluster.Timeout());
        Assert.Equal(5, informer.List().Count);
        Assert.Equal(5, rec.Log.Count(l => l.StartsWith("add ", StringComparison.Ordinal)));
        Assert.Equal([null, "2", "4"], fake.Lists.Select(l => l.Continue));
        Assert.All(fake.Lists, l => Assert.Equal(2, l.Limit));
        await Until(() => fake.Watches.Count == 1, "watching");
        Assert.Equal("105", fake.Watches[0].ResourceVersion); // from the list's resourceVersion

        fake.Send(WatchEventType.Modified, fake.Put("n1", "w1"));
        fake.Send(WatchEventType.Deleted, fake.Remove("n2"));
        fake.Send(WatchEventType.Added, fake.Put("n9"));
        await Until(() => rec.Has("update n1 w1") && rec.Has("delete n2") && rec.Has("add n9"), "watch events delivered");
        Assert.True(informer.TryGet("default", "n1", out var n1));
        Assert.Equal("w1", n1!.Spec.WalletAddress);
        Assert.False(informer.TryGet("default", "n2", out _));

        // A BOOKMARK moves the resourceVersion and reaches no handler; a clean close re-watches from there without a relist.
        var logged = rec.Log.Count;
        fake.Bookmark();
        await Until(() => informer.LastSyncResourceVersion == fake.ResourceVersion && fake.ResourceVersion == "109", "bookmark applied");
        Assert.Equal(logged, rec.Log.Count);
        Assert.Equal(5, informer.List().Count);
        fake.Close();
        await Until(() => fake.Watches.Count == 2, "re-watch after a clean close");
        Assert.Equal("109", fake.Watches[1].ResourceVersion);
        Assert.Equal(1, informer.ListCount);

        // A late handler gets the cache replayed as adds.
        var late = new Recorder();
        using (informer.AddHandler(late))
        {
            Assert.Equal(5, late.Log.Count);
        }

        await stop.CancelAsync();
        await run.WaitAsync(Wait); // completes normally on cancellation
    }

    [Fact]
    public async Task A_410_from_the_watch_relists_and_delivers_the_changes_of_the_gap()
    {
        var fake = new FakeListerWatcher();
        foreach (var name in new[] { "keep", "change", "remove" })
        {
            fake.Put(name);
        }

        var (informer, rec, run, stop) = Start(fake);
        await informer.WaitForSyncAsync(Cluster.Timeout());
        await Until(() => fake.Watches.Count == 1, "watching");

        // Changes the informer never sees as events, then the history is gone.
        fake.Put("change", "gap");
        fake.Remove("remove");
        fake.Put("fresh");
        fake.Fail(new KubernetesException(new V1Status { Code = 410, Reason = "Expired", Message = "too old resource version" }));

        await Until(() => rec.Has("update change gap") && rec.Has("delete remove") && rec.Has("add fresh"), "gap changes delivered after relist");
        Assert.Equal(2, informer.ListCount);
        Assert.DoesNotContain(rec.Log, l => l.StartsWith("update keep", StringComparison.Ordinal)); // unchanged: no update
        Assert.Equal(["change", "fresh", "keep"], informer.List().Select(n => n.Metadata.Name!).Order());
        await Until(() => fake.Watches.Count == 2, "watching again after the relist");
        Assert.Equal(fake.ResourceVersion, fake.Watches[1].ResourceVersion);

        fake.Send(WatchEventType.Modified, fake.Put("keep", "later"));
        await Until(() => rec.Has("update keep later"), "watch resumed after relist");
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }

    [Fact]
    public async Task An_expired_continue_token_restarts_the_list_unpaged()
    {
        var fake = new FakeListerWatcher();
        for (var i = 0; i < 3; i++)
        {
            fake.Put($"n{i}");
        }

        // Page 1 succeeds, page 2's continue token has expired.
        var source = new ExpiringContinue(fake);
        var (informer, _, run, stop) = Start(source, new InformerOptions { PageSize = 2 });
        await informer.WaitForSyncAsync(Cluster.Timeout());
        Assert.Equal(3, informer.List().Count);
        Assert.Equal([(2, null), (2, "2"), (null, null)], fake.Lists.Select(l => (l.Limit, l.Continue)));
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }

    [Fact]
    public async Task List_failures_back_off_exponentially_on_the_clock()
    {
        var fake = new FakeListerWatcher();
        fake.Put("a");
        fake.FailNextList(new HttpRequestException("connection refused"));
        fake.FailNextList(new HttpRequestException("connection refused"));
        var time = new CountingTimeProvider();
        var (informer, _, run, stop) = Start(fake, new InformerOptions { InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(30) }, time);

        await Until(() => fake.Lists.Count == 1 && time.TimersCreated == 1, "first list failed, back-off started");
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Single(fake.Lists);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await Until(() => fake.Lists.Count == 2 && time.TimersCreated == 2, "second list failed, doubled back-off started");
        time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Equal(2, fake.Lists.Count);
        Assert.False(informer.HasSynced);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await informer.WaitForSyncAsync(Cluster.Timeout());
        Assert.Equal(3, fake.Lists.Count);
        Assert.Single(informer.List());
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }

    [Fact]
    public async Task Real_server_the_official_client_sees_create_patch_delete_and_relists_after_expired_history()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(40);
        foreach (var name in new[] { "keep", "change", "remove" })
        {
            await c.Client.CreateDgonNodeAsync(Cluster.Node(name), ct);
        }

        var (informer, rec, run, stop) = Start(ListerWatchers.DgonNodes(c.Client, "default"));
        await informer.WaitForSyncAsync(ct);
        Assert.Equal(3, informer.List().Count);
        await Until(() => c.Server.Requests.Any(r => r.IsWatch && r.Resource == "dgonnodes" && r.StatusCode == 200), "informer watching");

        await c.Client.PatchDgonNodeAsync("default", "change", Cluster.Wallet("w1"), ct);
        await c.Client.DeleteDgonNodeAsync("default", "remove", null, null, ct);
        await c.Client.CreateDgonNodeAsync(Cluster.Node("fresh"), ct);
        await Until(() => rec.Has("update change w1") && rec.Has("delete remove") && rec.Has("add fresh"), "watch events delivered");
        Assert.Equal(1, informer.ListCount);

        c.Server.ExpireWatchHistory(); // the open watch gets a 410 ERROR event and is closed
        await Until(() => informer.ListCount == 2, "relist after 410");
        await c.Client.PatchDgonNodeAsync("default", "keep", Cluster.Wallet("later"), ct);
        await Until(() => rec.Has("update keep later"), "watching again after the relist");
        Assert.Equal(["change", "fresh", "keep"], informer.List().Select(n => n.Metadata.Name!).Order());
        await stop.CancelAsync();
        await run.WaitAsync(Wait);
    }

    /// <summary>Answers a LIST with a continue token with 410 Expired once.</summary>
    private sealed class ExpiringContinue(FakeListerWatcher inner) : IListerWatcher<DgonNode>
    {
        private int _expired;

        public string Resource => inner.Resource;

        public async Task<ListPage<DgonNode>> ListAsync(ListRequest request, CancellationToken ct)
        {
            var page = await inner.ListAsync(request, ct);
            return request.Continue is not null && Interlocked.Exchange(ref _expired, 1) == 0
                ? throw new KubernetesException(new V1Status { Code = 410, Reason = "Expired" })
                : page;
        }

        public IAsyncEnumerable<(WatchEventType Type, DgonNode Object)> WatchAsync(WatchRequest request, CancellationToken ct) => inner.WatchAsync(request, ct);
    }
}
