using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Dgon.Testing;

/// <summary>A client registered at <see cref="OidcProvider"/>.</summary>
/// <param name="ClientId">The <c>client_id</c>; ID tokens issued to it carry it as <c>aud</c>.</param>
/// <param name="ClientSecret">The secret the token request must present (post body or HTTP Basic); null = public client (PKCE only).</param>
/// <param name="RedirectUris">Exact redirect URIs accepted at the authorization endpoint.</param>
public sealed record OidcTestClient(string ClientId, string? ClientSecret, IReadOnlyList<Uri> RedirectUris);

/// <summary>The user <see cref="OidcProvider"/> signs in, without a login form, on every authorization request.</summary>
/// <param name="Subject"><c>sub</c>.</param>
/// <param name="Email"><c>email</c>, omitted when null.</param>
/// <param name="Name"><c>name</c>, omitted when null.</param>
/// <param name="Roles">
/// The <c>roles</c> claim (or the provider's role claim name): two or more values are a JSON array, a single value is
/// a plain string (as OpenIddict serialises claims), none omits the claim.
/// </param>
public sealed record OidcTestUser(string Subject, string? Email, string? Name, IReadOnlyList<string> Roles);

/// <summary>
/// An in-process OpenID Connect provider for tests: OpenIddict's server in degraded mode (no database; authorization
/// codes are self-contained encrypted tokens) on real Kestrel over plain http on a free loopback port, so a headless
/// browser can run the flow too. Supports the authorization-code flow with PKCE (S256 or plain; PKCE required),
/// discovery (<c>/.well-known/openid-configuration</c>) and the JWKS (<c>/.well-known/jwks</c>). ID tokens are
/// RS256-signed with an ephemeral RSA key made at start (each instance has its own key and issuer).
/// <para>
/// The authorization endpoint (<c>/connect/authorize</c>) validates <c>client_id</c> and the exact <c>redirect_uri</c>
/// and then signs in <see cref="SetUser(OidcTestUser?)">the current user</see> at once and redirects (302) to
/// <c>redirect_uri?code=…&amp;state=…&amp;iss=…</c>; with no user set it redirects with <c>error=access_denied</c>.
/// The token endpoint (<c>/connect/token</c>) checks the client secret (for confidential clients), the code, the
/// redirect URI and the PKCE verifier, and returns <c>id_token</c> and <c>access_token</c>.
/// </para>
/// </summary>
public sealed class OidcProvider : IAsyncDisposable
{
    /// <summary>Scopes accepted besides <c>openid</c>.</summary>
    public static readonly IReadOnlyList<string> SupportedScopes = [Scopes.Email, Scopes.Profile, Scopes.Roles];

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, OidcTestClient> _clients = new(StringComparer.Ordinal);
    private readonly string _roleClaim;
    private volatile OidcTestUser? _user;
    private int _authorizations;

    private OidcProvider(WebApplication app, Uri authority, string roleClaim)
    {
        _app = app;
        Authority = authority;
        _roleClaim = roleClaim;
    }

    /// <summary>The issuer and base URL, e.g. <c>http://127.0.0.1:41234/</c> (with the trailing slash, as in <c>iss</c>).</summary>
    public Uri Authority { get; }

    /// <summary><c>{Authority}connect/authorize</c>.</summary>
    public Uri AuthorizationEndpoint => new(Authority, "connect/authorize");

    /// <summary><c>{Authority}connect/token</c>.</summary>
    public Uri TokenEndpoint => new(Authority, "connect/token");

    /// <summary>Authorization requests that signed a user in (redirected with a code).</summary>
    public int Authorizations => Volatile.Read(ref _authorizations);

    /// <summary>
    /// Starts a provider on <paramref name="port"/> (a free one when null).
    /// </summary>
    /// <param name="clients">The registered clients (more can be added with <see cref="AddClient"/>).</param>
    /// <param name="port">The loopback port, or null for a free one.</param>
    /// <param name="identityTokenLifetime">ID token lifetime (<c>exp</c> - <c>iat</c>); default 20 minutes.</param>
    /// <param name="roleClaim">The claim carrying <see cref="OidcTestUser.Roles"/>; default <c>roles</c>.</param>
    public static async Task<OidcProvider> StartAsync(
        IEnumerable<OidcTestClient> clients, int? port = null, TimeSpan? identityTokenLifetime = null, string roleClaim = "roles")
    {
        ArgumentNullException.ThrowIfNull(clients);
        var p = port ?? FreePort.Next();
        var authority = new Uri($"http://127.0.0.1:{p}/");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(authority.GetLeftPart(UriPartial.Authority));
        OidcProvider? provider = null;
        OidcProvider Self() => provider ?? throw new InvalidOperationException("the provider is not built yet");

        builder.Services.AddOpenIddict().AddServer(options =>
        {
            options.SetIssuer(authority);
            options.SetAuthorizationEndpointUris("connect/authorize")
                .SetTokenEndpointUris("connect/token")
                .SetConfigurationEndpointUris(".well-known/openid-configuration")
                .SetJsonWebKeySetEndpointUris(".well-known/jwks");
            options.AllowAuthorizationCodeFlow().RequireProofKeyForCodeExchange();
            options.RegisterScopes([.. SupportedScopes]);
            options.RegisterClaims(Claims.Subject, Claims.Email, Claims.Name, roleClaim);
            options.SetIdentityTokenLifetime(identityTokenLifetime ?? TimeSpan.FromMinutes(20));
            options.AddEphemeralEncryptionKey().AddEphemeralSigningKey();
            options.DisableAccessTokenEncryption();
            options.EnableDegradedMode();
            options.UseAspNetCore().DisableTransportSecurityRequirement();

            options.AddEventHandler<ValidateAuthorizationRequestContext>(handler =>
                handler.UseInlineHandler(context => Self().ValidateAuthorization(context)));
            options.AddEventHandler<HandleAuthorizationRequestContext>(handler =>
                handler.UseInlineHandler(context => Self().HandleAuthorization(context)));
            options.AddEventHandler<ValidateTokenRequestContext>(handler =>
                handler.UseInlineHandler(context => Self().ValidateToken(context)));
        });

        var app = builder.Build();
        app.UseAuthentication();
        provider = new OidcProvider(app, authority, roleClaim);
        foreach (var client in clients)
        {
            provider.AddClient(client);
        }

        await app.StartAsync();
        return provider;
    }

    /// <summary>Registers (or replaces) a client.</summary>
    public void AddClient(OidcTestClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        _clients[client.ClientId] = client;
    }

    /// <summary>Sets the user the next authorization requests sign in; null makes them fail with <c>access_denied</c>.</summary>
    public void SetUser(OidcTestUser? user) => _user = user;

    /// <summary>Sets the user from its parts (see <see cref="OidcTestUser"/>).</summary>
    public void SetUser(string subject, string? email, string? name, params string[] roles) =>
        SetUser(new OidcTestUser(subject, email, name, roles));

    /// <summary>
    /// Runs the authorization-code flow without a browser, as a client would: <c>GET /connect/authorize</c> (PKCE
    /// S256, a random state and nonce) → 302 to <paramref name="redirectUri"/> with the code (nothing listens there: the
    /// redirect is not followed) → <c>POST /connect/token</c>. Signs in the current user.
    /// </summary>
    /// <returns>The <c>id_token</c> (compact JWS).</returns>
    /// <exception cref="InvalidOperationException">
    /// The provider refused a step (unknown client, unregistered redirect URI, no user, wrong secret); the message
    /// holds its error.
    /// </exception>
    public async Task<string> GetIdTokenAsync(
        string clientId, string? clientSecret, Uri redirectUri, string scope = "openid email profile roles",
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(redirectUri);
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        var verifier = RandomUrlSafe(32);
        var challenge = Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var state = RandomUrlSafe(16);
        var query = Query(new Dictionary<string, string>
        {
            ["response_type"] = "code",
            ["client_id"] = clientId,
            ["redirect_uri"] = redirectUri.AbsoluteUri,
            ["scope"] = scope,
            ["state"] = state,
            ["nonce"] = RandomUrlSafe(16),
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
        });
        using var authorize = await http.GetAsync(new Uri(AuthorizationEndpoint + "?" + query), cancellationToken);
        var location = authorize.Headers.Location;
        if (authorize.StatusCode != HttpStatusCode.Found || location is null)
        {
            throw new InvalidOperationException(
                $"authorization request: {(int)authorize.StatusCode} {await authorize.Content.ReadAsStringAsync(cancellationToken)}");
        }

        var parameters = ParseQuery(location.Query);
        if (parameters.TryGetValue("error", out var error))
        {
            throw new InvalidOperationException($"authorization request: {error} {parameters.GetValueOrDefault("error_description")}");
        }

        if (parameters.GetValueOrDefault("state") != state || !parameters.TryGetValue("code", out var code))
        {
            throw new InvalidOperationException($"authorization response without the state or a code: {location}");
        }

        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["redirect_uri"] = redirectUri.AbsoluteUri,
            ["client_id"] = clientId,
            ["code_verifier"] = verifier,
        };
        if (clientSecret is not null)
        {
            form["client_secret"] = clientSecret;
        }

        using var token = await http.PostAsync(TokenEndpoint, new FormUrlEncodedContent(form), cancellationToken);
        var body = await token.Content.ReadAsStringAsync(cancellationToken);
        if (token.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"token request: {(int)token.StatusCode} {body}");
        }

        using var json = JsonDocument.Parse(body);
        return json.RootElement.TryGetProperty("id_token", out var idToken) && idToken.GetString() is { Length: > 0 } text
            ? text
            : throw new InvalidOperationException($"token response without an id_token: {body}");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private ValueTask ValidateAuthorization(ValidateAuthorizationRequestContext context)
    {
        if (context.ClientId is null || !_clients.TryGetValue(context.ClientId, out var client))
        {
            context.Reject(Errors.InvalidClient, "unknown client_id");
        }
        else if (context.RedirectUri is null || !client.RedirectUris.Any(uri => uri.AbsoluteUri == context.RedirectUri))
        {
            context.Reject(Errors.InvalidRequest, "redirect_uri is not registered for this client");
        }

        return default;
    }

    private ValueTask HandleAuthorization(HandleAuthorizationRequestContext context)
    {
        var user = _user;
        if (user is null)
        {
            context.Reject(Errors.AccessDenied, "no user is signed in at the test provider");
            return default;
        }

        var identity = new ClaimsIdentity("oidc-test-provider", Claims.Name, _roleClaim);
        identity.AddClaim(new Claim(Claims.Subject, user.Subject));
        if (user.Email is not null)
        {
            identity.AddClaim(new Claim(Claims.Email, user.Email));
        }

        if (user.Name is not null)
        {
            identity.AddClaim(new Claim(Claims.Name, user.Name));
        }

        foreach (var role in user.Roles)
        {
            identity.AddClaim(new Claim(_roleClaim, role));
        }

        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(context.Request.GetScopes());
        principal.SetDestinations(static _ => [Destinations.IdentityToken, Destinations.AccessToken]);
        Interlocked.Increment(ref _authorizations);
        context.SignIn(principal);
        return default;
    }

    private ValueTask ValidateToken(ValidateTokenRequestContext context)
    {
        if (context.ClientId is null || !_clients.TryGetValue(context.ClientId, out var client))
        {
            context.Reject(Errors.InvalidClient, "unknown client_id");
        }
        else if (client.ClientSecret is not null && !string.Equals(client.ClientSecret, context.ClientSecret, StringComparison.Ordinal))
        {
            context.Reject(Errors.InvalidClient, "wrong or missing client_secret");
        }

        return default;
    }

    private static string RandomUrlSafe(int bytes) => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(bytes));

    private static string Query(Dictionary<string, string> parameters) =>
        string.Join('&', parameters.Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value)));

    private static Dictionary<string, string> ParseQuery(string query) =>
        query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .ToDictionary(kv => Uri.UnescapeDataString(kv[0]), kv => kv.Length > 1 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : "");
}
