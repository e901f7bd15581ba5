using System.Text.Json.Nodes;
using Dgon.Kubernetes.Controllers;
using Dgon.Testing;
using k8s;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary><see cref="LeaderElection"/> (KubernetesClient's LeaderElector and LeaseLock) on the test server's Leases.</summary>
public sealed class LeaderElectionTests(ITestOutputHelper output)
{
    private const string LeaseName = "dgon-operator";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static LeaderElectionOptions Options(string id, double lease = 2, double renew = 1.5, double retry = 0.25) => new()
    {
        Namespace = "default",
        LeaseName = LeaseName,
        Identity = id,
        LeaseDuration = TimeSpan.FromSeconds(lease),
        RenewDeadline = TimeSpan.FromSeconds(renew),
        RetryPeriod = TimeSpan.FromSeconds(retry),
    };

    /// <summary>One candidate: its election, its run task, and whether its leading callback runs.</summary>
    private sealed class Candidate
    {
        public required string Id { get; init; }

        public required LeaderElection Election { get; init; }

        public required CancellationTokenSource Stop { get; init; }

        public Task Run { get; set; } = Task.CompletedTask;

        public volatile bool Started;

        public volatile bool Ended;

        public bool Leading => Started && !Ended;
    }

    private Candidate Start(IKubernetes client, LeaderElectionOptions options)
    {
        var candidate = new Candidate
        {
            Id = options.Identity,
            Election = new LeaderElection(client, options, TestLog.For(output, options.Identity)),
            Stop = new CancellationTokenSource(TimeSpan.FromSeconds(90)),
        };
        candidate.Run = candidate.Election.RunAsync(async leading =>
        {
            candidate.Started = true;
            try
            {
                await Task.Delay(Timeout.Infinite, leading);
            }
            finally
            {
                candidate.Ended = true;
            }
        }, candidate.Stop.Token);
        return candidate;
    }

    private static Task Until(Func<bool> condition, string what) => Eventually.Until(() => Task.FromResult(condition()), Wait, what);

    [Fact]
    public async Task One_of_two_leads_and_cancelling_it_releases_the_lease_to_the_standby()
    {
        await using var c = await Cluster.StartAsync();
        var recordA = new RecordingHandler();
        // A long lease (60 s): the standby can only take over within the deadline because the leader released it.
        var a = Start(c.NewClient(recordA), Options("a", lease: 60, renew: 40, retry: 0.25));
        await Until(() => a.Leading, "a leads");
        var b = Start(c.NewClient(), Options("b", lease: 60, renew: 40, retry: 0.25));
        await Until(() => b.Election.CurrentLeader == "a", "b observes a");
        Assert.True(a.Election.IsLeader);
        Assert.False(b.Election.IsLeader);
        Assert.False(b.Started);
        var lease = await c.Client.CoordinationV1.ReadNamespacedLeaseAsync(LeaseName, "default");
        Assert.Equal("a", lease.Spec.HolderIdentity);
        Assert.Equal(60, lease.Spec.LeaseDurationSeconds);

        await a.Stop.CancelAsync();
        await a.Run.WaitAsync(Wait);
        Assert.True(a.Ended);
        Assert.False(a.Election.IsLeader);
        Assert.False(a.Election.LostLeadership);
        // The release as written: an empty holder with a 1 s lease, on the Lease version just read.
        var release = Assert.Single(recordA.Requests, r => r.Method == "PUT" && r.Path.EndsWith("/leases/" + LeaseName, StringComparison.Ordinal)
            && JsonNode.Parse(r.Body!)!["spec"]!["holderIdentity"]!.GetValue<string>() == "");
        var released = JsonNode.Parse(release.Body!)!;
        Assert.Equal(1, released["spec"]!["leaseDurationSeconds"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(released["metadata"]!["resourceVersion"]?.GetValue<string>()));

        await Until(() => b.Leading, "b leads after a's release (long before a's 60 s lease would have expired)");
        var after = await c.Client.CoordinationV1.ReadNamespacedLeaseAsync(LeaseName, "default");
        Assert.Equal("b", after.Spec.HolderIdentity);

        // Alone, the last leader's cancellation leaves the released Lease behind.
        await b.Stop.CancelAsync();
        await b.Run.WaitAsync(Wait);
        var empty = await c.Client.CoordinationV1.ReadNamespacedLeaseAsync(LeaseName, "default");
        Assert.Equal("", empty.Spec.HolderIdentity);
        Assert.Equal(1, empty.Spec.LeaseDurationSeconds);
    }

    [Fact]
    public async Task Of_three_racing_candidates_exactly_one_leads()
    {
        await using var c = await Cluster.StartAsync();
        var candidates = new[] { "x", "y", "z" }.Select(id => Start(c.NewClient(), Options(id))).ToArray();
        await Until(() => candidates.Any(k => k.Leading), "someone leads");
        await Until(() => candidates.All(k => k.Election.CurrentLeader is not null), "everyone observed the leader");
        var leader = candidates.Single(k => k.Leading);
        Assert.All(candidates, k => Assert.Equal(leader.Id, k.Election.CurrentLeader));
        var lease = await c.Client.CoordinationV1.ReadNamespacedLeaseAsync(LeaseName, "default");
        Assert.Equal(leader.Id, lease.Spec.HolderIdentity);
        foreach (var k in candidates)
        {
            await k.Stop.CancelAsync();
        }

        await Task.WhenAll(candidates.Select(k => k.Run)).WaitAsync(Wait);
    }

    [Fact]
    public async Task It_keeps_campaigning_while_the_server_is_unreachable()
    {
        await using var c = await Cluster.StartAsync();
        var network = new RecordingHandler { Unreachable = true };
        var a = Start(c.NewClient(network), Options("a"));
        await Until(() => Volatile.Read(ref network.Failed) >= 3, "several failed attempts");
        Assert.False(a.Started);
        Assert.False(a.Run.IsCompleted);
        network.Unreachable = false;
        await Until(() => a.Leading, "a leads once the server is reachable");
        await a.Stop.CancelAsync();
        await a.Run.WaitAsync(Wait);
    }

    [Fact]
    public void Timings_are_validated()
    {
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:1" });
        var log = TestLog.For(null, "x");
        Assert.Throws<ArgumentException>(() => new LeaderElection(client, Options("a", lease: 2, renew: 2, retry: 0.5), log));
        Assert.Throws<ArgumentException>(() => new LeaderElection(client, Options("a", lease: 3, renew: 1, retry: 1), log));
        Assert.Throws<ArgumentException>(() => new LeaderElection(client, Options("", lease: 3, renew: 2, retry: 1), log));
    }
}
