using Dgon.Domain.Ports;
using Dgon.Observability.Nodes;

namespace Dgon.Api.Observability;

/// <summary>
/// Standalone mode's node snapshot for the node gauges: every node of this replica's <see cref="Fleet.NodeTable"/>
/// (issue 11: no query and no copy per scrape), or — before the table is loaded — every node from PostgreSQL through
/// <see cref="INodeQueries"/>, visited page by page (<see cref="PageSize"/>).
/// </summary>
public sealed class StandaloneNodeSnapshot(IServiceScopeFactory scopes, Fleet.NodeTable table) : INodeSnapshotSource
{
    /// <summary>Nodes read per query.</summary>
    public const int PageSize = 1000;

    /// <inheritdoc />
    /// <exception cref="Npgsql.NpgsqlException">The table is not loaded yet and the database is unreachable (the scrape then has no node series).</exception>
    public async ValueTask<bool> VisitNodesAsync(Action<NodeRecord> visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (table.Loaded)
        {
            table.Visit(visit);
            return true;
        }

        await using var scope = scopes.CreateAsyncScope();
        var queries = scope.ServiceProvider.GetRequiredService<INodeQueries>();
        string? after = null;
        do
        {
            var page = await queries.ListAsync(new NodeListQuery(null, null, PageSize, after), cancellationToken);
            foreach (var node in page.Items)
            {
                visit(node);
            }

            after = page.NextAfter;
        }
        while (after is not null);

        return true;
    }
}
