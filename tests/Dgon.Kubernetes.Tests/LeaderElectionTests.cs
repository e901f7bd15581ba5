using System.Diagnostics;
using Dgon.Kubernetes.Controllers;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

public sealed class LeaderElectionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static LeaderElectionOptions Options(string id, double lease = 2, double renew = 1.5, double retry = 0.5) => new()
    {
        Namespace = "default",
        LeaseName = "dgon-operator",
        Identity = id,
        LeaseDuration = TimeSpan.FromSeconds(lease),
        RenewDeadline = TimeSpan.FromSeconds(renew),
        RetryPeriod = TimeSpan.FromSeconds(retry),
    };

    /// <summary>One candidate: its elector, its run task, and when its leading callback started / saw cancellation.</summary>
    private sealed class Candidate
    {
        public required LeaderElector Elector { get; init; }

        public required CancellationTokenSource Stop { get; init; }

        public Task Run { get; set; } = Task.CompletedTask;

        public long? StartedAt;

        public long? LeaderTokenCancelledAt;

        public bool Leading => StartedAt is not null && LeaderTokenCancelledAt is null;
    }

    private Candidate Start(IKubeClient client, LeaderElectionOptions options)
    {
        var candidate = new Candidate
        {
            Elector = new LeaderElector(client, options, XunitLogger.For(output, options.Identity)),
            Stop = new CancellationTokenSource(TimeSpan.FromSeconds(60)),
        };
        candidate.Run = candidate.Elector.RunAsync(async leaderToken =>
        {
            candidate.StartedAt = Stopwatch.GetTimestamp();
            try
            {
                await Task.Delay(Timeout.Infinite, leaderToken);
            }
            finally
            {
                candidate.LeaderTokenCancelledAt = Stopwatch.GetTimestamp();
            }
        }, candidate.Stop.Token);
        return candidate;
    }

    [Fact]
    public async Task One_of_two_leads_and_graceful_shutdown_hands_over_at_once()
    {
        await using var c = await Cluster.StartAsync();
        // A long lease: a handover well inside it proves the lease was released, not left to expire.
        var a = Start(c.Client, Options("a", lease: 15, renew: 10, retry: 0.5));
        await Eventually.Until(() => Task.FromResult(a.Leading), Wait, "a leads");
        var b = Start(c.Client, Options("b", lease: 15, renew: 10, retry: 0.5));
        await Task.Delay(1500);
        Assert.True(a.Elector.IsLeader);
        Assert.False(b.Elector.IsLeader);
        Assert.Null(b.StartedAt);
        Assert.Equal("a", b.Elector.CurrentLeader);
        var lease = await c.Client.GetAsync(KubeResources.Leases, "default", "dgon-operator", Cluster.Timeout());
        Assert.Equal("a", lease.Spec!.HolderIdentity);
        Assert.Equal(15, lease.Spec.LeaseDurationSeconds);
        Assert.Equal(0, lease.Spec.LeaseTransitions);
        Assert.NotNull(lease.Spec.RenewTime);
        Assert.True(lease.Spec.RenewTime > lease.Spec.AcquireTime, "renewed since acquired");

        var stopped = Stopwatch.GetTimestamp();
        await a.Stop.CancelAsync();
        await a.Run.WaitAsync(Wait);
        Assert.False(a.Elector.IsLeader);
        Assert.False(a.Elector.LostLeadership);
        Assert.NotNull(a.LeaderTokenCancelledAt);

        await Eventually.Until(() => Task.FromResult(b.Leading), Wait, "b leads after a's release");
        var handover = Stopwatch.GetElapsedTime(stopped, b.StartedAt!.Value);
        output.WriteLine($"handover after graceful shutdown: {handover.TotalMilliseconds:0} ms");
        Assert.True(handover < TimeSpan.FromSeconds(7), $"handover took {handover} (lease duration 15 s: release must make it immediate)");
        var after = await c.Client.GetAsync(KubeResources.Leases, "default", "dgon-operator", Cluster.Timeout());
        Assert.Equal("b", after.Spec!.HolderIdentity);
        Assert.Equal(1, after.Spec.LeaseTransitions);

        await b.Stop.CancelAsync();
        await b.Run.WaitAsync(Wait);
        var released = await c.Client.GetAsync(KubeResources.Leases, "default", "dgon-operator", Cluster.Timeout());
        Assert.True(string.IsNullOrEmpty(released.Spec!.HolderIdentity));
        Assert.Equal(1, released.Spec.LeaseDurationSeconds);
    }

    [Fact]
    public async Task A_dead_leader_is_replaced_within_lease_duration_plus_retry_period()
    {
        await using var c = await Cluster.StartAsync();
        var options = Options("a");
        var deadClient = new GatedClient(c.Client);
        var a = Start(deadClient, options);
        await Eventually.Until(() => Task.FromResult(a.Leading), Wait, "a leads");
        var b = Start(c.Client, Options("b"));
        await Task.Delay(1200);
        Assert.False(b.Elector.IsLeader);

        // Kill a without release: every API call of its now hangs (a frozen or partitioned process).
        deadClient.Kill();
        var killed = Stopwatch.GetTimestamp();
        await Eventually.Until(() => Task.FromResult(b.Leading), Wait, "b takes over");
        var takeover = Stopwatch.GetElapsedTime(killed, b.StartedAt!.Value);
        output.WriteLine($"takeover after the leader died: {takeover.TotalMilliseconds:0} ms");
        // Requirement: within LeaseDuration + RetryPeriod of the leader's death (2.5 s here), plus 1 s for a noisy CI machine.
        Assert.True(takeover < options.LeaseDuration + options.RetryPeriod + TimeSpan.FromSeconds(1), $"takeover took {takeover}");

        // The dead leader stops leading on its own once it cannot renew within RenewDeadline, before b took over.
        await a.Run.WaitAsync(Wait);
        Assert.True(a.Elector.LostLeadership);
        Assert.False(a.Elector.IsLeader);
        var stepDown = Stopwatch.GetElapsedTime(killed, a.LeaderTokenCancelledAt!.Value);
        Assert.True(stepDown <= options.RenewDeadline + TimeSpan.FromSeconds(1), $"a stepped down after {stepDown}");
        Assert.True(a.LeaderTokenCancelledAt < b.StartedAt, "no overlap: a stepped down before b started leading");

        var lease = await c.Client.GetAsync(KubeResources.Leases, "default", "dgon-operator", Cluster.Timeout());
        Assert.Equal("b", lease.Spec!.HolderIdentity);
        Assert.Equal(1, lease.Spec.LeaseTransitions);
        await b.Stop.CancelAsync();
        await b.Run.WaitAsync(Wait);
    }

    [Fact]
    public async Task Three_candidates_racing_produce_exactly_one_leader()
    {
        await using var c = await Cluster.StartAsync();
        var candidates = new[] { "x", "y", "z" }.Select(id => Start(c.Client, Options(id))).ToArray();
        await Eventually.Until(() => Task.FromResult(candidates.Any(k => k.Leading)), Wait, "someone leads");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(1, candidates.Count(k => k.Leading));
            await Task.Delay(200);
        }

        var leader = candidates.Single(k => k.Leading);
        var lease = await c.Client.GetAsync(KubeResources.Leases, "default", "dgon-operator", Cluster.Timeout());
        Assert.Equal(leader.Elector.CurrentLeader, lease.Spec!.HolderIdentity);
        foreach (var k in candidates)
        {
            await k.Stop.CancelAsync();
        }

        await Task.WhenAll(candidates.Select(k => k.Run)).WaitAsync(Wait);
    }

    [Fact]
    public void Timings_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new LeaderElector(new GatedClient(null!), Options("a", lease: 2, renew: 2, retry: 0.5), XunitLogger.For(null, "x")));
        Assert.Throws<ArgumentException>(() => new LeaderElector(new GatedClient(null!), Options("a", lease: 3, renew: 1, retry: 1), XunitLogger.For(null, "x")));
        var defaults = new LeaderElectionOptions { Namespace = "n", LeaseName = "l", Identity = "i" };
        Assert.True(defaults.LeaseDuration + defaults.RetryPeriod < TimeSpan.FromSeconds(15));
    }
}
