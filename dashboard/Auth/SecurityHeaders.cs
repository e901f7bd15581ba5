namespace Dgon.Dashboard.Auth;

/// <summary>Security headers on every response of the dashboard (pages, fragments, static files, errors).</summary>
public static class SecurityHeaders
{
    /// <summary>
    /// The Content-Security-Policy: scripts only from this origin (no <c>'unsafe-inline'</c>, no <c>'unsafe-eval'</c>;
    /// htmx runs with <c>allowEval: false</c>), styles from this origin plus inline <c>style</c> attributes (the
    /// reputation bars), no framing (<c>frame-ancestors 'none'</c>), forms post only here.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
        "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>Adds the middleware that sets the headers before anything else runs.</summary>
    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "same-origin";
            headers["Cross-Origin-Opener-Policy"] = "same-origin";
            headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()";
            await next(context);
        });
}
