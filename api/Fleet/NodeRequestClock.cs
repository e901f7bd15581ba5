using System.Collections.Concurrent;
using Dgon.Domain.Ports;

namespace Dgon.Api.Fleet;

/// <summary>
/// <see cref="INodeRequestClock"/> in memory (issue 11, both modes). A node's first request at this replica claims
/// the node in <see cref="IRequestClockStore"/> (one conditional statement, checked against the value every replica
/// wrote); from then on its requests are checked and advanced here, and the values reach the store in batches
/// (<see cref="FlushAsync"/>). When another replica claims the node (announced on the change feed), this one stops
/// answering it from memory, and its next request here claims again.
/// </summary>
/// <remarks>
/// What this guarantees: on one replica every accepted timestamp of a node is later than the previous one, exactly.
/// Across replicas, a heartbeat accepted from memory reaches the store within one flush interval; a copy of it replayed
/// to a different replica within that interval is accepted once there (documented in the issue 11 note). After a
/// crash the clock restarts from the store, which may lag by one flush interval the same way. Key-signed requests
/// (re-registration, rotation: they hand out tokens) pass <c>durable: true</c> and always advance the store before
/// they are answered, so their replays are refused everywhere at once.
/// </remarks>
public sealed class NodeRequestClock(IRequestClockStore store, ReplicaIdentity replica) : INodeRequestClock, IAsyncDisposable
{
    // Claims of many nodes arriving together (a fleet after a restart) share one statement.
    private readonly GroupCommit<ClockClaim> _claims = new((batch, ct) => store.ClaimAsync(batch, replica.Id, ct), c => c.NodeId);

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _dirty = new();

    private sealed class Entry
    {
        public long Ts = long.MinValue;
        public bool Held;
        public bool Dirty;
    }

    /// <inheritdoc />
    /// <exception cref="Exception">The store failed during a claim.</exception>
    public async ValueTask<bool> TryAdvanceAsync(string nodeId, long unixSeconds, bool durable, CancellationToken cancellationToken)
    {
        var entry = _entries.GetOrAdd(nodeId, static _ => new Entry());
        bool enqueue = false;
        bool held;
        lock (entry)
        {
            held = entry.Held && !durable;
            if (unixSeconds <= entry.Ts && entry.Held)
            {
                return false;
            }

            if (held)
            {
                entry.Ts = unixSeconds;
                enqueue = !entry.Dirty;
                entry.Dirty = true;
            }
        }

        if (held)
        {
            if (enqueue)
            {
                _dirty.Enqueue(nodeId);
            }

            return true;
        }

        if (!await _claims.WriteAsync(new ClockClaim(nodeId, unixSeconds), cancellationToken))
        {
            return false;
        }

        lock (entry)
        {
            entry.Held = true;
            if (unixSeconds > entry.Ts)
            {
                entry.Ts = unixSeconds;
            }
        }

        return true;
    }

    /// <summary>Another replica (or this one) claimed a node: unless it was this replica, stop answering it from memory.</summary>
    public void OnClaimed(ClockClaimed claim)
    {
        ArgumentNullException.ThrowIfNull(claim);
        if (claim.Holder != replica.Id && _entries.TryGetValue(claim.NodeId, out var entry))
        {
            lock (entry)
            {
                entry.Held = false;
            }
        }
    }

    /// <summary>The change feed (re)connected and may have missed claims: every node is claimed again on its next request.</summary>
    public void ReleaseAll()
    {
        foreach (var entry in _entries.Values)
        {
            lock (entry)
            {
                entry.Held = false;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _claims.DisposeAsync();

    /// <summary>Forgets a deleted node.</summary>
    public void Forget(string nodeId) => _entries.TryRemove(nodeId, out _);

    /// <summary>Values waiting for the store (approximate).</summary>
    public int DirtyCount => _dirty.Count;

    /// <summary>Writes every value accepted from memory since the last flush in one statement; on failure they stay queued.</summary>
    /// <returns>Values written.</returns>
    /// <exception cref="Exception">The store failed (the values are queued again).</exception>
    public async Task<int> FlushAsync(int max, CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        var values = new List<long>();
        while (ids.Count < max && _dirty.TryDequeue(out var id))
        {
            if (_entries.TryGetValue(id, out var entry))
            {
                lock (entry)
                {
                    if (!entry.Dirty)
                    {
                        continue;
                    }

                    entry.Dirty = false;
                    ids.Add(id);
                    values.Add(entry.Ts);
                }
            }
        }

        try
        {
            await store.AdvanceAsync(ids, values, cancellationToken);
            return ids.Count;
        }
        catch
        {
            foreach (var id in ids)
            {
                if (_entries.TryGetValue(id, out var entry))
                {
                    bool enqueue;
                    lock (entry)
                    {
                        enqueue = !entry.Dirty;
                        entry.Dirty = true;
                    }

                    if (enqueue)
                    {
                        _dirty.Enqueue(id);
                    }
                }
            }

            throw;
        }
    }
}
