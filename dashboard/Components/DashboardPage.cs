using System.Security.Claims;
using Dgon.Dashboard.Api;
using Microsoft.AspNetCore.Components;

namespace Dgon.Dashboard.Components;

/// <summary>
/// Base of the dashboard's pages (static server rendering): the request, its abort token, the signed-in user, the
/// API client (which sends the user's session token) and <see cref="Check{T}"/>, which turns an API 401 into a
/// redirect to <c>/login</c> (the user is already signed out by <see cref="Auth.SessionBearerHandler"/>).
/// </summary>
public abstract class DashboardPage : ComponentBase
{
    /// <summary>The current request (static server rendering).</summary>
    [CascadingParameter]
    public HttpContext? HttpContext { get; set; }

    /// <summary>Navigation, for the redirect to <c>/login</c>.</summary>
    [Inject]
    protected NavigationManager Navigation { get; set; } = null!;

    /// <summary>The DGON API client of this request.</summary>
    [Inject]
    protected DgonApiClient Api { get; set; } = null!;

    /// <summary>Settings.</summary>
    [Inject]
    protected DashboardOptions Options { get; set; } = null!;

    /// <summary>The request's abort token.</summary>
    protected CancellationToken Aborted => HttpContext?.RequestAborted ?? CancellationToken.None;

    /// <summary>The signed-in user (anonymous when nobody is).</summary>
    protected ClaimsPrincipal User => HttpContext?.User ?? new ClaimsPrincipal();

    /// <summary>Returns <paramref name="result"/>; when the API answered 401, redirects to <c>/login?returnUrl=</c> this page instead.</summary>
    protected ApiResult<T> Check<T>(ApiResult<T> result)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(result);
        if (result.Failure is { Kind: ApiFailureKind.Unauthorized })
        {
            var here = "/" + Navigation.ToBaseRelativePath(Navigation.Uri);
            Navigation.NavigateTo("/login?expired=1&returnUrl=" + Uri.EscapeDataString(here));
        }

        return result;
    }
}
