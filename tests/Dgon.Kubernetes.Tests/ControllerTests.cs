using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Dgon.Kubernetes.Controllers;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

public sealed class ControllerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private sealed class ScriptedReconciler(Func<ReconcileRequest, int, ReconcileResult> script) : IReconciler<DgonNode>
    {
        public ConcurrentDictionary<string, ConcurrentQueue<DateTime>> Calls { get; } = new();

        public async Task<ReconcileResult> ReconcileAsync(ReconcileRequest request, CancellationToken ct)
        {
            var calls = Calls.GetOrAdd(request.Key, _ => new ConcurrentQueue<DateTime>());
            calls.Enqueue(DateTime.UtcNow);
            await Task.Delay(5, ct);
            return script(request, calls.Count);
        }

        public int Count(string key) => Calls.TryGetValue(key, out var q) ? q.Count : 0;
    }

    [Fact]
    public async Task Failed_reconciles_are_retried_with_growing_backoff_then_forgotten()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(40);
        var informer = new Informer<DgonNode>(ListerWatchers.DgonNodes(c.Client, "default"), new InformerOptions(), TestLog.For(output, "informer"));
        var reconciler = new ScriptedReconciler((req, n) => req.Name == "flaky" && n <= 3 ? throw new InvalidOperationException("boom " + n) : ReconcileResult.Done);
        var controller = new Controller<DgonNode>(informer, reconciler,
            new ControllerOptions { Name = "test-flaky", Workers = 2, BaseRetryDelay = TimeSpan.FromMilliseconds(100) }, TestLog.For(output, "controller"), TimeProvider.System);

        var measurements = new ConcurrentBag<(string Instrument, string? Result, double Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ControllerMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((inst, value, tags, _) => Record(inst, value, tags));
        listener.SetMeasurementEventCallback<double>((inst, value, tags, _) => Record(inst, value, tags));
        listener.Start();
        void Record(Instrument inst, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? controllerTag = null;
            string? result = null;
            foreach (var t in tags)
            {
                if (t.Key == "controller")
                {
                    controllerTag = t.Value as string;
                }
                else if (t.Key == "result")
                {
                    result = t.Value as string;
                }
            }

            if (controllerTag == "test-flaky")
            {
                measurements.Add((inst.Name, result, value));
            }
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var runInformer = informer.RunAsync(stop.Token);
        var runController = controller.RunAsync(stop.Token);
        await c.Client.CreateDgonNodeAsync(Cluster.Node("flaky"), ct);
        await c.Client.CreateDgonNodeAsync(Cluster.Node("fine"), ct);

        await Eventually.Until(() => Task.FromResult(reconciler.Count("default/flaky") >= 4 && reconciler.Count("default/fine") >= 1), Wait, "flaky reconciled 4 times");
        await Task.Delay(500, ct);
        Assert.Equal(4, reconciler.Count("default/flaky")); // success stops the retries
        Assert.Equal(1, reconciler.Count("default/fine"));
        Assert.Equal(3, controller.ErrorsTotal);
        Assert.True(controller.ReconcilesTotal >= 5);
        Assert.Equal(0, controller.Queue.NumRequeues("default/flaky")); // Forget after success

        var times = reconciler.Calls["default/flaky"].ToArray();
        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).ToArray();
        // base 100 ms, doubled per failure: ≥ 100, 200, 400 ms (lower bounds only: CI may be slower, never faster).
        Assert.True(gaps[0] >= TimeSpan.FromMilliseconds(90), $"gap 1 {gaps[0]}");
        Assert.True(gaps[1] >= TimeSpan.FromMilliseconds(190), $"gap 2 {gaps[1]}");
        Assert.True(gaps[2] >= TimeSpan.FromMilliseconds(390), $"gap 3 {gaps[2]}");

        listener.RecordObservableInstruments();
        Assert.Equal(3, measurements.Count(m => m.Instrument == "dgon_reconcile_total" && m.Result == "error"));
        Assert.True(measurements.Count(m => m.Instrument == "dgon_reconcile_total" && m.Result == "success") >= 2);
        Assert.True(measurements.Count(m => m.Instrument == "dgon_reconcile_duration_seconds") >= 5);
        Assert.All(measurements.Where(m => m.Instrument == "dgon_reconcile_duration_seconds"), m => Assert.InRange(m.Value, 0.0, 30.0));

        await stop.CancelAsync();
        await Task.WhenAll(runInformer, runController).WaitAsync(Wait);
    }

    [Fact]
    public async Task RequeueAfter_reconciles_again_and_deletes_and_updates_enqueue()
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(40);
        var informer = new Informer<DgonNode>(ListerWatchers.DgonNodes(c.Client, "default"), new InformerOptions(), TestLog.For(output, "informer"));
        var seenMissing = 0;
        var reconciler = new ScriptedReconciler((req, n) =>
        {
            if (!informer.TryGet(req.Namespace, req.Name, out _))
            {
                Interlocked.Increment(ref seenMissing);
            }

            return req.Name == "periodic" && n < 3 ? ReconcileResult.RequeueAt(TimeSpan.FromMilliseconds(200)) : ReconcileResult.Done;
        });
        var controller = new Controller<DgonNode>(informer, reconciler, new ControllerOptions { Name = "test-requeue" }, TestLog.For(output, "controller"));
        await c.Client.CreateDgonNodeAsync(Cluster.Node("periodic"), ct);
        await c.Client.CreateDgonNodeAsync(Cluster.Node("doomed"), ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var runInformer = informer.RunAsync(stop.Token);
        var runController = controller.RunAsync(stop.Token);

        await Eventually.Until(() => Task.FromResult(reconciler.Count("default/periodic") >= 3), Wait, "periodic requeued twice");
        await Eventually.Until(() => Task.FromResult(reconciler.Count("default/doomed") >= 1), Wait, "doomed reconciled");
        await c.Client.DeleteDgonNodeAsync("default", "doomed", null, null, ct);
        await Eventually.Until(() => Task.FromResult(Volatile.Read(ref seenMissing) >= 1), Wait, "reconcile after delete with the object gone");
        var before = reconciler.Count("default/periodic");
        await c.Client.PatchDgonNodeAsync("default", "periodic", new System.Text.Json.Nodes.JsonObject { ["spec"] = new System.Text.Json.Nodes.JsonObject { ["quarantine"] = true } }, ct);
        await Eventually.Until(() => Task.FromResult(reconciler.Count("default/periodic") > before), Wait, "update enqueues");
        Assert.Equal(0, controller.ErrorsTotal);
        await stop.CancelAsync();
        await Task.WhenAll(runInformer, runController).WaitAsync(Wait);
    }
}
