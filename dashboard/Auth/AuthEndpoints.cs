using Dgon.Dashboard.Api;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace Dgon.Dashboard.Auth;

/// <summary>Form endpoints outside the Razor pages: logout and the node actions of the (live-refreshed) nodes table.</summary>
public static class AuthEndpoints
{
    /// <summary>The node actions the table offers, as posted in the URL (<c>/nodes/{id}/actions/{action}</c>).</summary>
    public static readonly string[] NodeActions = ["quarantine", "release", "reset-key", "delete"];

    /// <summary>
    /// Maps <c>POST /logout</c> (antiforgery checked; ends the API session with <c>DELETE /v1/auth/sessions/current</c>,
    /// then the cookie) and <c>POST /nodes/{id}/actions/{action}</c> (operator or admin; antiforgery checked; answers a
    /// 303 back to the form's <c>returnUrl</c> with <c>done=</c>/<c>failed=</c> and <c>node=</c>).
    /// A POST without a valid antiforgery token answers 400.
    /// </summary>
    public static IEndpointRouteBuilder MapAuthEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/logout", async (HttpContext context, IAntiforgery antiforgery, DgonApiClient api) =>
        {
            if (!await antiforgery.IsRequestValidAsync(context))
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "A valid antiforgery token was not provided.");
            }

            if (context.User.SessionToken() is { } token)
            {
                await api.LogoutAsync(token, context.RequestAborted); // a dead session (401) is as good as logged out
            }

            await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return Results.Redirect("/login?loggedOut=1", permanent: false, preserveMethod: false);
        }).AllowAnonymous().DisableAntiforgery();

        endpoints.MapPost("/nodes/{id}/actions/{action}", async (string id, string action, HttpContext context, IAntiforgery antiforgery, DgonApiClient api) =>
        {
            if (!await antiforgery.IsRequestValidAsync(context))
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "A valid antiforgery token was not provided.");
            }

            if (!NodeActions.Contains(action, StringComparer.Ordinal))
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: $"No node action '{action}'.");
            }

            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            var back = DashboardAuthSetup.SafeReturnUrl(form["returnUrl"]);
            var result = await api.NodeActionAsync(id, action, context.RequestAborted);
            if (result.Failure is { Kind: ApiFailureKind.Unauthorized })
            {
                return Results.Redirect("/login?returnUrl=" + Uri.EscapeDataString(back));
            }

            var separator = back.Contains('?', StringComparison.Ordinal) ? '&' : '?';
            var outcome = result.Succeeded ? "done=" + action : "failed=" + action;
            return Results.Redirect($"{back}{separator}{outcome}&node={Uri.EscapeDataString(id)}", permanent: false, preserveMethod: false);
        }).RequireAuthorization(DashboardPolicies.Provider).DisableAntiforgery();

        return endpoints;
    }
}
