using Dgon.Api.Accounts;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Apis;

/// <summary><c>GET /v1/summary</c> (seed 000): <c>{ active_nodes, total_nodes }</c> plus <c>by_status</c>; scope <c>nodes:read</c> unless <c>DGON_OPEN_READS</c>.</summary>
public static class SummaryApi
{
    /// <summary>Maps the summary endpoint.</summary>
    public static IEndpointRouteBuilder MapSummaryApi(this IEndpointRouteBuilder app)
    {
        var endpoint = app.MapGet("/v1/summary", SummaryAsync)
            .WithTags("Summary")
            .WithName("GetSummary")
            .WithSummary("Node counts: active, total, and per phase")
            .Produces<SummaryResponse>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        NodesApi.RequireReadScope(app, endpoint);
        return app;
    }

    private static async Task<IResult> SummaryAsync(HttpContext http, INodeQueries queries, CancellationToken ct)
    {
        // An operator's summary counts their own nodes (issue 12), as their node list shows only those.
        var counts = http.User.RestrictedToOwner() is { } owner
            ? await queries.CountOwnedByPhaseAsync(owner, ct)
            : await queries.CountByPhaseAsync(ct);
        var byStatus = counts.ToDictionary(c => c.Key.ToWire(), c => c.Value, StringComparer.Ordinal);
        return TypedResults.Json(
            new SummaryResponse(counts[NodePhase.Active], counts.Values.Sum(), byStatus),
            DgonJsonContext.Default.SummaryResponse);
    }
}
