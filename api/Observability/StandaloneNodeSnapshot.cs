using Dgon.Domain.Ports;
using Dgon.Observability.Nodes;

namespace Dgon.Api.Observability;

/// <summary>
/// Standalone mode's node snapshot for the node gauges: every node from PostgreSQL (through
/// <see cref="INodeQueries"/>, in pages of <see cref="PageSize"/>), read once per scrape.
/// </summary>
public sealed class StandaloneNodeSnapshot(IServiceScopeFactory scopes) : INodeSnapshotSource
{
    /// <summary>Nodes read per query.</summary>
    public const int PageSize = 1000;

    /// <inheritdoc />
    /// <exception cref="Npgsql.NpgsqlException">The database is unreachable (the scrape then has no node series).</exception>
    public async Task<IReadOnlyCollection<NodeRecord>?> GetNodesAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var queries = scope.ServiceProvider.GetRequiredService<INodeQueries>();
        var nodes = new List<NodeRecord>();
        string? after = null;
        do
        {
            var page = await queries.ListAsync(new NodeListQuery(null, null, PageSize, after), cancellationToken);
            nodes.AddRange(page.Items);
            after = page.NextAfter;
        }
        while (after is not null);

        return nodes;
    }
}
