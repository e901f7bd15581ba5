using Dgon.Api.Accounts;
using Dgon.Api.Inference;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;

namespace Dgon.Api.Apis;

/// <summary>
/// <c>GET /v1/inference/nodes</c> (issue 13, scope <c>nodes:read</c>): the nodes linked for inference — on this
/// replica (with state and tasks in flight) and on the others (from <c>node_links</c>) — each with its latest verified
/// manifest: hardware, models, capacity. The dashboard's Models page and node detail read it. Operators see their own
/// nodes only.
/// </summary>
public static class InferenceNodesApi
{
    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapInferenceNodesApi(this IEndpointRouteBuilder app)
    {
        var endpoint = app.MapGet("/v1/inference/nodes", ListAsync)
            .WithTags("Inference")
            .WithName("ListInferenceNodes")
            .WithSummary("Nodes linked for inference with their manifests (models, hardware, capacity) and, for links held here, state and in-flight tasks")
            .Produces<List<InferenceNodeView>>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        NodesApi.RequireReadScope(app, endpoint);
        return app;
    }

    private static async Task<IResult> ListAsync(HttpContext http, LinkHub hub, RemoteLinks remote, INodeQueries queries, CancellationToken ct)
    {
        var views = new Dictionary<string, InferenceNodeView>(StringComparer.Ordinal);
        foreach (var link in hub.Links)
        {
            views[link.NodeId] = new InferenceNodeView { NodeId = link.NodeId, Local = true, State = link.State, InFlight = link.InFlight, Capacity = link.Capacity, Manifest = link.Manifest };
        }

        foreach (var node in await remote.GetAsync(ct))
        {
            if (node.Manifest is { } manifest && !views.ContainsKey(node.NodeId))
            {
                views[node.NodeId] = new InferenceNodeView { NodeId = node.NodeId, Local = false, Capacity = Math.Max(1, manifest.MaxParallel), Manifest = manifest };
            }
        }

        IEnumerable<InferenceNodeView> visible = views.Values;
        if (http.User.RestrictedToOwner() is { } owner)
        {
            var owned = new HashSet<string>(StringComparer.Ordinal);
            string? after = null;
            do
            {
                var page = await queries.ListAsync(new NodeListQuery(null, null, 1000, after) { OwnerId = owner }, ct);
                owned.UnionWith(page.Items.Select(n => n.Id));
                after = page.NextAfter;
            }
            while (after is not null);
            visible = visible.Where(v => owned.Contains(v.NodeId));
        }

        return TypedResults.Json(visible.OrderBy(v => v.NodeId, StringComparer.Ordinal).ToList(), InferenceJsonContext.Default.ListInferenceNodeView);
    }
}
