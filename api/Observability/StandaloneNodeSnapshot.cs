using Dgon.Domain.Ports;
using Dgon.Observability.Nodes;

namespace Dgon.Api.Observability;

/// <summary>
/// Standalone mode's node snapshot for the node gauges: every node from PostgreSQL (through
/// <see cref="INodeQueries"/>, in pages of <see cref="PageSize"/>), read once per scrape and visited page by page.
/// </summary>
public sealed class StandaloneNodeSnapshot(IServiceScopeFactory scopes) : INodeSnapshotSource
{
    /// <summary>Nodes read per query.</summary>
    public const int PageSize = 1000;

    /// <inheritdoc />
    /// <exception cref="Npgsql.NpgsqlException">The database is unreachable (the scrape then has no node series).</exception>
    public async ValueTask<bool> VisitNodesAsync(Action<NodeRecord> visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(visit);
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
