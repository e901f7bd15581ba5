using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="INodeQueries"/> on the PostgreSQL <c>nodes</c> table: in standalone mode the registry's own rows, in
/// Kubernetes mode the operator's mirror of the DgonNodes. Read-only, no tracking.
/// </summary>
public sealed class PostgresNodeQueries(DgonDbContext db) : INodeQueries
{
    /// <inheritdoc />
    public async Task<NodePage> ListAsync(NodeListQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var nodes = db.Nodes.AsNoTracking();
        if (query.Phase is { } phase)
        {
            var wire = phase.ToWire();
            nodes = nodes.Where(n => n.Status == wire);
        }

        if (query.Region is { } region)
        {
            nodes = nodes.Where(n => n.Region == region);
        }

        if (query.IdPrefix is { Length: > 0 } prefix)
        {
            // ids are COLLATE "C", so LIKE 'prefix%' is a range of the primary key (a prefix is [a-z0-9-], nothing to escape).
            nodes = nodes.Where(n => n.Id.StartsWith(prefix));
        }

        if (query.OwnerId is { } owner)
        {
            nodes = nodes.Where(n => n.OwnerId == owner);
        }

        if (query.After is { } after)
        {
            nodes = nodes.Where(n => string.Compare(n.Id, after) > 0);
        }

        var rows = await nodes.OrderBy(n => n.Id).Take(query.Limit + 1).ToListAsync(cancellationToken);
        var hasMore = rows.Count > query.Limit;
        if (hasMore)
        {
            rows.RemoveAt(rows.Count - 1);
        }

        return new NodePage(rows.Select(PostgresNodeRegistry.ToRecord).ToList(), hasMore ? rows[^1].Id : null);
    }

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<NodePhase, int>> CountByPhaseAsync(CancellationToken cancellationToken) =>
        CountAsync(db.Nodes.AsNoTracking(), cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<NodePhase, int>> CountOwnedByPhaseAsync(string ownerId, CancellationToken cancellationToken) =>
        CountAsync(db.Nodes.AsNoTracking().Where(n => n.OwnerId == ownerId), cancellationToken);

    private static async Task<IReadOnlyDictionary<NodePhase, int>> CountAsync(IQueryable<NodeEntity> nodes, CancellationToken cancellationToken)
    {
        var counts = await nodes
            .GroupBy(n => n.Status)
            .Select(g => new { Status = g.Key, Count = g.Count() })
            .ToListAsync(cancellationToken);
        var result = NodePhases.All.ToDictionary(p => p, _ => 0);
        foreach (var c in counts)
        {
            result[PostgresNodeRegistry.ParsePhase(c.Status)] = c.Count;
        }

        return result;
    }
}
