using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Controllers;

/// <summary>Receives an informer's notifications, in order, on the informer's loop (keep them quick: enqueue work, don't do it).</summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IInformerHandler<in T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    /// <summary>An object appeared (initial list, watch ADDED, or found by a relist).</summary>
    void OnAdd(T obj);

    /// <summary>An object changed (watch MODIFIED, a relist found a new resourceVersion, or a periodic resync with old == new).</summary>
    void OnUpdate(T old, T @new);

    /// <summary>An object went away (watch DELETED, or missing from a relist: then <paramref name="obj"/> is the last state the cache knew).</summary>
    void OnDelete(T obj);
}

/// <summary>
/// A list-watch cache of one resource (client-go's SharedIndexInformer; KubernetesClient has no informer, so this one
/// is ours, on the library's list and watch through <see cref="IListerWatcher{T}"/>).
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IInformer<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    /// <summary>Runs list-then-watch until <paramref name="ct"/> is cancelled; completes normally then.</summary>
    Task RunAsync(CancellationToken ct);

    /// <summary>True once the initial list is in the cache and delivered to handlers.</summary>
    bool HasSynced { get; }

    /// <summary>Completes when <see cref="HasSynced"/> becomes true.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled first.</exception>
    Task WaitForSyncAsync(CancellationToken ct);

    /// <summary>Looks an object up in the cache (null namespace for cluster-scoped objects).</summary>
    bool TryGet(string? ns, string name, out T? obj);

    /// <summary>A snapshot of the cached objects.</summary>
    IReadOnlyList<T> List();

    /// <summary>The resourceVersion of the last list, watch event or bookmark processed.</summary>
    string? LastSyncResourceVersion { get; }

    /// <summary>
    /// Registers a handler. Objects already in the cache are replayed to it as <see cref="IInformerHandler{T}.OnAdd"/>
    /// first (as client-go does for late handlers). Dispose the result to unregister.
    /// </summary>
    IDisposable AddHandler(IInformerHandler<T> handler);
}

/// <summary>Options of an <see cref="Informer{T}"/>.</summary>
public sealed class InformerOptions
{
    /// <summary>Server-side label selector for LIST and WATCH.</summary>
    public string? LabelSelector { get; set; }

    /// <summary>Server-side field selector for LIST and WATCH.</summary>
    public string? FieldSelector { get; set; }

    /// <summary>When set, every cached object is re-delivered as OnUpdate(obj, obj) this often (client-go resync).</summary>
    public TimeSpan? ResyncPeriod { get; set; }

    /// <summary>LIST page size (default 500, as client-go's pager).</summary>
    public int PageSize { get; set; } = 500;

    /// <summary>First back-off after a failed list/watch (default 800 ms, as client-go), doubled up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(800);

    /// <summary>Cap of the failure back-off (default 30 s).</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Server-side watch timeout range: each watch asks for a random timeout in [min, 2·min) so streams are renewed
    /// regularly (client-go uses 5-10 min). Default 5 min.
    /// </summary>
    public TimeSpan MinWatchTimeout { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// <see cref="IInformer{T}"/> following client-go's reflector: LIST (paged; an expired continue token restarts the
/// list unpaged) into the cache, then WATCH from the list's resourceVersion with bookmarks; a cleanly closed stream is
/// re-watched from the last seen resourceVersion; a 410 Gone (history expired) triggers a relist whose result is
/// diffed against the cache so that every add, update and delete that happened in the gap is delivered (no lost
/// update); other failures back off exponentially and retry (watch from the last resourceVersion; if that fails again
/// with 410, relist). Handlers run in order on the informer's loop.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed partial class Informer<T> : IInformer<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly IListerWatcher<T> _source;
    private readonly InformerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, T> _cache = new(StringComparer.Ordinal);
    private readonly List<IInformerHandler<T>> _handlers = [];
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _lastRv;

    /// <summary>Creates an informer (call <see cref="RunAsync"/> to start it).</summary>
    /// <param name="source">The LIST and WATCH calls of the resource (<see cref="ListerWatchers"/>; a fake in unit tests).</param>
    /// <param name="options">Selectors, resync, paging and back-off.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="time">Clock for back-off and resync; default system.</param>
    public Informer(IListerWatcher<T> source, InformerOptions options, ILogger logger, TimeProvider? time = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _time = time ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public bool HasSynced => _synced.Task.IsCompleted;

    /// <inheritdoc />
    public string? LastSyncResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _lastRv;
            }
        }
    }

    /// <summary>Number of times the informer listed (1 after the initial sync; more after relists).</summary>
    public int ListCount { get; private set; }

    /// <inheritdoc />
    public Task WaitForSyncAsync(CancellationToken ct) => _synced.Task.WaitAsync(ct);

    /// <inheritdoc />
    public bool TryGet(string? ns, string name, out T? obj)
    {
        lock (_gate)
        {
            return _cache.TryGetValue(ObjectKey.Of(ns, name), out obj);
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<T> List()
    {
        lock (_gate)
        {
            return [.. _cache.Values];
        }
    }

    /// <inheritdoc />
    public IDisposable AddHandler(IInformerHandler<T> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_gate)
        {
            _handlers.Add(handler);
            foreach (var obj in _cache.Values)
            {
                Safe(() => handler.OnAdd(obj));
            }
        }

        return new Registration(this, handler);
    }

    /// <inheritdoc />
    public async Task RunAsync(CancellationToken ct)
    {
        using var resync = _options.ResyncPeriod is { } period && period > TimeSpan.Zero
            ? _time.CreateTimer(_ => Resync(), null, period, period)
            : null;
        var backoff = _options.InitialBackoff;
        var needList = true;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (needList)
                {
                    await ListAsync(ct);
                    needList = false;
                }

                var started = _time.GetTimestamp();
                var events = await WatchAsync(ct);
                if (events == 0 && _time.GetElapsedTime(started) < TimeSpan.FromSeconds(1))
                {
                    // A watch that closes at once without events is treated as a failure, so a misbehaving server is not hammered.
                    throw new IOException($"watch {_source.Resource} closed immediately without events");
                }

                backoff = _options.InitialBackoff; // a watch that ran and ended cleanly resets the back-off
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e.IsGone())
            {
                LogGone(_source.Resource, LastSyncResourceVersion, ApiErrors.Message(e));
                needList = true;
            }
            catch (Exception e)
            {
                LogFailure(_source.Resource, needList ? "list" : "watch", backoff.TotalMilliseconds, e);
                try
                {
                    await Task.Delay(backoff, _time, ct);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
            }
        }
    }

    private async Task ListAsync(CancellationToken ct)
    {
        var items = new List<T>();
        string? cont = null;
        string? rv;
        var limit = _options.PageSize > 0 ? _options.PageSize : (int?)null;
        while (true)
        {
            ListPage<T> page;
            try
            {
                page = await _source.ListAsync(new ListRequest(_options.LabelSelector, _options.FieldSelector, limit, cont), ct);
            }
            catch (Exception e) when (cont is not null && e.IsGone())
            {
                // The continue token expired mid-list: restart as one unpaged list (client-go's pager fallback).
                items.Clear();
                cont = null;
                limit = null;
                continue;
            }

            items.AddRange(page.Items);
            rv = page.ResourceVersion;
            cont = page.Continue;
            if (string.IsNullOrEmpty(cont))
            {
                break;
            }
        }

        Replace(items, rv);
        ListCount++;
        LogListed(_source.Resource, items.Count, rv);
        _synced.TrySetResult();
    }

    private async Task<int> WatchAsync(CancellationToken ct)
    {
        var min = _options.MinWatchTimeout;
        var timeout = (int)Math.Max(1, (min + (min * Random.Shared.NextDouble())).TotalSeconds);
        var request = new WatchRequest(LastSyncResourceVersion, _options.LabelSelector, _options.FieldSelector, timeout);
        var count = 0;
        await foreach (var (type, obj) in _source.WatchAsync(request, ct))
        {
            Apply(type, obj);
            count++;
        }

        return count;
    }

    private void Apply(WatchEventType type, T obj)
    {
        var key = ObjectKey.Of(obj);
        lock (_gate)
        {
            switch (type)
            {
                case WatchEventType.Added:
                case WatchEventType.Modified:
                    if (_cache.TryGetValue(key, out var old))
                    {
                        _cache[key] = obj;
                        Dispatch(h => h.OnUpdate(old, obj));
                    }
                    else
                    {
                        _cache[key] = obj;
                        Dispatch(h => h.OnAdd(obj));
                    }

                    break;
                case WatchEventType.Deleted:
                    _cache.Remove(key);
                    Dispatch(h => h.OnDelete(obj));
                    break;
            }

            if (!string.IsNullOrEmpty(obj.Metadata.ResourceVersion))
            {
                _lastRv = obj.Metadata.ResourceVersion;
            }
        }
    }

    /// <summary>Replaces the cache with a fresh list, delivering the difference (client-go's DeltaFIFO Replace).</summary>
    private void Replace(List<T> items, string? rv)
    {
        lock (_gate)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var obj in items)
            {
                var key = ObjectKey.Of(obj);
                seen.Add(key);
                if (_cache.TryGetValue(key, out var old))
                {
                    _cache[key] = obj;
                    if (old.Metadata.ResourceVersion != obj.Metadata.ResourceVersion)
                    {
                        Dispatch(h => h.OnUpdate(old, obj));
                    }
                }
                else
                {
                    _cache[key] = obj;
                    Dispatch(h => h.OnAdd(obj));
                }
            }

            foreach (var key in _cache.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                var gone = _cache[key];
                _cache.Remove(key);
                Dispatch(h => h.OnDelete(gone));
            }

            _lastRv = rv;
        }
    }

    private void Resync()
    {
        lock (_gate)
        {
            if (!HasSynced)
            {
                return;
            }

            foreach (var obj in _cache.Values)
            {
                Dispatch(h => h.OnUpdate(obj, obj));
            }
        }
    }

    private void Dispatch(Action<IInformerHandler<T>> call)
    {
        foreach (var handler in _handlers)
        {
            Safe(() => call(handler));
        }
    }

    private void Safe(Action call)
    {
        try
        {
            call();
        }
        catch (Exception e)
        {
            LogHandlerFailed(_source.Resource, e);
        }
    }

    private void Remove(IInformerHandler<T> handler)
    {
        lock (_gate)
        {
            _handlers.Remove(handler);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "informer {Resource}: listed {Count} objects at resourceVersion {ResourceVersion}")]
    private partial void LogListed(string resource, int count, string? resourceVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "informer {Resource}: watch history expired after resourceVersion {ResourceVersion} (410): relisting ({Detail})")]
    private partial void LogGone(string resource, string? resourceVersion, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "informer {Resource}: {Operation} failed; retrying in {DelayMs} ms")]
    private partial void LogFailure(string resource, string operation, double delayMs, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "informer {Resource}: a handler threw")]
    private partial void LogHandlerFailed(string resource, Exception error);

    private sealed class Registration(Informer<T> owner, IInformerHandler<T> handler) : IDisposable
    {
        public void Dispose() => owner.Remove(handler);
    }
}

/// <summary>An <see cref="IInformerHandler{T}"/> from delegates (any may be null).</summary>
/// <typeparam name="T">The object type.</typeparam>
/// <param name="onAdd">Called on add.</param>
/// <param name="onUpdate">Called on update.</param>
/// <param name="onDelete">Called on delete.</param>
public sealed class InformerHandler<T>(Action<T>? onAdd = null, Action<T, T>? onUpdate = null, Action<T>? onDelete = null) : IInformerHandler<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    /// <inheritdoc />
    public void OnAdd(T obj) => onAdd?.Invoke(obj);

    /// <inheritdoc />
    public void OnUpdate(T old, T @new) => onUpdate?.Invoke(old, @new);

    /// <inheritdoc />
    public void OnDelete(T obj) => onDelete?.Invoke(obj);
}
