using Dgon.Kubernetes.Controllers;
using Dgon.KubeTestServer;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

public sealed class EventRecorderTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Records_an_events_v1_Event_visible_via_list()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        var node = await c.Client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("n1"), ct);
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero).AddTicks(1_234_560));
        var recorder = new EventRecorder(c.Client, "dgon.io/operator", "operator-0", XunitLogger.For(output, "events"), time);
        var longNote = new string('é', 700); // 1400 UTF-8 bytes
        await recorder.RecordAsync(node, "Warning", "AuthFailures", "Quarantine", longNote, ct);

        var events = await c.Client.ListAsync(KubeResources.Events, "default", null, ct);
        var ev = Assert.Single(events.Items);
        Assert.StartsWith("n1.", ev.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal("Warning", ev.Type);
        Assert.Equal("AuthFailures", ev.Reason);
        Assert.Equal("Quarantine", ev.Action);
        Assert.Equal("dgon.io/operator", ev.ReportingController);
        Assert.Equal("operator-0", ev.ReportingInstance);
        Assert.Equal(time.GetUtcNow(), ev.EventTime);
        Assert.Equal(node.Metadata.Uid, ev.Regarding!.Uid);
        Assert.Equal("DgonNode", ev.Regarding.Kind);
        Assert.Equal("dgon.io/v1alpha1", ev.Regarding.ApiVersion);
        Assert.Equal(node.Metadata.ResourceVersion, ev.Regarding.ResourceVersion);
        Assert.Equal(512, ev.Note!.Length);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(ev.Note) <= 1024);

        await recorder.RecordAsync(node, "Normal", "Again", "Check", "short", ct);
        var two = await c.Client.ListAsync(KubeResources.Events, "default", null, ct);
        Assert.Equal(2, two.Items.Select(e => e.Metadata.Name).Distinct().Count());
    }

    [Fact]
    public async Task Failures_are_logged_not_thrown()
    {
        await using var c = await Cluster.StartAsync(new KubeApiTestServerOptions { BearerToken = "needed" });
        var recorder = new EventRecorder(c.Client, "dgon.io/operator", "op", XunitLogger.For(output, "events"));
        await recorder.RecordAsync(Cluster.Node("n1"), "Normal", "Test", "Test", "note", Cluster.Timeout()); // 401: must not throw
        Assert.Contains(c.Server.Requests, r => r.Resource == "events" && r.StatusCode == 401);

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await recorder.RecordAsync(Cluster.Node("n1"), "Normal", "Test", "Test", "note", cancelled.Token);
    }

    [Fact]
    public void Truncate_never_splits_a_character()
    {
        Assert.Equal("abc", EventRecorder.Truncate("abc", 1024));
        Assert.Equal("a", EventRecorder.Truncate("aé", 2)); // é is 2 bytes: does not fit after 'a'
        Assert.Equal("😀", EventRecorder.Truncate("😀😀", 5)); // 4-byte rune, surrogate pair kept whole
    }
}
