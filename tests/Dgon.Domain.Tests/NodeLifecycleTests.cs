using Dgon.Domain.Nodes;

namespace Dgon.Domain.Tests;

public sealed class NodeLifecycleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _clock = new(T0);
    private readonly NodeLifecycle _lifecycle;

    public NodeLifecycleTests() => _lifecycle = new NodeLifecycle(new NodeLifecycleOptions { GracePeriod = TimeSpan.FromSeconds(30) }, _clock);

    [Theory]
    [InlineData(NodePhase.Pending, true, NodePhase.Active)]
    [InlineData(NodePhase.Pending, false, NodePhase.Pending)]
    [InlineData(NodePhase.Active, false, NodePhase.Pending)]
    [InlineData(NodePhase.Active, true, NodePhase.Active)]
    [InlineData(NodePhase.Offline, true, NodePhase.Active)]
    [InlineData(NodePhase.Offline, false, NodePhase.Pending)]
    [InlineData(NodePhase.Quarantine, true, NodePhase.Quarantine)]
    [InlineData(NodePhase.Quarantine, false, NodePhase.Quarantine)]
    public void Heartbeat_sets_phase_from_readiness_except_in_quarantine(NodePhase from, bool ready, NodePhase expected)
    {
        var t = _lifecycle.Apply(new NodeLifecycleState(from, T0), new NodeEvent.HeartbeatReceived(ready));
        Assert.Equal(expected, t.Phase);
        Assert.Equal(from != expected, t.Changed);
    }

    [Theory]
    [InlineData(NodePhase.Active, NodePhase.Pending)]
    [InlineData(NodePhase.Offline, NodePhase.Pending)]
    [InlineData(NodePhase.Pending, NodePhase.Pending)]
    [InlineData(NodePhase.Quarantine, NodePhase.Quarantine)]
    public void Registration_resets_to_pending_but_cannot_escape_quarantine(NodePhase from, NodePhase expected) =>
        Assert.Equal(expected, _lifecycle.Apply(new NodeLifecycleState(from, T0), new NodeEvent.Registered()).Phase);

    [Theory]
    [InlineData(NodePhase.Active)]
    [InlineData(NodePhase.Pending)]
    public void Goes_offline_only_after_the_grace_period(NodePhase from)
    {
        var state = new NodeLifecycleState(from, T0);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.False(_lifecycle.Apply(state, new NodeEvent.TimePassed()).Changed); // exactly at the deadline: still live

        _clock.Advance(TimeSpan.FromMilliseconds(1));
        var t = _lifecycle.Apply(state, new NodeEvent.TimePassed());
        Assert.Equal(NodePhase.Offline, t.Phase);
        Assert.True(t.Changed);
        Assert.Equal("HeartbeatTimeout", t.Reason);
    }

    [Fact]
    public void Next_heartbeat_brings_an_offline_node_back()
    {
        _clock.Advance(TimeSpan.FromMinutes(5));
        var offline = _lifecycle.Apply(new NodeLifecycleState(NodePhase.Active, T0), new NodeEvent.TimePassed());
        Assert.Equal(NodePhase.Offline, offline.Phase);

        var back = _lifecycle.Apply(new NodeLifecycleState(offline.Phase, T0), new NodeEvent.HeartbeatReceived(true));
        Assert.Equal(NodePhase.Active, back.Phase);
        Assert.Equal("RuntimeReady", back.Reason);
    }

    [Theory]
    [InlineData(NodePhase.Offline)]
    [InlineData(NodePhase.Quarantine)]
    public void Time_does_not_change_offline_or_quarantined_nodes(NodePhase from)
    {
        _clock.Advance(TimeSpan.FromDays(1));
        Assert.False(_lifecycle.Apply(new NodeLifecycleState(from, T0), new NodeEvent.TimePassed()).Changed);
        Assert.Null(_lifecycle.OfflineDeadline(new NodeLifecycleState(from, T0)));
    }

    [Fact]
    public void Quarantine_is_entered_from_any_phase_and_left_as_pending()
    {
        foreach (var phase in NodePhases.All)
        {
            Assert.Equal(NodePhase.Quarantine, _lifecycle.Apply(new NodeLifecycleState(phase, T0), new NodeEvent.QuarantineSet()).Phase);
        }

        var released = _lifecycle.Apply(new NodeLifecycleState(NodePhase.Quarantine, T0), new NodeEvent.QuarantineCleared());
        Assert.Equal(NodePhase.Pending, released.Phase);
        Assert.True(released.Changed);
        Assert.False(_lifecycle.Apply(new NodeLifecycleState(NodePhase.Active, T0), new NodeEvent.QuarantineCleared()).Changed);
    }

    [Fact]
    public void Offline_deadline_is_last_seen_plus_grace() =>
        Assert.Equal(T0.AddSeconds(30), _lifecycle.OfflineDeadline(new NodeLifecycleState(NodePhase.Active, T0)));

    [Fact]
    public void Rejects_a_non_positive_grace_period() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new NodeLifecycle(new NodeLifecycleOptions { GracePeriod = TimeSpan.Zero }, _clock));

    [Fact]
    public void Wire_names_round_trip()
    {
        foreach (var phase in NodePhases.All)
        {
            Assert.True(NodePhases.TryParse(phase.ToWire(), out var parsed));
            Assert.Equal(phase, parsed);
        }

        Assert.Equal(["pending", "active", "offline", "quarantine"], NodePhases.All.Select(p => p.ToWire()));
        Assert.Equal(["ollama", "vllm", "tensorrtllm", "tgi"], NodeRuntimes.All.Select(r => r.ToWire()));
        Assert.False(NodePhases.TryParse("Active", out _));
        Assert.False(NodeRuntimes.TryParse("OLLAMA", out _));
    }
}
