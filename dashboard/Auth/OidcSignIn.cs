using Dgon.Dashboard.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Dgon.Dashboard.Auth;

/// <summary>
/// Single sign-on (issue 12) with ASP.NET Core's OpenID Connect handler: the authorization-code flow with PKCE (and
/// the client secret when one is set) against <c>DGON_OIDC_AUTHORITY</c>, callback <c>/auth/oidc/callback</c>. The
/// handler checks the ID token and its nonce for the dashboard; the dashboard then hands the ID token to the API
/// (<c>POST /v1/auth/sessions/oidc</c>), which validates it again itself, maps the role claim and answers a DGON session —
/// so the cookie holds the same kind of principal as a password login, and the API never trusts the dashboard's word.
/// </summary>
public static class OidcSignIn
{
    /// <summary>Authentication scheme name.</summary>
    public const string Scheme = "oidc";

    /// <summary>Path that starts the flow (<c>?returnUrl=</c> optional).</summary>
    public const string StartPath = "/auth/oidc";

    /// <summary>Callback path registered at the identity provider: <c>{dashboard}/auth/oidc/callback</c>.</summary>
    public const string CallbackPath = "/auth/oidc/callback";

    /// <summary>Adds the OpenID Connect handler.</summary>
    public static AuthenticationBuilder AddDgonOidc(this AuthenticationBuilder builder, OidcSettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        return builder.AddOpenIdConnect(Scheme, settings.DisplayName, oidc =>
        {
            oidc.Authority = settings.Authority;
            oidc.RequireHttpsMetadata = new Uri(settings.Authority).Scheme == Uri.UriSchemeHttps;
            oidc.ClientId = settings.ClientId;
            oidc.ClientSecret = settings.ClientSecret;
            oidc.ResponseType = OpenIdConnectResponseType.Code;
            oidc.UsePkce = true;
            // The code comes back on a top-level GET (not form_post), so the SameSite=Lax correlation and nonce
            // cookies travel with it even when the identity provider is another site.
            oidc.ResponseMode = OpenIdConnectResponseMode.Query;
            oidc.CallbackPath = CallbackPath;
            oidc.SignInScheme = CookieAuthenticationDefaults.AuthenticationScheme;
            oidc.MapInboundClaims = false;
            oidc.SaveTokens = false;
            oidc.GetClaimsFromUserInfoEndpoint = false;
            oidc.Scope.Clear();
            foreach (var scope in settings.Scopes)
            {
                oidc.Scope.Add(scope);
            }

            oidc.CorrelationCookie.SameSite = SameSiteMode.Lax;
            oidc.NonceCookie.SameSite = SameSiteMode.Lax;
            oidc.Events.OnTokenValidated = async context =>
            {
                var idToken = context.TokenEndpointResponse?.IdToken ?? context.ProtocolMessage?.IdToken;
                if (string.IsNullOrEmpty(idToken))
                {
                    context.Fail("the identity provider returned no ID token");
                    return;
                }

                var api = context.HttpContext.RequestServices.GetRequiredService<DgonApiClient>();
                var session = await api.LoginWithIdTokenAsync(idToken, context.HttpContext.RequestAborted);
                if (!session.Succeeded)
                {
                    context.Fail("the API refused the sign-in: " + session.Failure.Detail);
                    return;
                }

                context.Principal = DashboardClaims.Principal(session.Value);
                context.Properties!.ExpiresUtc = session.Value.ExpiresAt;
            };
            oidc.Events.OnRemoteFailure = context =>
            {
                context.Response.Redirect("/login?sso=failed");
                context.HandleResponse();
                return Task.CompletedTask;
            };
        });
    }

    /// <summary>Maps <c>GET /auth/oidc</c>: a challenge of the OpenID Connect scheme, coming back to a local <c>returnUrl</c>.</summary>
    public static IEndpointRouteBuilder MapOidcSignIn(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(StartPath, (HttpContext context, string? returnUrl) =>
            Results.Challenge(new AuthenticationProperties { RedirectUri = DashboardAuthSetup.SafeReturnUrl(returnUrl) }, [Scheme]))
            .AllowAnonymous();
        return endpoints;
    }
}
