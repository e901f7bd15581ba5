using System.Security.Claims;
using System.Text.Encodings.Web;
using Dgon.Api.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Dgon.Api.Auth;

/// <summary>
/// The API's one authentication seam for people and programs (issue 9): <c>Authorization: Bearer &lt;token&gt;</c>.
/// Today only the admin token (<see cref="AdminCredential"/>) gives a principal (role <see cref="AdminRole"/>); the
/// accounts issue adds sessions and API keys here. Nodes authenticate separately, by HMAC and key proofs
/// (<see cref="SignedRequestReader"/>). A missing or wrong token → 401 problem+json with
/// <c>WWW-Authenticate: Bearer</c> (RFC 6750 §3); a principal without the role → 403.
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AdminCredential admin)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    /// <summary>Name of the scheme.</summary>
    public const string SchemeName = "DgonBearer";

    /// <summary>Role of the admin principal.</summary>
    public const string AdminRole = "admin";

    /// <summary>Name of the authorization policy that requires <see cref="AdminRole"/>.</summary>
    public const string AdminPolicy = "admin";

    /// <summary>The bearer token of a request, or null when there is none.</summary>
    public static string? BearerToken(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 ? header[7..].Trim() : null;
    }

    /// <inheritdoc />
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var token = BearerToken(Request);
        if (token is null)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!admin.Matches(token))
        {
            return Task.FromResult(AuthenticateResult.Fail("the bearer token is not valid"));
        }

        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, "admin"), new Claim(ClaimTypes.Role, AdminRole)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        Problems.AdminTokenRequired().ExecuteAsync(Context);

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Problems.Forbidden("this credential may not perform this request").ExecuteAsync(Context);
}
