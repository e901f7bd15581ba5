using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Dgon.KubeTestServer;

/// <summary>One stored object. <see cref="Node"/> may only be read under <see cref="Store.Lock"/>; <see cref="Json"/> anywhere.</summary>
internal sealed class StoredObject(string key, JsonObject node, string json, long rv)
{
    public string Key { get; } = key;

    public JsonObject Node { get; } = node;

    public string Json { get; } = json;

    public long Rv { get; } = rv;

    /// <summary>A private, mutable copy.</summary>
    public JsonObject Parse() => (JsonObject)JsonNode.Parse(Json)!;
}

/// <summary>A change (or watch control message) in the global, totally ordered change log.</summary>
internal sealed record StoreEvent(string Type, string StorageKey, long Rv, string? ObjectJson, string? OldJson, bool InitialEventsEnd = false);

/// <summary>An open watch's queue, filled under the store lock so events, bookmarks and errors stay in resourceVersion order.</summary>
internal sealed class Watcher(string storageKey)
{
    public string StorageKey { get; } = storageKey;

    public Channel<StoreEvent> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<StoreEvent>(new UnboundedChannelOptions { SingleReader = true });
}

/// <summary>
/// The object store: one global resourceVersion counter (like an etcd revision) bumped by every write, objects keyed
/// by <c>namespace/name</c> per storage key, a bounded change history for watch-from-resourceVersion, and consistent
/// list snapshots for <c>limit</c>/<c>continue</c> paging. Every public member must be called under <see cref="Lock"/>.
/// </summary>
internal sealed class Store(int historyLimit)
{
    private const int MaxSnapshots = 256;
    private readonly Dictionary<string, SortedDictionary<string, StoredObject>> _objects = new(StringComparer.Ordinal);
    private readonly LinkedList<StoreEvent> _history = new();
    private readonly List<Watcher> _watchers = [];
    private readonly Dictionary<long, (long Rv, string StorageKey, List<StoredObject> Items)> _snapshots = [];
    private readonly Queue<long> _snapshotOrder = new();
    private long _nextSnapshot;

    public Lock Lock { get; } = new();

    public long CurrentRv { get; private set; }

    /// <summary>The highest resourceVersion no longer served from history; watches from an older one get 410.</summary>
    public long CompactedRv { get; private set; }

    public static string KeyOf(string ns, string name) => ns + "/" + name;

    public StoredObject? Get(string storageKey, string key) =>
        _objects.TryGetValue(storageKey, out var map) && map.TryGetValue(key, out var o) ? o : null;

    public IReadOnlyList<StoredObject> List(string storageKey) =>
        _objects.TryGetValue(storageKey, out var map) ? [.. map.Values] : [];

    public IEnumerable<(string StorageKey, StoredObject Object)> Everything() =>
        _objects.SelectMany(kv => kv.Value.Values.Select(o => (kv.Key, o))).ToList();

    /// <summary>Stores <paramref name="node"/> (taking ownership) with the next resourceVersion and emits ADDED or MODIFIED.</summary>
    public StoredObject Put(string storageKey, JsonObject node)
    {
        var key = KeyOf(node.Namespace(), node.Name());
        var old = Get(storageKey, key);
        var rv = ++CurrentRv;
        node.Meta()["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var stored = new StoredObject(key, node, Json.Serialize(node), rv);
        if (!_objects.TryGetValue(storageKey, out var map))
        {
            map = new SortedDictionary<string, StoredObject>(StringComparer.Ordinal);
            _objects[storageKey] = map;
        }

        map[key] = stored;
        Publish(new StoreEvent(old is null ? "ADDED" : "MODIFIED", storageKey, rv, stored.Json, old?.Json));
        return stored;
    }

    /// <summary>Removes an object (its final state is <paramref name="finalState"/>, or the stored one) and emits DELETED with a new resourceVersion.</summary>
    public JsonObject Remove(string storageKey, string key, JsonObject? finalState = null)
    {
        var old = Get(storageKey, key) ?? throw new InvalidOperationException($"{storageKey} {key} is not stored");
        _objects[storageKey].Remove(key);
        var rv = ++CurrentRv;
        var node = finalState ?? old.Parse();
        node.Meta()["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Publish(new StoreEvent("DELETED", storageKey, rv, Json.Serialize(node), old.Json));
        return node;
    }

    private void Publish(StoreEvent e)
    {
        _history.AddLast(e);
        while (_history.Count > Math.Max(1, historyLimit))
        {
            CompactedRv = _history.First!.Value.Rv;
            _history.RemoveFirst();
        }

        foreach (var w in _watchers)
        {
            if (w.StorageKey == e.StorageKey)
            {
                w.Channel.Writer.TryWrite(e);
            }
        }
    }

    /// <summary>Registers a watcher after <paramref name="fromRv"/>: returns the retained events after it, or null when it is too old.</summary>
    public List<StoreEvent>? WatchFrom(Watcher watcher, long fromRv)
    {
        if (fromRv < CompactedRv)
        {
            return null;
        }

        var backlog = _history.Where(e => e.Rv > fromRv && e.StorageKey == watcher.StorageKey).ToList();
        _watchers.Add(watcher);
        return backlog;
    }

    /// <summary>Registers a watcher from now on; the caller lists the current state in the same lock for synthetic ADDED events.</summary>
    public void WatchNow(Watcher watcher) => _watchers.Add(watcher);

    public void Unwatch(Watcher watcher) => _watchers.Remove(watcher);

    /// <summary>Queues a BOOKMARK at the current resourceVersion (in order with the watcher's events).</summary>
    public void Bookmark(Watcher watcher, bool initialEventsEnd = false) =>
        watcher.Channel.Writer.TryWrite(new StoreEvent("BOOKMARK", watcher.StorageKey, CurrentRv, null, null, initialEventsEnd));

    /// <summary>Makes every resourceVersion older than the current one too old; open watches get an ERROR 410 and end.</summary>
    public void Expire()
    {
        CompactedRv = CurrentRv;
        _history.Clear();
        _snapshots.Clear();
        _snapshotOrder.Clear();
        foreach (var w in _watchers)
        {
            w.Channel.Writer.TryWrite(new StoreEvent("ERROR", w.StorageKey, CurrentRv, null, null));
            w.Channel.Writer.TryComplete();
        }

        _watchers.Clear();
    }

    /// <summary>Ends open watches (optionally only those of one storage key) cleanly.</summary>
    public void CloseWatches(string? storageKey = null)
    {
        foreach (var w in _watchers.Where(w => storageKey is null || w.StorageKey == storageKey).ToList())
        {
            w.Channel.Writer.TryComplete();
            _watchers.Remove(w);
        }
    }

    public int WatcherCount => _watchers.Count;

    /// <summary>Keeps a consistent copy of a list for continue tokens; returns its id.</summary>
    public long Snapshot(string storageKey, List<StoredObject> items, long rv)
    {
        var id = ++_nextSnapshot;
        _snapshots[id] = (rv, storageKey, items);
        _snapshotOrder.Enqueue(id);
        while (_snapshotOrder.Count > MaxSnapshots)
        {
            _snapshots.Remove(_snapshotOrder.Dequeue());
        }

        return id;
    }

    public (long Rv, string StorageKey, List<StoredObject> Items)? GetSnapshot(long id) =>
        _snapshots.TryGetValue(id, out var s) ? s : null;
}
