using System.Collections.Concurrent;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Fleet;

/// <summary>
/// Standalone mode's in-memory table of every node with its decrypted tokens (issue 11): what a heartbeat needs is
/// read from here, never from PostgreSQL. Loaded at start-up by <see cref="NodeTableSync"/>, kept current by this
/// replica's own writes (<see cref="CachedNodeRegistry"/>) and by the change feed for every other writer (other
/// replicas, the lifecycle sweep). PostgreSQL stays the source of truth: a reload replaces what the store owns
/// (declared data, phase, keys, tokens) and keeps only an observation (last heartbeat, ready, metrics) that is newer
/// in memory than in the store.
/// </summary>
/// <remarks>
/// Heartbeats accepted from memory mark their node dirty; <see cref="TakeDirty"/> hands the batch to
/// <see cref="WriteBehindFlusher"/>. Phase counts are kept incrementally so <c>/v1/summary</c> never scans.
/// Memory: one entry per node (bench/README.md states the measured bytes per node).
/// </remarks>
public sealed class NodeTable : IFleetSize
{
    private readonly ConcurrentDictionary<string, Entry> _nodes = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _dirty = new();
    private readonly int[] _phaseCounts = new int[NodePhases.All.Count];
    private readonly ConcurrentDictionary<string, string> _regions = new(StringComparer.Ordinal);
    private volatile bool _loaded;

    private sealed class Entry(StoredNode stored)
    {
        public StoredNode Stored = stored;
        public bool Dirty;
    }

    /// <summary>Whether the first full load finished; before it, callers read the store instead.</summary>
    public bool Loaded => _loaded;

    /// <summary>Number of nodes in the table.</summary>
    public int Count => _nodes.Count;

    /// <inheritdoc />
    int IFleetSize.NodeCount => _nodes.Count;

    /// <summary>The node as last known here, or null when absent.</summary>
    public StoredNode? Get(string nodeId)
    {
        if (!_nodes.TryGetValue(nodeId, out var entry))
        {
            return null;
        }

        lock (entry)
        {
            return entry.Stored;
        }
    }

    /// <summary>
    /// Puts what the store holds for a node into the table (after a write of this replica, or a reload). An
    /// observation newer in memory than in <paramref name="stored"/> is kept, unless the node registered after it.
    /// </summary>
    public void Upsert(StoredNode stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        stored = stored with { Node = stored.Node with { Region = _regions.GetOrAdd(stored.Node.Region, stored.Node.Region) } };
        while (true)
        {
            if (_nodes.TryGetValue(stored.Node.Id, out var entry))
            {
                lock (entry)
                {
                    var current = entry.Stored.Node;
                    var incoming = stored.Node;
                    if (current.LastHeartbeat is { } seen && seen > (incoming.LastHeartbeat ?? DateTimeOffset.MinValue) && seen > incoming.RegisteredAt)
                    {
                        stored = stored with { Node = incoming with { LastHeartbeat = seen, Ready = current.Ready, Metrics = current.Metrics } };
                    }

                    Tally(current.Phase, -1);
                    Tally(stored.Node.Phase, +1);
                    entry.Stored = stored;
                }

                return;
            }

            var added = new Entry(stored);
            if (_nodes.TryAdd(stored.Node.Id, added))
            {
                Tally(stored.Node.Phase, +1);
                return;
            }
        }
    }

    /// <summary>Removes a node that no longer exists in the store.</summary>
    /// <returns>Whether it was present.</returns>
    public bool Remove(string nodeId)
    {
        if (!_nodes.TryRemove(nodeId, out var entry))
        {
            return false;
        }

        lock (entry)
        {
            Tally(entry.Stored.Node.Phase, -1);
        }

        return true;
    }

    /// <summary>Replaces the table by a full load: every node in <paramref name="nodes"/> upserted, every other one removed.</summary>
    public async Task ReplaceAllAsync(IAsyncEnumerable<StoredNode> nodes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var seen = new HashSet<string>(_nodes.Count, StringComparer.Ordinal);
        await foreach (var node in nodes.WithCancellation(cancellationToken))
        {
            Upsert(node);
            seen.Add(node.Node.Id);
        }

        foreach (var id in _nodes.Keys)
        {
            if (!seen.Contains(id))
            {
                Remove(id);
            }
        }

        _loaded = true;
    }

    /// <summary>
    /// Records a heartbeat in memory when <paramref name="decide"/> says its phase stays what it is and the node was
    /// seen recently enough (within <paramref name="fastWindow"/> of <paramref name="now"/>); the node is then marked
    /// dirty for the write-behind.
    /// </summary>
    /// <param name="nodeId">Node id.</param>
    /// <param name="heartbeat">The verified heartbeat.</param>
    /// <param name="now">Time of acceptance (UTC).</param>
    /// <param name="fastWindow">Longest time since the node's last sign of life for which memory may answer.</param>
    /// <param name="decide">The lifecycle rule applied to the node's state.</param>
    /// <param name="phase">The node's (unchanged) phase when recorded.</param>
    /// <returns>False when the node is absent, its phase would change, or it was silent too long: write it through instead.</returns>
    public bool TryRecordHeartbeat(string nodeId, NodeHeartbeat heartbeat, DateTimeOffset now, TimeSpan fastWindow, Func<NodeLifecycleState, NodeTransition> decide, out NodePhase phase)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        ArgumentNullException.ThrowIfNull(decide);
        phase = default;
        if (!_nodes.TryGetValue(nodeId, out var entry))
        {
            return false;
        }

        bool enqueue;
        lock (entry)
        {
            var node = entry.Stored.Node;
            var lastSeen = LastSeen(node);
            if (now - lastSeen > fastWindow || decide(new NodeLifecycleState(node.Phase, lastSeen)).Changed)
            {
                return false;
            }

            entry.Stored = entry.Stored with { Node = node with { LastHeartbeat = now, Ready = heartbeat.Ready, Metrics = heartbeat.Metrics } };
            phase = node.Phase;
            enqueue = !entry.Dirty;
            entry.Dirty = true;
        }

        if (enqueue)
        {
            _dirty.Enqueue(nodeId);
        }

        return true;
    }

    /// <summary>
    /// The decision for a heartbeat that must be written through (after <see cref="TryRecordHeartbeat"/> said no): the
    /// node's phase now and the one <paramref name="decide"/> gives.
    /// </summary>
    /// <returns>False when the node is absent.</returns>
    public bool TryDecide(string nodeId, Func<NodeLifecycleState, NodeTransition> decide, out NodePhase from, out NodeTransition transition)
    {
        ArgumentNullException.ThrowIfNull(decide);
        (from, transition) = (default, default);
        if (!_nodes.TryGetValue(nodeId, out var entry))
        {
            return false;
        }

        lock (entry)
        {
            var node = entry.Stored.Node;
            from = node.Phase;
            transition = decide(new NodeLifecycleState(node.Phase, LastSeen(node)));
        }

        return true;
    }

    /// <summary>Records a heartbeat that was just written through to the store with its resulting phase (not dirty).</summary>
    public void RecordWritten(string nodeId, NodeHeartbeat heartbeat, DateTimeOffset at, NodePhase phase)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        if (!_nodes.TryGetValue(nodeId, out var entry))
        {
            return;
        }

        lock (entry)
        {
            var node = entry.Stored.Node;
            Tally(node.Phase, -1);
            Tally(phase, +1);
            entry.Stored = entry.Stored with { Node = node with { Phase = phase, LastHeartbeat = at, Ready = heartbeat.Ready, Metrics = heartbeat.Metrics } };
        }
    }

    /// <summary>Takes every dirty node's latest observation and marks it clean; at most <paramref name="max"/> of them.</summary>
    public List<HeartbeatObservation> TakeDirty(int max)
    {
        var batch = new List<HeartbeatObservation>(Math.Min(max, _dirty.Count));
        while (batch.Count < max && _dirty.TryDequeue(out var id))
        {
            if (!_nodes.TryGetValue(id, out var entry))
            {
                continue;
            }

            lock (entry)
            {
                if (!entry.Dirty || entry.Stored.Node.LastHeartbeat is not { } at)
                {
                    continue;
                }

                entry.Dirty = false;
                var node = entry.Stored.Node;
                batch.Add(new HeartbeatObservation(id, at, node.Ready, node.Metrics));
            }
        }

        return batch;
    }

    /// <summary>Marks the nodes of a batch that could not be written dirty again (unless a newer heartbeat did).</summary>
    public void Requeue(IEnumerable<HeartbeatObservation> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var observation in batch)
        {
            if (_nodes.TryGetValue(observation.NodeId, out var entry))
            {
                bool enqueue;
                lock (entry)
                {
                    enqueue = !entry.Dirty;
                    entry.Dirty = true;
                }

                if (enqueue)
                {
                    _dirty.Enqueue(observation.NodeId);
                }
            }
        }
    }

    /// <summary>Nodes waiting for the write-behind (approximate).</summary>
    public int DirtyCount => _dirty.Count;

    /// <summary>Node counts per phase; every phase present. O(phases), no scan.</summary>
    public IReadOnlyDictionary<NodePhase, int> CountByPhase() =>
        NodePhases.All.ToDictionary(p => p, p => Math.Max(0, Volatile.Read(ref _phaseCounts[(int)p])));

    /// <summary>Calls <paramref name="visit"/> with every node as last known here, in no particular order, one at a time (for the node gauges; no copy).</summary>
    public void Visit(Action<NodeRecord> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        foreach (var entry in _nodes.Values)
        {
            NodeRecord node;
            lock (entry)
            {
                node = entry.Stored.Node;
            }

            visit(node);
        }
    }

    /// <summary>The node's last sign of life: its last heartbeat, or its registration when that is later.</summary>
    public static DateTimeOffset LastSeen(NodeRecord node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.LastHeartbeat is { } hb && hb > node.RegisteredAt ? hb : node.RegisteredAt;
    }

    private void Tally(NodePhase phase, int delta) => Interlocked.Add(ref _phaseCounts[(int)phase], delta);
}
