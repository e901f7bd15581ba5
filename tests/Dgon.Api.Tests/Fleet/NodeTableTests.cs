using Dgon.Api.Fleet;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Tests.Fleet;

public sealed class NodeTableTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(27);
    private readonly FakeTimeProvider _time = new(T0);
    private readonly NodeLifecycle _lifecycle;

    public NodeTableTests() => _lifecycle = new NodeLifecycle(new NodeLifecycleOptions { GracePeriod = TimeSpan.FromSeconds(30) }, _time);

    private static StoredNode Node(string id, NodePhase phase, DateTimeOffset? lastHeartbeat = null, DateTimeOffset? registeredAt = null, bool ready = true) =>
        new(new NodeRecord
        {
            Id = id,
            Region = "eu-west",
            Runtime = NodeRuntime.Ollama,
            Phase = phase,
            Ready = ready,
            LastHeartbeat = lastHeartbeat,
            CreatedAt = T0.AddHours(-1),
            RegisteredAt = registeredAt ?? T0.AddHours(-1),
        }, "token-a", null, null, SecretUnreadable: false);

    private Func<NodeLifecycleState, NodeTransition> Decide(bool ready) => s => _lifecycle.Apply(s, new NodeEvent.HeartbeatReceived(ready));

    [Fact]
    public void A_steady_heartbeat_is_recorded_in_memory_and_handed_to_the_write_behind_once()
    {
        var table = new NodeTable();
        table.Upsert(Node("n-1", NodePhase.Active, T0.AddSeconds(-10)));
        var hb = new NodeHeartbeat(true, new NodeMetrics(0.5, 1, 2));

        Assert.True(table.TryRecordHeartbeat("n-1", hb, T0, Window, Decide(true), out var phase));
        Assert.True(table.TryRecordHeartbeat("n-1", hb with { Metrics = new NodeMetrics(0.7, 1, 2) }, T0.AddSeconds(1), Window, Decide(true), out _));
        Assert.Equal(NodePhase.Active, phase);

        var batch = table.TakeDirty(100);
        var only = Assert.Single(batch);
        Assert.Equal(T0.AddSeconds(1), only.At);
        Assert.Equal(0.7, only.Metrics.GpuUtil);
        Assert.Empty(table.TakeDirty(100));
    }

    [Theory]
    [InlineData(NodePhase.Pending, true)] // pending -> active
    [InlineData(NodePhase.Active, false)] // active -> pending
    [InlineData(NodePhase.Offline, true)] // offline -> active
    public void A_heartbeat_that_changes_the_phase_is_not_answered_from_memory(NodePhase from, bool ready)
    {
        var table = new NodeTable();
        table.Upsert(Node("n-1", from, T0.AddSeconds(-5)));
        Assert.False(table.TryRecordHeartbeat("n-1", new NodeHeartbeat(ready, NodeMetrics.None), T0, Window, Decide(ready), out _));
        Assert.Empty(table.TakeDirty(10));
    }

    [Fact]
    public void A_node_silent_beyond_the_window_or_unknown_is_written_through()
    {
        var table = new NodeTable();
        table.Upsert(Node("n-1", NodePhase.Active, T0.AddSeconds(-28)));
        var hb = new NodeHeartbeat(true, NodeMetrics.None);
        Assert.False(table.TryRecordHeartbeat("n-1", hb, T0, Window, Decide(true), out _));
        Assert.False(table.TryRecordHeartbeat("unknown", hb, T0, Window, Decide(true), out _));
    }

    [Fact]
    public void A_reload_keeps_a_newer_observation_from_memory_but_takes_the_stores_phase_and_tokens()
    {
        var table = new NodeTable();
        table.Upsert(Node("n-1", NodePhase.Active, T0.AddSeconds(-10)));
        Assert.True(table.TryRecordHeartbeat("n-1", new NodeHeartbeat(true, new NodeMetrics(0.9, null, null)), T0, Window, Decide(true), out _));

        // The store still has the older heartbeat, a new phase and a rotated token.
        table.Upsert(Node("n-1", NodePhase.Quarantine, T0.AddSeconds(-10)) with { Token = "token-b" });
        var stored = table.Get("n-1")!;
        Assert.Equal(NodePhase.Quarantine, stored.Node.Phase);
        Assert.Equal("token-b", stored.Token);
        Assert.Equal(T0, stored.Node.LastHeartbeat);
        Assert.Equal(0.9, stored.Node.Metrics.GpuUtil);

        // A registration after it wins: the node starts over.
        table.Upsert(Node("n-1", NodePhase.Pending, T0.AddSeconds(-10), registeredAt: T0.AddSeconds(1), ready: false));
        Assert.Equal(T0.AddSeconds(-10), table.Get("n-1")!.Node.LastHeartbeat);
        Assert.False(table.Get("n-1")!.Node.Ready);
    }

    [Fact]
    public void Phase_counts_follow_every_change_without_a_scan()
    {
        var table = new NodeTable();
        table.Upsert(Node("a", NodePhase.Active));
        table.Upsert(Node("b", NodePhase.Active));
        table.Upsert(Node("c", NodePhase.Pending));
        table.Upsert(Node("b", NodePhase.Offline));
        table.RecordWritten("c", new NodeHeartbeat(true, NodeMetrics.None), T0, NodePhase.Active);
        table.Remove("a");

        var counts = table.CountByPhase();
        Assert.Equal(1, counts[NodePhase.Active]);
        Assert.Equal(1, counts[NodePhase.Offline]);
        Assert.Equal(0, counts[NodePhase.Pending]);
        Assert.Equal(0, counts[NodePhase.Quarantine]);
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void A_failed_batch_is_queued_again()
    {
        var table = new NodeTable();
        table.Upsert(Node("n-1", NodePhase.Active, T0.AddSeconds(-10)));
        Assert.True(table.TryRecordHeartbeat("n-1", new NodeHeartbeat(true, NodeMetrics.None), T0, Window, Decide(true), out _));
        var batch = table.TakeDirty(10);
        table.Requeue(batch);
        Assert.Single(table.TakeDirty(10));
    }

    [Fact]
    public async Task A_full_load_removes_nodes_the_store_no_longer_has()
    {
        var table = new NodeTable();
        table.Upsert(Node("gone", NodePhase.Active));
        Assert.False(table.Loaded);
        await table.ReplaceAllAsync(Stream(Node("kept", NodePhase.Pending)), CancellationToken.None);
        Assert.True(table.Loaded);
        Assert.Null(table.Get("gone"));
        Assert.NotNull(table.Get("kept"));
        Assert.Equal(0, table.CountByPhase()[NodePhase.Active]);
    }

    private static async IAsyncEnumerable<StoredNode> Stream(params StoredNode[] nodes)
    {
        foreach (var node in nodes)
        {
            await Task.Yield();
            yield return node;
        }
    }
}

public sealed class NodeRequestClockTests
{
    private sealed class FakeClockStore : IRequestClockStore
    {
        public Dictionary<string, long> Stored { get; } = [];

        public int Claims { get; private set; }

        public bool Fail { get; set; }

        public Task<IReadOnlySet<string>> ClaimAsync(IReadOnlyList<ClockClaim> claims, string holder, CancellationToken cancellationToken)
        {
            var claimed = new HashSet<string>();
            foreach (var claim in claims)
            {
                Claims++;
                if (Stored.TryGetValue(claim.NodeId, out var last) && last >= claim.UnixSeconds)
                {
                    continue;
                }

                Stored[claim.NodeId] = claim.UnixSeconds;
                claimed.Add(claim.NodeId);
            }

            return Task.FromResult<IReadOnlySet<string>>(claimed);
        }

        public Task AdvanceAsync(IReadOnlyList<string> nodeIds, IReadOnlyList<long> unixSeconds, CancellationToken cancellationToken)
        {
            if (Fail)
            {
                throw new InvalidOperationException("store down");
            }

            for (var i = 0; i < nodeIds.Count; i++)
            {
                Stored[nodeIds[i]] = Math.Max(Stored.GetValueOrDefault(nodeIds[i]), unixSeconds[i]);
            }

            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task The_first_request_claims_later_ones_are_checked_in_memory_and_written_behind()
    {
        var store = new FakeClockStore();
        var replica = new ReplicaIdentity();
        await using var clock = new NodeRequestClock(store, replica);

        Assert.True(await clock.TryAdvanceAsync("n", 100, durable: false, CancellationToken.None));
        Assert.True(await clock.TryAdvanceAsync("n", 101, durable: false, CancellationToken.None));
        Assert.False(await clock.TryAdvanceAsync("n", 101, durable: false, CancellationToken.None));
        Assert.False(await clock.TryAdvanceAsync("n", 50, durable: false, CancellationToken.None));
        Assert.Equal(1, store.Claims);
        Assert.Equal(100, store.Stored["n"]);

        Assert.Equal(1, await clock.FlushAsync(100, CancellationToken.None));
        Assert.Equal(101, store.Stored["n"]);
    }

    [Fact]
    public async Task A_claim_by_another_replica_sends_the_next_request_to_the_store()
    {
        var store = new FakeClockStore();
        var replica = new ReplicaIdentity();
        await using var clock = new NodeRequestClock(store, replica);
        Assert.True(await clock.TryAdvanceAsync("n", 100, durable: false, CancellationToken.None));

        clock.OnClaimed(new ClockClaimed("n", replica.Id)); // our own claim changes nothing
        Assert.True(await clock.TryAdvanceAsync("n", 101, durable: false, CancellationToken.None));
        Assert.Equal(1, store.Claims);

        store.Stored["n"] = 150; // the other replica accepted up to 150
        clock.OnClaimed(new ClockClaimed("n", "other-replica"));
        Assert.False(await clock.TryAdvanceAsync("n", 120, durable: false, CancellationToken.None));
        Assert.True(await clock.TryAdvanceAsync("n", 151, durable: false, CancellationToken.None));
        Assert.Equal(3, store.Claims);
    }

    [Fact]
    public async Task A_durable_advance_goes_to_the_store_even_when_held_and_is_still_checked_in_memory()
    {
        var store = new FakeClockStore();
        await using var clock = new NodeRequestClock(store, new ReplicaIdentity());
        Assert.True(await clock.TryAdvanceAsync("n", 100, durable: false, CancellationToken.None));
        Assert.True(await clock.TryAdvanceAsync("n", 105, durable: false, CancellationToken.None)); // memory only
        Assert.False(await clock.TryAdvanceAsync("n", 103, durable: true, CancellationToken.None)); // older than memory
        Assert.True(await clock.TryAdvanceAsync("n", 106, durable: true, CancellationToken.None));
        Assert.Equal(106, store.Stored["n"]);
        Assert.Equal(2, store.Claims);
    }

    [Fact]
    public async Task A_failed_flush_keeps_its_values_queued()
    {
        var store = new FakeClockStore();
        await using var clock = new NodeRequestClock(store, new ReplicaIdentity());
        Assert.True(await clock.TryAdvanceAsync("n", 100, durable: false, CancellationToken.None));
        Assert.True(await clock.TryAdvanceAsync("n", 101, durable: false, CancellationToken.None));
        store.Fail = true;
        await Assert.ThrowsAsync<InvalidOperationException>(() => clock.FlushAsync(10, CancellationToken.None));
        store.Fail = false;
        Assert.Equal(1, await clock.FlushAsync(10, CancellationToken.None));
        Assert.Equal(101, store.Stored["n"]);
    }
}
