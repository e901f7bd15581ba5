using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;

namespace Dgon.Api.Kubernetes;

/// <summary>
/// <see cref="INodeQueries"/> in Kubernetes mode, answered from the API's own informer cache of DgonNodes (issue 10):
/// <c>GET /v1/nodes</c> and <c>/v1/summary</c> see a node as soon as this API's watch does, with no wait for the
/// operator's PostgreSQL mirror (which stays for receipts and history). Each call copies the cache once (O(n));
/// paging is by id as in standalone mode. Throws <see cref="KubernetesNotReadyException"/> (503) until the first
/// LIST completes.
/// </summary>
public sealed class KubernetesNodeQueries(IInformer<DgonNode> nodes, KubeNamespace ns) : INodeQueries
{
    /// <inheritdoc />
    public Task<NodePage> ListAsync(NodeListQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var selected = Snapshot()
            .Where(n => query.Phase is not { } phase || n.Phase == phase)
            .Where(n => query.Region is not { } region || string.Equals(n.Region, region, StringComparison.Ordinal))
            .Where(n => query.After is not { } after || string.CompareOrdinal(n.Id, after) > 0)
            .Where(n => query.IdPrefix is not { } prefix || n.Id.StartsWith(prefix, StringComparison.Ordinal))
            .Where(n => query.OwnerId is not { } owner || string.Equals(n.OwnerId, owner, StringComparison.Ordinal))
            .OrderBy(n => n.Id, StringComparer.Ordinal)
            .Take(query.Limit + 1)
            .ToList();
        var hasMore = selected.Count > query.Limit;
        if (hasMore)
        {
            selected.RemoveAt(selected.Count - 1);
        }

        return Task.FromResult(new NodePage(selected, hasMore ? selected[^1].Id : null));
    }

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<NodePhase, int>> CountByPhaseAsync(CancellationToken cancellationToken) => Count(null);

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<NodePhase, int>> CountOwnedByPhaseAsync(string ownerId, CancellationToken cancellationToken) => Count(ownerId);

    private Task<IReadOnlyDictionary<NodePhase, int>> Count(string? ownerId)
    {
        var result = NodePhases.All.ToDictionary(p => p, _ => 0);
        foreach (var node in Snapshot().Where(n => ownerId is null || string.Equals(n.OwnerId, ownerId, StringComparison.Ordinal)))
        {
            result[node.Phase]++;
        }

        return Task.FromResult<IReadOnlyDictionary<NodePhase, int>>(result);
    }

    private IEnumerable<NodeRecord> Snapshot()
    {
        if (!nodes.HasSynced)
        {
            throw new KubernetesNotReadyException("the DgonNode cache has not completed its first list yet");
        }

        foreach (var node in nodes.List())
        {
            if (node.Metadata.NamespaceProperty == ns.Name && node.Metadata.DeletionTimestamp is null)
            {
                NodeRecord record;
                try
                {
                    record = DgonNodeMapping.ToRecord(node);
                }
                catch (FormatException)
                {
                    continue; // not one of ours to show (schema-invalid, e.g. written by hand around validation)
                }

                yield return record;
            }
        }
    }
}
