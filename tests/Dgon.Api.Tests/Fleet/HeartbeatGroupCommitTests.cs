using System.Collections.Concurrent;
using Dgon.Api.Fleet;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Tests.Fleet;

public sealed class HeartbeatGroupCommitTests
{
    private sealed class RecordingStore : INodeStore
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<IReadOnlyList<HeartbeatWrite>> Statements { get; } = new();

        public HashSet<string> Stale { get; } = [];

        public Exception? Failure { get; set; }

        public bool Hold { get; set; }

        public void Release() => _release.TrySetResult();

        public async Task<IReadOnlySet<string>> WriteThroughAsync(IReadOnlyList<HeartbeatWrite> writes, CancellationToken cancellationToken)
        {
            Statements.Enqueue(writes);
            if (Hold)
            {
                await _release.Task.WaitAsync(cancellationToken);
            }

            if (Failure is { } e)
            {
                throw e;
            }

            return writes.Select(w => w.Observation.NodeId).Where(id => !Stale.Contains(id)).ToHashSet();
        }

        public IAsyncEnumerable<StoredNode> LoadAllAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<StoredNode>> LoadAsync(IReadOnlyCollection<string> nodeIds, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<int> WriteHeartbeatsAsync(IReadOnlyList<HeartbeatObservation> observations, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    // Waits until this many statements are running (each worker holds one while the store is held).
    private static Task Busy(RecordingStore store, int statements) =>
        Dgon.Testing.Eventually.Until(() => Task.FromResult(store.Statements.Count >= statements), TimeSpan.FromSeconds(30), $"{statements} statement(s) running");

    private static HeartbeatWrite Write(string id) =>
        new(new HeartbeatObservation(id, DateTimeOffset.UnixEpoch, true, NodeMetrics.None), NodePhase.Pending, NodePhase.Active);

    [Fact]
    public async Task Heartbeats_queued_while_a_statement_runs_share_the_next_one()
    {
        var store = new RecordingStore { Hold = true };
        await using var commit = new HeartbeatGroupCommit(store);
        var first = commit.WriteAsync(Write("n-0"), CancellationToken.None);
        await Busy(store, 1);
        var second = commit.WriteAsync(Write("n-1"), CancellationToken.None);
        await Busy(store, 2);

        var queued = Enumerable.Range(2, 200).Select(i => commit.WriteAsync(Write($"n-{i}"), CancellationToken.None)).ToList();
        store.Release();
        Assert.True(await first);
        Assert.True(await second);
        Assert.All(await Task.WhenAll(queued), Assert.True);

        // 202 heartbeats, far fewer statements: the 200 queued ones went in at most a few batches.
        Assert.InRange(store.Statements.Count, 3, 2 + 4);
        Assert.Equal(202, store.Statements.Sum(s => s.Count));
    }

    [Fact]
    public async Task A_node_whose_stored_phase_moved_on_is_reported_not_written()
    {
        var store = new RecordingStore();
        store.Stale.Add("moved");
        await using var commit = new HeartbeatGroupCommit(store);
        Assert.False(await commit.WriteAsync(Write("moved"), CancellationToken.None));
        Assert.True(await commit.WriteAsync(Write("kept"), CancellationToken.None));
    }

    [Fact]
    public async Task A_failed_statement_fails_its_callers()
    {
        var store = new RecordingStore { Failure = new InvalidOperationException("database down") };
        await using var commit = new HeartbeatGroupCommit(store);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => commit.WriteAsync(Write("n"), CancellationToken.None));
        Assert.Equal("database down", e.Message);
    }

    [Fact]
    public async Task Two_heartbeats_of_one_node_never_share_a_statement()
    {
        var store = new RecordingStore { Hold = true };
        await using var commit = new HeartbeatGroupCommit(store);
        var blockers = new List<Task<bool>>();
        for (var i = 0; i < HeartbeatGroupCommit.Workers; i++)
        {
            blockers.Add(commit.WriteAsync(Write($"b-{i}"), CancellationToken.None));
            await Busy(store, i + 1);
        }

        var twice = new[] { commit.WriteAsync(Write("same"), CancellationToken.None), commit.WriteAsync(Write("same"), CancellationToken.None) };
        store.Release();
        await Task.WhenAll(blockers.Concat(twice));
        Assert.All(store.Statements, s => Assert.Equal(s.Count, s.Select(w => w.Observation.NodeId).Distinct().Count()));
        Assert.Equal(2, store.Statements.Sum(s => s.Count(w => w.Observation.NodeId == "same")));
    }
}
