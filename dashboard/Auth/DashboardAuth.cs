using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;

namespace Dgon.Dashboard.Auth;

/// <summary>Claim types of the dashboard's auth cookie (the cookie is data-protected: the browser cannot read them).</summary>
public static class DashboardClaims
{
    /// <summary>The API session token <c>dgs_…</c>, sent as <c>Authorization: Bearer</c> on every API call for the user.</summary>
    public const string SessionToken = "dgon:session";

    /// <summary>The role: <c>admin</c>, <c>operator</c> or <c>viewer</c> (also <see cref="ClaimTypes.Role"/>).</summary>
    public const string Role = ClaimTypes.Role;

    /// <summary>Role names of the issue 12 contract.</summary>
    public static readonly string[] Roles = ["admin", "operator", "viewer"];

    /// <summary>Scopes each role may hold (issue 12 contract: admin all four, operator three, viewer two).</summary>
    public static IReadOnlyList<string> ScopesOf(string? role) => role switch
    {
        "admin" => ["nodes:read", "receipts:read", "inference", "admin"],
        "operator" => ["nodes:read", "receipts:read", "inference"],
        "viewer" => ["nodes:read", "receipts:read"],
        _ => [],
    };

    /// <summary>Builds the signed-in principal from a <c>POST /v1/auth/sessions</c> answer.</summary>
    public static ClaimsPrincipal Principal(Api.ApiSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        var identity = new ClaimsIdentity(CookieAuthenticationDefaults.AuthenticationScheme, ClaimTypes.Name, ClaimTypes.Role);
        identity.AddClaim(new Claim(ClaimTypes.NameIdentifier, session.User.Id));
        identity.AddClaim(new Claim(ClaimTypes.Name, session.User.Name ?? session.User.Email ?? session.User.Id));
        if (session.User.Email is { } email)
        {
            identity.AddClaim(new Claim(ClaimTypes.Email, email));
        }

        identity.AddClaim(new Claim(ClaimTypes.Role, session.User.Role));
        identity.AddClaim(new Claim(SessionToken, session.Token));
        return new ClaimsPrincipal(identity);
    }
}

/// <summary>Questions the pages ask about the signed-in user.</summary>
public static class DashboardUser
{
    /// <summary>Whether someone is signed in.</summary>
    public static bool IsSignedIn(this ClaimsPrincipal? user) => user?.Identity?.IsAuthenticated == true;

    /// <summary>Whether the user has role admin.</summary>
    public static bool IsAdmin(this ClaimsPrincipal? user) => user.IsSignedIn() && user!.IsInRole("admin");

    /// <summary>Whether the user has role operator or admin (provider pages, join tokens, node actions).</summary>
    public static bool IsProvider(this ClaimsPrincipal? user) => user.IsSignedIn() && (user!.IsInRole("admin") || user.IsInRole("operator"));

    /// <summary>The role, or null when nobody is signed in.</summary>
    public static string? Role(this ClaimsPrincipal? user) => user.IsSignedIn() ? user!.FindFirstValue(ClaimTypes.Role) : null;

    /// <summary>The API session token, or null.</summary>
    public static string? SessionToken(this ClaimsPrincipal? user) => user.IsSignedIn() ? user!.FindFirstValue(DashboardClaims.SessionToken) : null;
}

/// <summary>Authorization policy names.</summary>
public static class DashboardPolicies
{
    /// <summary>Overview and Nodes: anyone when <c>DGON_OPEN_READS=true</c>, else a signed-in user.</summary>
    public const string Reads = "reads";

    /// <summary>Role admin.</summary>
    public const string Admin = "admin";

    /// <summary>Role operator or admin.</summary>
    public const string Provider = "provider";
}

/// <summary>Registers cookie authentication, authorization, antiforgery and data protection of the dashboard.</summary>
public static class DashboardAuthSetup
{
    /// <summary>Name of the auth cookie.</summary>
    public const string CookieName = "dgon_auth";

    /// <summary>Name of the antiforgery cookie.</summary>
    public const string AntiforgeryCookieName = "dgon_af";

    /// <summary>
    /// Cookie authentication (HttpOnly, SameSite=Lax, Secure when the request is https; no sliding expiry: the cookie
    /// ends with the API session), policies (<see cref="DashboardPolicies"/>; every other endpoint needs a login) and
    /// the data protection key ring (<see cref="DashboardOptions.DataDir"/> or ephemeral).
    /// </summary>
    /// <returns>The authentication builder, for the OpenID Connect scheme (<see cref="OidcSignIn"/>).</returns>
    public static Microsoft.AspNetCore.Authentication.AuthenticationBuilder AddDashboardAuth(this IServiceCollection services, DashboardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        services.AddHttpContextAccessor();
        var protection = services.AddDataProtection().SetApplicationName("dgon-dashboard");
        if (options.DataDir is { } dir)
        {
            protection.PersistKeysToFileSystem(Directory.CreateDirectory(Path.Combine(dir, "data-protection-keys")));
        }
        else
        {
            protection.UseEphemeralDataProtectionProvider();
        }

        var authentication = services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(cookie =>
        {
            cookie.Cookie.Name = CookieName;
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Lax;
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            cookie.LoginPath = "/login";
            cookie.LogoutPath = "/logout";
            cookie.AccessDeniedPath = "/forbidden";
            cookie.ReturnUrlParameter = "returnUrl";
            cookie.SlidingExpiration = false;
            cookie.ExpireTimeSpan = TimeSpan.FromHours(12);
            cookie.Events.OnRedirectToLogin = context => Redirect(context.HttpContext, context.RedirectUri, StatusCodes.Status401Unauthorized);
            cookie.Events.OnRedirectToAccessDenied = context => Redirect(context.HttpContext, context.RedirectUri, StatusCodes.Status403Forbidden);
        });
        services.AddAuthorizationBuilder()
            .AddPolicy(DashboardPolicies.Reads, policy =>
            {
                if (options.OpenReads)
                {
                    policy.RequireAssertion(_ => true);
                }
                else
                {
                    policy.RequireAuthenticatedUser();
                }
            })
            .AddPolicy(DashboardPolicies.Admin, policy => policy.RequireAuthenticatedUser().RequireRole("admin"))
            .AddPolicy(DashboardPolicies.Provider, policy => policy.RequireAuthenticatedUser().RequireRole("admin", "operator"))
            .SetFallbackPolicy(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = AntiforgeryCookieName;
            antiforgery.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
        });
        return authentication;
    }

    /// <summary>
    /// A page request gets a 302 to <paramref name="target"/>; an htmx request (live refresh, header <c>HX-Request</c>)
    /// gets <paramref name="status"/> with <c>HX-Redirect</c>, so the whole page goes there instead of a swap.
    /// </summary>
    public static Task Redirect(HttpContext context, string target, int status)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Uri.TryCreate(target, UriKind.Absolute, out var absolute) && string.Equals(absolute.Authority, context.Request.Host.Value, StringComparison.OrdinalIgnoreCase))
        {
            target = absolute.PathAndQuery; // our own address: a local path works behind any proxy
        }

        if (context.Request.Headers.ContainsKey("HX-Request"))
        {
            context.Response.StatusCode = status;
            context.Response.Headers["HX-Redirect"] = target;
        }
        else
        {
            context.Response.Redirect(target);
        }

        return Task.CompletedTask;
    }

    /// <summary>A local return URL (starts with one '/', no scheme or host), else <c>/</c>: never an open redirect.</summary>
    public static string SafeReturnUrl(string? returnUrl) =>
        !string.IsNullOrEmpty(returnUrl) && returnUrl[0] == '/' && (returnUrl.Length == 1 || (returnUrl[1] != '/' && returnUrl[1] != '\\')) && !returnUrl.Contains("://", StringComparison.Ordinal)
            ? returnUrl
            : "/";
}
