using Dgon.Dashboard.Api;
using Dgon.Dashboard.Auth;
using Dgon.Dashboard.Components;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dgon.Dashboard;

/// <summary>
/// HTML fragments that htmx polls to refresh a page in place (<c>hx-get</c> + <c>hx-trigger="every Ns"</c>).
/// Each renders the same component the page renders, so the swapped markup is identical to a full page load.
/// API trouble is rendered as a banner inside a 200 response: htmx swaps it in and keeps polling.
/// </summary>
public static class FragmentEndpoints
{
    /// <summary>
    /// Maps <c>GET /fragments/summary</c> (one <c>GET /v1/summary</c>) and
    /// <c>GET /fragments/nodes?status=&amp;region=&amp;prefix=&amp;cursor=&amp;trail=&amp;page=</c> (the page being looked
    /// at: one <c>GET /v1/nodes</c> of <see cref="NodesQuery.PageSize"/> nodes, see <see cref="NodesQuery"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapFragments(this IEndpointRouteBuilder endpoints)
    {
        var fragments = endpoints.MapGroup("/fragments").RequireAuthorization(DashboardPolicies.Reads).AddEndpointFilter(async (context, next) =>
        {
            context.HttpContext.Response.Headers.CacheControl = "no-store";
            var result = await next(context);

            // The API answered 401 (session expired or revoked, or no login where the API needs one): the whole page
            // goes to /login instead of a swap (SessionBearerHandler has signed the user out).
            if (context.HttpContext.Items.ContainsKey(SessionBearerHandler.SessionEndedKey))
            {
                await DashboardAuthSetup.Redirect(context.HttpContext, "/login?expired=1", StatusCodes.Status401Unauthorized);
                return Results.Empty;
            }

            return result;
        });

        fragments.MapGet("/summary", async (DgonApiClient api, CancellationToken cancellationToken) =>
            new RazorComponentResult<SummaryCards>(new Dictionary<string, object?>
            {
                [nameof(SummaryCards.Result)] = await api.GetSummaryAsync(cancellationToken),
            }));

        fragments.MapGet("/nodes", async (DgonApiClient api, string? status, string? region, string? prefix, string? cursor, string? trail, string? page, CancellationToken cancellationToken) =>
        {
            var query = NodesQuery.Create(status, region, prefix, cursor, trail, page);
            return new RazorComponentResult<NodesTable>(new Dictionary<string, object?>
            {
                [nameof(NodesTable.Query)] = query,
                [nameof(NodesTable.Result)] = await query.LoadAsync(api, cancellationToken),
            });
        });

        return endpoints;
    }
}
