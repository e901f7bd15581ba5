using Dgon.Kubernetes.Controllers;
using Dgon.KubeTestServer;
using k8s;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary><see cref="EventRecorder"/>: events.k8s.io/v1 Events on the test server, series aggregation and the spam filter.</summary>
public sealed class EventRecorderTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Records_an_Event_and_a_repeat_becomes_a_series_of_two()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        var node = await c.Client.CreateDgonNodeAsync(Cluster.Node("n1"), ct);
        var time = new FakeTimeProvider(Start);
        var recorder = new EventRecorder(c.Client, "dgon.io/operator", "operator-0", TestLog.For(output, "events"), time);
        var longNote = new string('é', 700); // 1400 UTF-8 bytes
        await recorder.RecordAsync(node, "Warning", "AuthFailures", "Quarantine", longNote, ct);
        time.Advance(TimeSpan.FromSeconds(30));
        await recorder.RecordAsync(node, "Warning", "AuthFailures", "Quarantine", longNote, ct);

        var events = await c.Client.EventsV1.ListNamespacedEventAsync("default", cancellationToken: ct);
        var ev = Assert.Single(events.Items);
        Assert.StartsWith("n1.", ev.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal(("Warning", "AuthFailures", "Quarantine"), (ev.Type, ev.Reason, ev.Action));
        Assert.Equal(("dgon.io/operator", "operator-0"), (ev.ReportingController, ev.ReportingInstance));
        Assert.Equal(Start.UtcDateTime, ev.EventTime);
        Assert.Equal((node.Metadata.Uid, "DgonNode", "dgon.io/v1alpha1"), (ev.Regarding.Uid, ev.Regarding.Kind, ev.Regarding.ApiVersion));
        Assert.Equal(512, ev.Note.Length); // truncated to 1024 bytes, never inside a character
        Assert.Equal(2, ev.Series?.Count);
        Assert.Equal(Start.AddSeconds(30).UtcDateTime, ev.Series?.LastObservedTime);

        // A different note is another Event.
        await recorder.RecordAsync(node, "Normal", "Again", "Check", "short", ct);
        Assert.Equal(2, (await c.Client.EventsV1.ListNamespacedEventAsync("default", cancellationToken: ct)).Items.Count);
    }

    [Fact]
    public void The_spam_filter_holds_back_writes_beyond_25_per_object_until_refilled()
    {
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" });
        var time = new FakeTimeProvider(Start);
        var recorder = new EventRecorder(client, "dgon.io/operator", "op", TestLog.For(null, "events"), time);
        var node = Cluster.Node("n1");
        node.Metadata.Uid = "uid-1";
        var other = Cluster.Node("n2");
        other.Metadata.Uid = "uid-2";

        for (var i = 0; i < EventRecorder.SpamBurst; i++)
        {
            Assert.Equal(EventRecorder.WriteKind.Create, recorder.Correlate(node, "Normal", "Reason" + i, "Act", "note").Write);
        }

        Assert.Equal(EventRecorder.WriteKind.None, recorder.Correlate(node, "Normal", "Reason99", "Act", "note").Write);
        Assert.Equal(EventRecorder.WriteKind.Create, recorder.Correlate(other, "Normal", "Reason99", "Act", "note").Write); // per object

        time.Advance(EventRecorder.SpamRefill - TimeSpan.FromSeconds(1));
        Assert.Equal(EventRecorder.WriteKind.None, recorder.Correlate(node, "Normal", "Reason98", "Act", "note").Write);
        time.Advance(TimeSpan.FromSeconds(10));
        var refilled = recorder.Correlate(node, "Normal", "Reason99", "Act", "note");
        Assert.Equal(EventRecorder.WriteKind.Create, refilled.Write); // the held-back series is written with its full count
        Assert.Equal(2, refilled.Count);
        Assert.Equal(EventRecorder.WriteKind.None, recorder.Correlate(node, "Normal", "Reason97", "Act", "note").Write);
    }

    [Fact]
    public async Task Occurrences_held_back_by_the_spam_filter_arrive_as_the_series_count_of_the_first_write()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout();
        var node = await c.Client.CreateDgonNodeAsync(Cluster.Node("flappy"), ct);
        var time = new FakeTimeProvider(Start);
        var recorder = new EventRecorder(c.Client, "dgon.io/operator", "op", TestLog.For(output, "events"), time);
        for (var i = 0; i < EventRecorder.SpamBurst; i++)
        {
            await recorder.RecordAsync(node, "Normal", "Burst" + i, "Act", "note", ct);
        }

        await recorder.RecordAsync(node, "Warning", "HeartbeatTimeout", "PhaseTransition", "offline", ct); // held back
        time.Advance(TimeSpan.FromSeconds(1));
        await recorder.RecordAsync(node, "Warning", "HeartbeatTimeout", "PhaseTransition", "offline", ct); // held back
        time.Advance(EventRecorder.SpamRefill);
        await recorder.RecordAsync(node, "Warning", "HeartbeatTimeout", "PhaseTransition", "offline", ct); // written

        var events = (await c.Client.EventsV1.ListNamespacedEventAsync("default", cancellationToken: ct)).Items;
        Assert.Equal(EventRecorder.SpamBurst + 1, events.Count);
        var timeout = Assert.Single(events, e => e.Reason == "HeartbeatTimeout");
        Assert.Equal(3, timeout.Series?.Count);
    }

    [Fact]
    public void A_series_ends_after_its_window()
    {
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" });
        var time = new FakeTimeProvider(Start);
        var recorder = new EventRecorder(client, "dgon.io/operator", "op", TestLog.For(null, "events"), time);
        var node = Cluster.Node("n1");
        var first = recorder.Correlate(node, "Normal", "R", "A", "note");
        Assert.Equal((EventRecorder.WriteKind.Create, 1), (first.Write, first.Count));
        time.Advance(EventRecorder.SeriesWindow);
        Assert.Equal(2, recorder.Correlate(node, "Normal", "R", "A", "note").Count); // not yet named: created again, counting on
        time.Advance(EventRecorder.SeriesWindow + TimeSpan.FromSeconds(1));
        Assert.Equal(1, recorder.Correlate(node, "Normal", "R", "A", "note").Count);
    }

    [Fact]
    public async Task Failures_are_logged_not_thrown()
    {
        await using var c = await Cluster.StartAsync(new KubeApiTestServerOptions { BearerToken = "needed" });
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = c.Server.BaseAddress.ToString() }); // no token: 401
        var log = TestLog.For(output, "events");
        var recorder = new EventRecorder(client, "dgon.io/operator", "op", log);
        await recorder.RecordAsync(Cluster.Node("n1"), "Normal", "Test", "Test", "note", Cluster.Timeout());
        Assert.Contains(c.Server.Requests, r => r.Resource == "events" && r.StatusCode == 401);
        Assert.Equal(LogLevel.Warning, log.LatestRecord.Level);

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
