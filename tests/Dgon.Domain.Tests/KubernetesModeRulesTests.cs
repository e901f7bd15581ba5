using Dgon.Domain.Auth;
using Dgon.Domain.Nodes;

namespace Dgon.Domain.Tests;

public sealed class AuthFailureWindowTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Fifth_failure_within_ten_minutes_is_reported_once()
    {
        var window = new AuthFailureWindow(new AuthFailureWindowOptions());
        for (var i = 0; i < 4; i++)
        {
            Assert.Null(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0.AddMinutes(i)));
        }

        var record = window.RecordFailure("n1", NodeAuthResult.StaleTimestamp, T0.AddMinutes(4));
        Assert.NotNull(record);
        Assert.Equal(5, record.Count);
        Assert.Equal(T0, record.FirstFailureTime);
        Assert.Equal(T0.AddMinutes(4), record.LastFailureTime);
        Assert.Equal("StaleTimestamp", record.LastReason);

        // A node that keeps failing every minute is not reported again inside the window (no write amplification)…
        for (var minute = 5; minute < 14; minute++)
        {
            Assert.Null(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0.AddMinutes(minute)));
        }

        // …but is reported again once a full window has passed since the last report.
        Assert.NotNull(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0.AddMinutes(14)));
    }

    [Fact]
    public void Failures_older_than_the_window_do_not_count()
    {
        var window = new AuthFailureWindow(new AuthFailureWindowOptions { Threshold = 3, Window = TimeSpan.FromMinutes(1) });
        Assert.Null(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0));
        Assert.Null(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0.AddSeconds(30)));
        Assert.Null(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0.AddSeconds(61))); // first one expired
        Assert.NotNull(window.RecordFailure("n1", NodeAuthResult.BadSignature, T0.AddSeconds(62)));
    }

    [Fact]
    public void Nodes_are_counted_separately_and_reset_forgets()
    {
        var window = new AuthFailureWindow(new AuthFailureWindowOptions { Threshold = 2 });
        Assert.Null(window.RecordFailure("a", NodeAuthResult.BadSignature, T0));
        Assert.Null(window.RecordFailure("b", NodeAuthResult.BadSignature, T0));
        window.Reset("a");
        Assert.Null(window.RecordFailure("a", NodeAuthResult.BadSignature, T0.AddSeconds(1)));
        Assert.NotNull(window.RecordFailure("b", NodeAuthResult.BadSignature, T0.AddSeconds(1)));
    }

    [Fact]
    public void Tracking_is_bounded()
    {
        var window = new AuthFailureWindow(new AuthFailureWindowOptions { MaxTrackedNodes = 3 });
        for (var i = 0; i < 10; i++)
        {
            window.RecordFailure($"n{i}", NodeAuthResult.BadSignature, T0.AddSeconds(i));
        }

        Assert.Equal(3, window.TrackedNodes);
    }

    [Fact]
    public void Bad_options_are_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new AuthFailureWindow(new AuthFailureWindowOptions { Threshold = 0 }));
}

public sealed class NodeConditionsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 10, 0, 0, 500, TimeSpan.Zero);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static NodeConditionInputs Inputs(NodePhase phase, string reason = "Unchanged", bool ready = false, bool hasHeartbeat = true, bool overdue = false) =>
        new(phase, reason, ready, hasHeartbeat, overdue, Timeout, 3);

    [Fact]
    public void Active_node_is_ready_and_heartbeating()
    {
        var conditions = NodeConditions.Compute([], Inputs(NodePhase.Active, "RuntimeReady", ready: true), T0);
        Assert.Equal(["Ready", "Heartbeating", "Quarantined"], conditions.Select(c => c.Type));
        Assert.Equal(ConditionState.True, NodeConditions.Find(conditions, "Ready")!.Status);
        Assert.Equal(ConditionState.True, NodeConditions.Find(conditions, "Heartbeating")!.Status);
        Assert.Equal(ConditionState.False, NodeConditions.Find(conditions, "Quarantined")!.Status);
        Assert.All(conditions, c => Assert.Equal(3, c.ObservedGeneration));
        // Wire precision is seconds.
        Assert.All(conditions, c => Assert.Equal(new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero), c.LastTransitionTime));
    }

    [Fact]
    public void New_node_awaits_its_first_heartbeat()
    {
        var conditions = NodeConditions.Compute([], Inputs(NodePhase.Pending, "Registered", hasHeartbeat: false), T0);
        Assert.Equal(ConditionState.Unknown, NodeConditions.Find(conditions, "Heartbeating")!.Status);
        Assert.Equal("AwaitingHeartbeat", NodeConditions.Find(conditions, "Ready")!.Reason);
    }

    [Fact]
    public void Offline_node_has_timed_out()
    {
        var conditions = NodeConditions.Compute([], Inputs(NodePhase.Offline, "HeartbeatTimeout", overdue: true), T0);
        var hb = NodeConditions.Find(conditions, "Heartbeating")!;
        Assert.Equal((ConditionState.False, "HeartbeatTimeout"), (hb.Status, hb.Reason));
        Assert.Contains("60s", hb.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quarantine_keeps_its_cause_while_unchanged()
    {
        var first = NodeConditions.Compute([], Inputs(NodePhase.Quarantine, "AuthFailureThreshold"), T0);
        Assert.Equal("AuthFailureThreshold", NodeConditions.Find(first, "Quarantined")!.Reason);
        var later = NodeConditions.Compute(first, Inputs(NodePhase.Quarantine), T0.AddMinutes(1));
        Assert.Equal("AuthFailureThreshold", NodeConditions.Find(later, "Quarantined")!.Reason);
        Assert.Equal(ConditionState.False, NodeConditions.Find(later, "Ready")!.Status);
    }

    [Fact]
    public void Transition_time_changes_only_with_the_status()
    {
        var active = NodeConditions.Compute([], Inputs(NodePhase.Active, ready: true), T0);
        var stillActive = NodeConditions.Compute(active, Inputs(NodePhase.Active, ready: true), T0.AddMinutes(5));
        Assert.Equal(NodeConditions.Find(active, "Ready")!.LastTransitionTime, NodeConditions.Find(stillActive, "Ready")!.LastTransitionTime);
        Assert.True(NodeConditions.Equivalent(active, stillActive));

        var offline = NodeConditions.Compute(stillActive, Inputs(NodePhase.Offline, overdue: true), T0.AddMinutes(6));
        Assert.Equal(NodeConditions.TruncateToSeconds(T0.AddMinutes(6)), NodeConditions.Find(offline, "Ready")!.LastTransitionTime);
        // Quarantined stayed False: its transition time is kept.
        Assert.Equal(NodeConditions.Find(active, "Quarantined")!.LastTransitionTime, NodeConditions.Find(offline, "Quarantined")!.LastTransitionTime);
        Assert.False(NodeConditions.Equivalent(stillActive, offline));
    }

    [Fact]
    public void Foreign_conditions_are_kept_after_ours()
    {
        var foreign = new NodeCondition("example.com/Audited", ConditionState.True, "Audited", "ok", T0, null);
        var conditions = NodeConditions.Compute([foreign], Inputs(NodePhase.Pending), T0);
        Assert.Equal("example.com/Audited", conditions[^1].Type);
        Assert.Equal(4, conditions.Count);
    }
}

public sealed class StatusWriteCoalescingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(10);

    private static RecordedObservation Written(DateTimeOffset at, bool ready = true) => new(at, ready, true, at);

    [Fact]
    public void Steady_heartbeats_write_at_most_once_per_refresh_interval_and_the_held_one_is_due_at_the_trailing_edge()
    {
        var recorded = Written(T0);
        Assert.False(StatusWriteCoalescing.WriteNow(recorded, true, T0.AddSeconds(9.9), Refresh));
        Assert.Equal(T0.AddSeconds(10), StatusWriteCoalescing.DueAt(recorded, Refresh));
        Assert.True(StatusWriteCoalescing.WriteNow(recorded, true, T0.AddSeconds(10), Refresh));
    }

    [Fact]
    public void What_the_operator_decides_on_is_written_at_once()
    {
        var recorded = Written(T0);
        var now = T0.AddSeconds(1);
        Assert.True(StatusWriteCoalescing.WriteNow(recorded, false, now, Refresh)); // ready changed
        Assert.True(StatusWriteCoalescing.WriteNow(recorded with { LastHeartbeatTime = null }, true, now, Refresh)); // first heartbeat
        Assert.True(StatusWriteCoalescing.WriteNow(recorded with { HeartbeatSinceRegistration = false }, true, now, Refresh)); // first since registration
    }

    [Fact]
    public void After_a_restart_the_recorded_heartbeat_stands_in_for_the_unknown_last_write()
    {
        var recorded = new RecordedObservation(T0, true, true, null);
        Assert.Equal(T0.AddSeconds(10), StatusWriteCoalescing.DueAt(recorded, Refresh));
        Assert.False(StatusWriteCoalescing.WriteNow(recorded, true, T0.AddSeconds(5), Refresh));
    }

    [Fact]
    public void The_refresh_interval_must_be_positive_and_at_most_half_the_grace_period()
    {
        StatusWriteCoalescing.Validate(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(30));
        Assert.Throws<ArgumentOutOfRangeException>(() => StatusWriteCoalescing.Validate(TimeSpan.FromSeconds(16), TimeSpan.FromSeconds(30)));
        Assert.Throws<ArgumentOutOfRangeException>(() => StatusWriteCoalescing.Validate(TimeSpan.Zero, TimeSpan.FromSeconds(30)));
        Assert.Throws<ArgumentOutOfRangeException>(() => StatusWriteCoalescing.WriteNow(Written(T0), true, T0, TimeSpan.Zero));
    }
}

public sealed class NodeLifecycleTimeoutTests
{
    [Fact]
    public void The_offline_deadline_is_the_last_heartbeat_plus_the_grace_period_in_both_modes()
    {
        var t0 = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(t0);
        var lifecycle = new NodeLifecycle(new NodeLifecycleOptions { GracePeriod = TimeSpan.FromSeconds(30) }, clock);
        var state = new NodeLifecycleState(NodePhase.Active, t0);
        Assert.Equal(t0.AddSeconds(30), lifecycle.OfflineDeadline(state));
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.False(lifecycle.Apply(state, new NodeEvent.TimePassed()).Changed);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(NodePhase.Offline, lifecycle.Apply(state, new NodeEvent.TimePassed()).Phase);
    }
}
