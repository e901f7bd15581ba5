using Dgon.Domain.Ports;
using Dgon.Observability.Nodes;

namespace Dgon.Api.Observability;

/// <summary>
/// Standalone mode's node snapshot for the node gauges: every node of this replica's <see cref="Fleet.NodeTable"/>
/// (issue 11: no query per scrape), or — before the table is loaded — from PostgreSQL through
/// <see cref="INodeQueries"/> in pages of <see cref="PageSize"/>.
/// </summary>
public sealed class StandaloneNodeSnapshot(IServiceScopeFactory scopes, Fleet.NodeTable table) : INodeSnapshotSource
{
    /// <summary>Nodes read per query.</summary>
    public const int PageSize = 1000;

    /// <inheritdoc />
    /// <exception cref="Npgsql.NpgsqlException">The database is unreachable (the scrape then has no node series).</exception>
    public async Task<IReadOnlyCollection<NodeRecord>?> GetNodesAsync(CancellationToken cancellationToken)
    {
        if (table.Loaded)
        {
            return table.Snapshot();
        }

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
