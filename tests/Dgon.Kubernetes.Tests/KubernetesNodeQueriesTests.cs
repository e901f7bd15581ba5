using Dgon.Api.Kubernetes;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes.Controllers;

namespace Dgon.Kubernetes.Tests;

/// <summary><see cref="KubernetesNodeQueries"/> (node reads from the API's own cache) against an in-memory <see cref="IInformer{T}"/>.</summary>
public sealed class KubernetesNodeQueriesTests
{
    private static DgonNode Node(string name, string? phase, string region = "eu-west", string ns = "default", string runtime = "ollama")
    {
        var node = Cluster.Node(name, ns);
        node.Spec.Region = region;
        node.Spec.Runtime = runtime;
        node.Status = phase is null ? null : new DgonNodeStatus { Phase = phase };
        return node;
    }

    private static KubernetesNodeQueries Queries(params DgonNode[] nodes) => new(new ListInformer(nodes), new KubeNamespace("default"));

    [Fact]
    public async Task Pages_by_id_in_ordinal_order()
    {
        var queries = Queries([.. new[] { "n3", "n1", "n5", "n2", "n4" }.Select(n => Node(n, "Active"))]);
        var first = await queries.ListAsync(new NodeListQuery(null, null, 2, null), CancellationToken.None);
        Assert.Equal(["n1", "n2"], first.Items.Select(n => n.Id));
        Assert.Equal("n2", first.NextAfter);
        var second = await queries.ListAsync(new NodeListQuery(null, null, 2, first.NextAfter), CancellationToken.None);
        Assert.Equal(["n3", "n4"], second.Items.Select(n => n.Id));
        var last = await queries.ListAsync(new NodeListQuery(null, null, 2, second.NextAfter), CancellationToken.None);
        Assert.Equal(["n5"], last.Items.Select(n => n.Id));
        Assert.Null(last.NextAfter);
    }

    [Fact]
    public async Task Filters_by_phase_and_region_and_shows_only_this_namespace()
    {
        var gone = Node("deleting", "Active");
        gone.Metadata.DeletionTimestamp = DateTime.UtcNow;
        var queries = Queries(
            Node("a", "Active"), Node("b", "Offline"), Node("c", "Active", "us-east"), Node("d", null), Node("e", "active"),
            Node("other-ns", "Active", ns: "elsewhere"), gone, Node("bad-runtime", "Active", runtime: "mystery"));

        var active = await queries.ListAsync(new NodeListQuery(NodePhase.Active, null, 50, null), CancellationToken.None);
        Assert.Equal(["a", "c", "e"], active.Items.Select(n => n.Id)); // "active": a phase written before the CamelCase CRD
        var euActive = await queries.ListAsync(new NodeListQuery(NodePhase.Active, "eu-west", 50, null), CancellationToken.None);
        Assert.Equal(["a", "e"], euActive.Items.Select(n => n.Id));
        var pending = await queries.ListAsync(new NodeListQuery(NodePhase.Pending, null, 50, null), CancellationToken.None);
        Assert.Equal(["d"], pending.Items.Select(n => n.Id)); // no status yet: pending

        var counts = await queries.CountByPhaseAsync(CancellationToken.None);
        Assert.Equal(NodePhases.All.Count, counts.Count);
        Assert.Equal((3, 1, 1, 0), (counts[NodePhase.Active], counts[NodePhase.Offline], counts[NodePhase.Pending], counts[NodePhase.Quarantine]));
    }

    [Fact]
    public async Task Before_the_first_list_it_is_not_ready()
    {
        var queries = new KubernetesNodeQueries(new ListInformer([]) { Synced = false }, new KubeNamespace("default"));
        await Assert.ThrowsAsync<KubernetesNotReadyException>(() => queries.CountByPhaseAsync(CancellationToken.None));
    }

    /// <summary>An in-memory <see cref="IInformer{T}"/>: a fixed, synced cache.</summary>
    private sealed class ListInformer(IReadOnlyList<DgonNode> nodes) : IInformer<DgonNode>
    {
        public bool Synced { get; init; } = true;

        public bool HasSynced => Synced;

        public string? LastSyncResourceVersion => "1";

        public Task RunAsync(CancellationToken ct) => Task.Delay(Timeout.Infinite, ct);

        public Task WaitForSyncAsync(CancellationToken ct) => Synced ? Task.CompletedTask : Task.Delay(Timeout.Infinite, ct);

        public bool TryGet(string? ns, string name, out DgonNode? obj)
        {
            obj = nodes.FirstOrDefault(n => n.Metadata.NamespaceProperty == ns && n.Metadata.Name == name);
            return obj is not null;
        }

        public IReadOnlyList<DgonNode> List() => nodes;

        public IDisposable AddHandler(IInformerHandler<DgonNode> handler)
        {
            foreach (var node in nodes)
            {
                handler.OnAdd(node);
            }

            return new Nothing();
        }

        private sealed class Nothing : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }
}
