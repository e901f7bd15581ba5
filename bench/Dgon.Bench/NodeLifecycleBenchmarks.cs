using BenchmarkDotNet.Attributes;
using Dgon.Domain.Nodes;

namespace Dgon.Bench;

/// <summary>
/// <see cref="NodeLifecycle.Apply"/> for the transitions the API and the sweeper hit on every heartbeat and sweep.
/// </summary>
[MemoryDiagnoser]
public class NodeLifecycleBenchmarks
{
    private static readonly NodeEvent ReadyHeartbeat = new NodeEvent.HeartbeatReceived(true);
    private static readonly NodeEvent NotReadyHeartbeat = new NodeEvent.HeartbeatReceived(false);
    private static readonly NodeEvent TimePassed = new NodeEvent.TimePassed();

    private readonly NodeLifecycle _lifecycle = new(new NodeLifecycleOptions(), TimeProvider.System);
    private NodeLifecycleState _activeFresh;
    private NodeLifecycleState _activeOverdue;
    private NodeLifecycleState _pending;

    [GlobalSetup]
    public void Setup()
    {
        var now = TimeProvider.System.GetUtcNow();
        _activeFresh = new NodeLifecycleState(NodePhase.Active, now);
        _activeOverdue = new NodeLifecycleState(NodePhase.Active, now - TimeSpan.FromMinutes(5));
        _pending = new NodeLifecycleState(NodePhase.Pending, now);
    }

    /// <summary>Steady state: an active node heartbeats ready (no change).</summary>
    [Benchmark(Baseline = true)]
    public NodeTransition HeartbeatActiveUnchanged() => _lifecycle.Apply(_activeFresh, ReadyHeartbeat);

    /// <summary>pending → active.</summary>
    [Benchmark]
    public NodeTransition HeartbeatPendingToActive() => _lifecycle.Apply(_pending, ReadyHeartbeat);

    /// <summary>active → pending (runtime no longer ready).</summary>
    [Benchmark]
    public NodeTransition HeartbeatActiveToPending() => _lifecycle.Apply(_activeFresh, NotReadyHeartbeat);

    /// <summary>Sweeper: a fresh node stays as it is.</summary>
    [Benchmark]
    public NodeTransition SweepFresh() => _lifecycle.Apply(_activeFresh, TimePassed);

    /// <summary>Sweeper: an overdue node goes offline.</summary>
    [Benchmark]
    public NodeTransition SweepOverdueToOffline() => _lifecycle.Apply(_activeOverdue, TimePassed);
}
