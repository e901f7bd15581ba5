using System.Diagnostics;
using System.Net;
using Dgon.Kubernetes;
using Dgon.Kubernetes.DgonNodes;
using Dgon.KubeTestServer;
using Dgon.Testing;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace Dgon.Operator.Tests;

/// <summary>
/// Two operator replicas against one Kubernetes API test server (lease 4 s, renew 3 s, retry 0.5 s): exactly one
/// leads; a killed leader is replaced within the issue's 15 s; a gracefully stopped one releases the Lease (KubernetesClient's
/// elector plus our release on shutdown) and the standby takes it at its next retry.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LeaderElectionTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<OperatorProcess> _operators = [];
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dgon-leader-");
    private KubeApiTestServer _server = null!;
    private string _kubeconfig = null!;
    private string _databaseUrl = null!;
    private IKubernetes _kube = null!;

    public async Task InitializeAsync()
    {
        _server = await KubeApiTestServer.StartAsync();
        _kubeconfig = _server.WriteKubeconfig(Path.Combine(_dir.FullName, "kubeconfig"), KubernetesModeFixture.Namespace);
        _kube = new k8s.Kubernetes(KubernetesClients.LoadConfiguration(_kubeconfig));
        _databaseUrl = await (await SharedPostgres.GetAsync()).CreateDatabaseAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var o in _operators)
        {
            output.WriteLine(o.Process.Dump());
            await o.DisposeAsync();
        }

        await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    private async Task<OperatorProcess> StartAsync(string identity)
    {
        var op = await OperatorProcess.StartAsync(new OperatorProcessOptions
        {
            DatabaseUrl = _databaseUrl,
            Kubeconfig = _kubeconfig,
            Identity = identity,
            GraceSeconds = KubernetesModeFixture.GraceSeconds,
            RefreshSeconds = KubernetesModeFixture.RefreshSeconds,
        });
        _operators.Add(op);
        return op;
    }

    private async Task<V1Lease?> LeaseAsync()
    {
        try
        {
            return await _kube.CoordinationV1.ReadNamespacedLeaseAsync("dgon-operator", KubernetesModeFixture.Namespace);
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return null;
        }
    }

    private async Task<string?> HolderAsync() => (await LeaseAsync())?.Spec?.HolderIdentity;

    private static async Task<Exposition> MetricsOf(OperatorProcess op)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await Exposition.ScrapeAsync(http, op.BaseAddress);
    }

    private async Task<(OperatorProcess Leader, OperatorProcess Standby)> TwoReplicasAsync()
    {
        var a = await StartAsync("operator-a");
        var b = await StartAsync("operator-b");
        await Eventually.Until(async () => await HolderAsync() is "operator-a" or "operator-b", TimeSpan.FromSeconds(30), "a leader");
        var holder = await HolderAsync();
        var (leader, standby) = holder == a.Identity ? (a, b) : (b, a);
        Assert.True(await leader.Process.WaitForOutputAsync(l => l.Contains("is the leader", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), leader.Process.Dump());
        return (leader, standby);
    }

    [Fact]
    public async Task Only_one_replica_leads_and_the_standby_takes_over_within_15_s_of_the_leader_dying()
    {
        var (leader, standby) = await TwoReplicasAsync();
        // Two renewals by the leader (renewTime moves on), and the standby still does not lead.
        var renewed = (await LeaseAsync())!.Spec.RenewTime;
        for (var i = 0; i < 2; i++)
        {
            var seen = renewed;
            await Eventually.Until(async () => (renewed = (await LeaseAsync())!.Spec.RenewTime) > seen, TimeSpan.FromSeconds(30), "a renewal");
            Assert.Equal(leader.Identity, await HolderAsync());
        }

        Assert.DoesNotContain(standby.Process.Output, l => l.Contains("is the leader", StringComparison.Ordinal));

        leader.Process.Kill(); // no release: the standby must wait out the lease
        var died = Stopwatch.StartNew();
        await Eventually.Until(async () => await HolderAsync() == standby.Identity, TimeSpan.FromSeconds(30), "the standby leads");
        Assert.True(died.Elapsed <= TimeSpan.FromSeconds(15), $"took over after {died.Elapsed.TotalSeconds:0.0} s");
        Assert.True(await standby.Process.WaitForOutputAsync(l => l.Contains("is the leader", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), standby.Process.Dump());

        // The new leader reconciles: a DgonNode created now is mirrored into PostgreSQL, served by /v1/nodes.
        await using var api = await KubernetesModeFixture.StartApiAsync(_databaseUrl, _kubeconfig);
        var node = await TestNode.RegisterAsync(api.Client, $"after-{Guid.NewGuid().ToString("N")[..8]}");
        using (var hb = await node.HeartbeatAsync(ready: true))
        {
            Assert.Equal(HttpStatusCode.OK, hb.StatusCode);
        }

        await Eventually.Until(
            async () => (await api.Admin.GetStringAsync("/v1/nodes")).Contains($"\"id\":\"{node.NodeId}\"", StringComparison.Ordinal)
                && (await _kube.TryGetDgonNodeAsync(KubernetesModeFixture.Namespace, node.NodeId, CancellationToken.None))?.Status?.ObservedGeneration is not null,
            TimeSpan.FromSeconds(30),
            "the new leader reconciled and mirrored the node");
    }

    [Fact]
    public async Task Graceful_shutdown_releases_the_lease_to_the_standby()
    {
        var (leader, standby) = await TwoReplicasAsync();
        var before = (await LeaseAsync())!;

        // Only the leader exports node series (one owner per fleet); both say who leads.
        await Eventually.Until(async () => (await MetricsOf(leader)).Find("dgon_nodes").Any(), TimeSpan.FromSeconds(30), "the leader's fleet gauge");
        Assert.Equal(1, (await MetricsOf(leader)).Sum("dgon_operator_leader"));
        var standbyMetrics = await MetricsOf(standby);
        Assert.Equal(0, standbyMetrics.Sum("dgon_operator_leader"));
        Assert.DoesNotContain(standbyMetrics.Samples, s => s.Name.StartsWith("dgon_node", StringComparison.Ordinal));

        // /readyz: both ready, and each says its role (the README's claim).
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            Assert.Contains("\"role\":\"leader\"", await http.GetStringAsync(new Uri(leader.BaseAddress, "/readyz")), StringComparison.Ordinal);
            Assert.Contains("\"role\":\"standby\"", await http.GetStringAsync(new Uri(standby.BaseAddress, "/readyz")), StringComparison.Ordinal);
        }

        await leader.Process.StopAsync(); // SIGTERM
        Assert.Equal(0, leader.Process.ExitCode);
        // Released on the way out (client-go's ReleaseOnCancel, added to the library's elector): nobody holds it any
        // more, or the standby already took it.
        Assert.NotEqual(leader.Identity, await HolderAsync());
        Assert.Contains(leader.Process.Output, l => l.Contains("released Lease", StringComparison.Ordinal));

        await Eventually.Until(async () => await HolderAsync() == standby.Identity, TimeSpan.FromSeconds(30), "the standby leads");
        var after = (await LeaseAsync())!;
        Assert.True(after.Spec!.LeaseTransitions > before.Spec!.LeaseTransitions, "leaseTransitions counts the hand-over");
        await Eventually.Until(async () => (await MetricsOf(standby)).Sum("dgon_operator_leader") == 1, TimeSpan.FromSeconds(30), "the new leader's dgon_operator_leader");
    }
}
