using System.Net;
using System.Net.Http.Headers;
using Dgon.Dashboard.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace Dgon.Dashboard.Auth;

/// <summary>
/// In the <see cref="DgonApiClient"/> pipeline: adds <c>Authorization: Bearer &lt;session token&gt;</c> of the user of
/// the current request (from the auth cookie) to every API call, unless the request is marked
/// <see cref="DgonApiClient.Anonymous"/>. A 401 from the API (session expired or revoked, or no credential where one
/// is needed) signs the user out of the dashboard and marks the request (<see cref="SessionEndedKey"/>) so the page or
/// fragment redirects to <c>/login</c>.
/// </summary>
public sealed class SessionBearerHandler(IHttpContextAccessor accessor) : DelegatingHandler
{
    /// <summary><see cref="HttpContext.Items"/> key set when an API call of this request answered 401.</summary>
    public const string SessionEndedKey = "dgon.session-ended";

    /// <inheritdoc />
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var context = accessor.HttpContext;
        var anonymous = request.Options.TryGetValue(DgonApiClient.Anonymous, out var flag) && flag;
        if (!anonymous && request.Headers.Authorization is null && context?.User.SessionToken() is { } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized && !anonymous && context is not null)
        {
            context.Items[SessionEndedKey] = true;
            if (context.User.IsSignedIn() && !context.Response.HasStarted)
            {
                await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            }
        }

        return response;
    }
}
