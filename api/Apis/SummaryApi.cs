using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Apis;

/// <summary><c>GET /v1/summary</c> (seed 000): <c>{ active_nodes, total_nodes }</c> plus <c>by_status</c>.</summary>
public static class SummaryApi
{
    /// <summary>Maps the summary endpoint.</summary>
    public static IEndpointRouteBuilder MapSummaryApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/summary", SummaryAsync)
            .WithTags("Summary")
            .WithName("GetSummary")
            .WithSummary("Node counts: active, total, and per phase")
            .Produces<SummaryResponse>();
        return app;
    }

    private static async Task<IResult> SummaryAsync(INodeQueries queries, CancellationToken ct)
    {
        var counts = await queries.CountByPhaseAsync(ct);
        var byStatus = counts.ToDictionary(c => c.Key.ToWire(), c => c.Value, StringComparer.Ordinal);
        return TypedResults.Json(
            new SummaryResponse(counts[NodePhase.Active], counts.Values.Sum(), byStatus),
            DgonJsonContext.Default.SummaryResponse);
    }
}
