using System.Text.Encodings.Web;
using Dgon.Api.Accounts;
using Dgon.Api.Http;
using Dgon.Domain.Accounts;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Dgon.Api.Auth;

/// <summary>
/// The API's one authentication seam for people and programs (issues 9 and 12): <c>Authorization: Bearer
/// &lt;credential&gt;</c> with the admin token (<see cref="AdminCredential"/>), a session token (<c>dgs_…</c>) or an API
/// key (<c>dgk_…</c>), the latter two looked up in <see cref="CredentialStore"/> on every request. Bearer values of
/// another shape (join tokens at registration) are not this handler's: it leaves them alone. Nodes authenticate
/// separately, by HMAC and key proofs (<see cref="SignedRequestReader"/>). A missing, wrong, expired or revoked
/// credential on a protected endpoint → 401 problem+json with <c>WWW-Authenticate: Bearer</c> (RFC 6750 §3), counted
/// as a failed authentication of the address (<see cref="IpBanList.RecordFailureAsync"/>); a credential without the
/// scope or role → 403.
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AdminCredential admin,
    IpBanList bans)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    /// <summary>Name of the scheme.</summary>
    public const string SchemeName = "DgonBearer";

    /// <summary>The bearer token of a request, or null when there is none.</summary>
    public static string? BearerToken(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 ? header[7..].Trim() : null;
    }

    /// <inheritdoc />
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var token = BearerToken(Request);
        if (token is null)
        {
            return AuthenticateResult.NoResult();
        }

        if (admin.Matches(token))
        {
            var principal = AccessClaims.Principal(AccessClaims.AdminTokenActor, "admin (token)", Roles.Admin, Scopes.All, AccessClaims.AdminTokenCredential, null, SchemeName);
            return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
        }

        if (!Credentials.IsSessionToken(token) && !Credentials.TryParseApiKey(token, out _, out _))
        {
            return AuthenticateResult.NoResult(); // a join token, or nothing of ours
        }

        var store = Context.RequestServices.GetRequiredService<CredentialStore>();
        var resolved = await store.ResolveAsync(token, SchemeName, Context.RequestAborted);
        return resolved is null
            ? AuthenticateResult.Fail("the bearer credential is unknown, expired or revoked")
            : AuthenticateResult.Success(new AuthenticationTicket(resolved, SchemeName));
    }

    /// <inheritdoc />
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var presented = BearerToken(Request) is not null;
        if (presented)
        {
            await bans.RecordFailureAsync(Context.Connection.RemoteIpAddress, Context.RequestAborted);
        }

        await Problems.CredentialRequired(presented).ExecuteAsync(Context);
    }

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Problems.Forbidden("this credential may not perform this request (missing scope or role)").ExecuteAsync(Context);
}
