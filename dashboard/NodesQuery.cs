using Dgon.Dashboard.Api;
using Microsoft.AspNetCore.WebUtilities;

namespace Dgon.Dashboard;

/// <summary>
/// Everything the Nodes page and its fragment read from the URL: the filter and the page position. The same query
/// string serves the page (<c>nodes?…</c>) and its live refresh (<c>fragments/nodes?…</c>), so a refresh re-reads
/// exactly the page being looked at: one <c>GET /v1/nodes</c> request of <see cref="PageSize"/> nodes.
/// </summary>
/// <param name="Filter">Status, region and id-prefix filter.</param>
/// <param name="Position">Which page of the filtered list.</param>
public sealed record NodesQuery(NodeFilter Filter, NodePagePosition Position)
{
    /// <summary>Nodes per page (the API's <c>limit</c>; it allows 1–1000).</summary>
    public const int PageSize = 50;

    /// <summary>From raw query values (<c>status, region, prefix, cursor, trail, page</c>); see <see cref="NodeFilter.Create"/> and <see cref="NodePagePosition.Create"/>.</summary>
    public static NodesQuery Create(string? status, string? region, string? prefix, string? cursor, string? trail, string? page) =>
        new(NodeFilter.Create(status, region, prefix), NodePagePosition.Create(cursor, trail, page));

    /// <summary>This filter at another position.</summary>
    public NodesQuery At(NodePagePosition position) => this with { Position = position };

    /// <summary>Appends the query string to <paramref name="path"/>, e.g. <c>nodes?status=active&amp;cursor=bm9kZS0x&amp;page=2</c>.</summary>
    public string AppendTo(string path)
    {
        var query = new Dictionary<string, string?>(StringComparer.Ordinal);
        Filter.AddTo(query);
        Position.AddTo(query);
        return QueryHelpers.AddQueryString(path, query);
    }

    /// <summary>
    /// Reads this page: one <c>GET /v1/nodes</c> request of <see cref="PageSize"/> nodes, or none when the prefix is
    /// invalid (then an empty last page: the Nodes page explains the prefix instead).
    /// </summary>
    public Task<ApiResult<NodePage>> LoadAsync(DgonApiClient api, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(api);
        return Filter.InvalidPrefix is not null
            ? Task.FromResult(ApiResult<NodePage>.Success(new NodePage([], null)))
            : api.GetNodePageAsync(this, PageSize, cancellationToken);
    }
}
