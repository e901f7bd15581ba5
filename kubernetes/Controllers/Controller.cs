using System.Diagnostics;
using System.Diagnostics.Metrics;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Controllers;

/// <summary>The object a reconcile is about: namespace (null for cluster-scoped) and name. The object may no longer exist (deleted).</summary>
/// <param name="Namespace">Namespace, or null.</param>
/// <param name="Name">Name.</param>
public readonly record struct ReconcileRequest(string? Namespace, string Name)
{
    /// <summary>The <c>namespace/name</c> key (client-go's MetaNamespaceKeyFunc).</summary>
    public string Key => ObjectKey.Of(Namespace, Name);

    /// <inheritdoc />
    public override string ToString() => Key;
}

/// <summary>What a reconcile asks for next: nothing (<see cref="Done"/>) or another reconcile after a delay (<see cref="RequeueAt"/>).</summary>
/// <param name="RequeueAfter">Reconcile again after this delay; null for no requeue.</param>
public readonly record struct ReconcileResult(TimeSpan? RequeueAfter)
{
    /// <summary>Done: no requeue (a later change of the object triggers the next reconcile).</summary>
    public static ReconcileResult Done => new(null);

    /// <summary>Reconcile again after <paramref name="delay"/> (e.g. to notice a heartbeat timeout).</summary>
    public static ReconcileResult RequeueAt(TimeSpan delay) => new(delay);
}

/// <summary>
/// Drives observed state towards desired state for one object (controller-runtime's Reconciler). Must be idempotent and level-based: read the
/// current object (e.g. from the informer cache), act, return. Throwing requeues the request with exponential backoff.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IReconciler<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    /// <summary>Reconciles one object.</summary>
    Task<ReconcileResult> ReconcileAsync(ReconcileRequest request, CancellationToken ct);
}

/// <summary>Options of a <see cref="Controller{T}"/>.</summary>
public sealed class ControllerOptions
{
    /// <summary>Concurrent reconcile workers (default 2); one key is never reconciled by two at once.</summary>
    public int Workers { get; set; } = 2;

    /// <summary>Controller name, used in logs and as the metrics tag <c>controller</c>.</summary>
    public string Name { get; set; } = "controller";

    /// <summary>First retry delay after a failed reconcile (default 5 ms, as client-go), doubled per failure.</summary>
    public TimeSpan BaseRetryDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Cap of the retry delay (default 1000 s, as client-go).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(1000);
}

/// <summary>
/// The controllers' metrics on the <see cref="System.Diagnostics.Metrics.Meter"/> named
/// <c>Dgon.Kubernetes.Controllers</c>: counter <c>dgon_reconcile_total</c> (tags <c>controller</c>, <c>result</c> =
/// success | requeue | error), counter <c>dgon_reconcile_errors_total</c> (tag <c>controller</c>) and histogram
/// <c>dgon_reconcile_duration_seconds</c> (tag <c>controller</c>; unit s; buckets 1 ms – 60 s).
/// Mirrors controller-runtime's <c>controller_runtime_reconcile_total</c> / <c>_errors_total</c> / <c>_time_seconds</c>.
/// </summary>
public static class ControllerMetrics
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Dgon.Kubernetes.Controllers";

    /// <summary>The meter.</summary>
    public static Meter Meter { get; } = new(MeterName, "1.0");

    /// <summary>Reconciles by controller and result.</summary>
    public static Counter<long> ReconcileTotal { get; } = Meter.CreateCounter<long>("dgon_reconcile_total", description: "Reconciles by controller and result (success, requeue, error).");

    /// <summary>Reconcile duration in seconds by controller.</summary>
    public static Histogram<double> ReconcileDuration { get; } = Meter.CreateHistogram(
        "dgon_reconcile_duration_seconds",
        unit: "s",
        description: "Time of one reconcile.",
        tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });

    /// <summary>Reconciles that failed (threw), by controller.</summary>
    public static Counter<long> ReconcileErrors { get; } = Meter.CreateCounter<long>("dgon_reconcile_errors_total", description: "Reconciles that failed, by controller.");
}

/// <summary>
/// A runnable controller (controller-runtime's <c>Controller</c>; KubernetesClient has none).
/// </summary>
public interface IController
{
    /// <summary>Runs until <paramref name="ct"/> is cancelled; completes normally then.</summary>
    Task RunAsync(CancellationToken ct);
}

/// <summary>
/// An <see cref="IController"/> (controller-runtime semantics): registers an informer handler that enqueues the <c>namespace/name</c> key on add, update and delete,
/// waits for the informer's sync, and runs <see cref="ControllerOptions.Workers"/> workers over a
/// <see cref="RateLimitingQueue{TKey}"/>. A reconcile that throws is logged and requeued with exponential backoff
/// (<c>AddRateLimited</c>); one that succeeds resets the backoff (<c>Forget</c>) and, when it asks, is requeued after
/// <see cref="ReconcileResult.RequeueAfter"/>. The informer itself is run by the caller (it may be shared).
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed partial class Controller<T> : IController
    where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly IInformer<T> _informer;
    private readonly IReconciler<T> _reconciler;
    private readonly ControllerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly KeyValuePair<string, object?> _controllerTag;
    private long _reconciles;
    private long _errors;

    /// <summary>Creates a controller.</summary>
    /// <param name="informer">The informer to follow (run by the caller).</param>
    /// <param name="reconciler">The reconciler.</param>
    /// <param name="options">Workers, name, retry delays.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="time">Clock and timers of the queue; default system.</param>
    public Controller(IInformer<T> informer, IReconciler<T> reconciler, ControllerOptions options, ILogger logger, TimeProvider? time = null)
    {
        _informer = informer ?? throw new ArgumentNullException(nameof(informer));
        _reconciler = reconciler ?? throw new ArgumentNullException(nameof(reconciler));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _time = time ?? TimeProvider.System;
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Workers, 1);
        Queue = new RateLimitingQueue<string>(_time, options.BaseRetryDelay, options.MaxRetryDelay);
        _controllerTag = new("controller", options.Name);
    }

    /// <summary>The controller's work queue (exposed for tests and to enqueue extra keys, e.g. from a second informer).</summary>
    public IRateLimitingQueue<string> Queue { get; }

    /// <summary>Reconciles run so far (all results).</summary>
    public long ReconcilesTotal => Interlocked.Read(ref _reconciles);

    /// <summary>Reconciles that threw.</summary>
    public long ErrorsTotal => Interlocked.Read(ref _errors);

    /// <summary>Runs until <paramref name="ct"/> is cancelled, then shuts the queue down, lets running reconciles finish and completes normally.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var registration = _informer.AddHandler(new InformerHandler<T>(
            onAdd: o => Queue.Add(ObjectKey.Of(o)),
            onUpdate: (_, o) => Queue.Add(ObjectKey.Of(o)),
            onDelete: o => Queue.Add(ObjectKey.Of(o))));
        try
        {
            await _informer.WaitForSyncAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Queue.ShutDown();
            return;
        }

        LogStarted(_options.Name, _options.Workers);
        using var stop = ct.Register(Queue.ShutDown);
        var workers = Enumerable.Range(0, _options.Workers).Select(_ => Task.Run(() => WorkerAsync(ct), CancellationToken.None)).ToArray();
        await Task.WhenAll(workers);
        LogStopped(_options.Name);
    }

    private async Task WorkerAsync(CancellationToken ct)
    {
        while (true)
        {
            string? key;
            try
            {
                key = await Queue.GetAsync(CancellationToken.None);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (key is null)
            {
                return; // shut down
            }

            if (ct.IsCancellationRequested)
            {
                Queue.Done(key);
                return; // stopping: leave the rest of the queue
            }

            try
            {
                await ReconcileOneAsync(key, ct);
            }
            finally
            {
                Queue.Done(key);
            }
        }
    }

    private async Task ReconcileOneAsync(string key, CancellationToken ct)
    {
        var (ns, name) = ObjectKey.Split(key);
        var started = Stopwatch.GetTimestamp();
        string result;
        try
        {
            var outcome = await _reconciler.ReconcileAsync(new ReconcileRequest(ns, name), ct);
            Queue.Forget(key);
            if (outcome.RequeueAfter is { } after)
            {
                Queue.AddAfter(key, after);
                result = "requeue";
            }
            else
            {
                result = "success";
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _errors);
            var retries = Queue.NumRequeues(key);
            if (e.IsConflict())
            {
                // Someone wrote the object since the cache saw it: routine under optimistic concurrency, no stack trace.
                LogReconcileConflict(_options.Name, key, retries + 1);
            }
            else
            {
                LogReconcileFailed(_options.Name, key, retries + 1, e);
            }

            Queue.AddRateLimited(key);
            result = "error";
            ControllerMetrics.ReconcileErrors.Add(1, _controllerTag);
        }

        Interlocked.Increment(ref _reconciles);
        ControllerMetrics.ReconcileTotal.Add(1, _controllerTag, new KeyValuePair<string, object?>("result", result));
        ControllerMetrics.ReconcileDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, _controllerTag);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "controller {Controller}: cache synced, starting {Workers} workers")]
    private partial void LogStarted(string controller, int workers);

    [LoggerMessage(Level = LogLevel.Information, Message = "controller {Controller}: stopped")]
    private partial void LogStopped(string controller);

    [LoggerMessage(Level = LogLevel.Warning, Message = "controller {Controller}: reconcile of {Key} failed (attempt {Attempt}); retrying with backoff")]
    private partial void LogReconcileFailed(string controller, string key, int attempt, Exception error);

    [LoggerMessage(Level = LogLevel.Information, Message = "controller {Controller}: reconcile of {Key} met a newer version of the object (409, attempt {Attempt}); retrying on it")]
    private partial void LogReconcileConflict(string controller, string key, int attempt);
}
