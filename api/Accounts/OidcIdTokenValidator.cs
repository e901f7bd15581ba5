using System.Diagnostics.CodeAnalysis;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Dgon.Api.Accounts;

/// <summary>
/// Who an ID token names, after <see cref="OidcIdTokenValidator"/> accepted it.
/// </summary>
/// <param name="Subject">The <c>sub</c> claim: the user's stable id at the authority (never empty).</param>
/// <param name="Email">The <c>email</c> claim, or null.</param>
/// <param name="Name">The <c>name</c> claim (else <c>preferred_username</c>), or null.</param>
/// <param name="Role"><c>admin</c>, <c>operator</c> or <c>viewer</c>, mapped from the role claim by <see cref="OidcOptions.MapRole"/>.</param>
public sealed record OidcIdentity(string Subject, string? Email, string? Name, string Role);

/// <summary>The outcome of validating one ID token: an <see cref="Identity"/>, or a <see cref="Failure"/> reason.</summary>
public sealed record OidcTokenValidation
{
    private OidcTokenValidation(OidcIdentity? identity, string? failure)
    {
        Identity = identity;
        Failure = failure;
    }

    /// <summary>The identity when the token is valid; null otherwise.</summary>
    public OidcIdentity? Identity { get; }

    /// <summary>
    /// Why the token was refused (short English, safe to show and to audit; contains no token material), or null when
    /// it is valid. The caller answers 401.
    /// </summary>
    public string? Failure { get; }

    /// <summary>Whether the token is valid (then <see cref="Identity"/> is set).</summary>
    [MemberNotNullWhen(true, nameof(Identity))]
    [MemberNotNullWhen(false, nameof(Failure))]
    public bool IsValid => Identity is not null;

    /// <summary>A valid token's result.</summary>
    public static OidcTokenValidation Valid(OidcIdentity identity) => new(identity ?? throw new ArgumentNullException(nameof(identity)), null);

    /// <summary>A refused token's result.</summary>
    public static OidcTokenValidation Invalid(string failure) => new(null, failure ?? throw new ArgumentNullException(nameof(failure)));
}

/// <summary>
/// The authority's discovery document or key set could not be had (unreachable, HTTP error, malformed, or its issuer
/// is not <c>DGON_OIDC_AUTHORITY</c>). Not the token's fault: the caller answers 503, not 401.
/// </summary>
public sealed class OidcAuthorityUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OidcAuthorityUnavailableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Validates ID tokens against <see cref="OidcOptions.Authority"/> (OpenID Connect Core 1.0 §3.1.3.7): the signature
/// by a key of the authority's JWKS (asymmetric algorithms only; unsigned tokens are refused), <c>iss</c> = the
/// discovery document's issuer (which must equal the authority, OpenID Connect Discovery 1.0 §4.3), <c>aud</c>
/// contains the client id (and <c>azp</c>, when present with several audiences, equals it), <c>exp</c> and
/// <c>nbf</c> (else <c>iat</c>) with <see cref="ClockSkew"/>, a non-empty <c>sub</c>, and not an access token (<c>typ</c> <c>at+jwt</c>, RFC 9068).
/// Discovery and JWKS are cached by <see cref="ConfigurationManager{T}"/> (refreshed every 12 h, and at once — at
/// most once a minute — when a token names an unknown key id, so key rotation at the authority is picked up).
/// The nonce is the dashboard's to check: it started the flow. Thread-safe; one instance per process.
/// </summary>
public sealed class OidcIdTokenValidator
{
    /// <summary>Allowed clock difference with the authority for <c>exp</c> and <c>nbf</c>: 2 minutes.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(2);

    private static readonly string[] AsymmetricAlgorithms =
    [
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
    ];

    private const int MaxTokenLength = 64 * 1024;

    private readonly OidcOptions _options;
    private readonly TimeProvider _time;
    private readonly ConfigurationManager<OpenIdConnectConfiguration> _configuration;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };

    /// <summary>Creates a validator for <paramref name="options"/>.</summary>
    /// <param name="options">The OIDC settings.</param>
    /// <param name="httpClient">Fetches discovery and JWKS (not disposed here); null makes one with a 10 s timeout.</param>
    /// <param name="timeProvider">The clock for <c>exp</c>/<c>nbf</c>; null is the system clock.</param>
    public OidcIdTokenValidator(OidcOptions options, HttpClient? httpClient = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        var retriever = new HttpDocumentRetriever(httpClient ?? new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            // OidcOptions admits http only for loopback authorities (tests, local development).
            RequireHttps = !options.AllowsHttp,
        };
        _configuration = new ConfigurationManager<OpenIdConnectConfiguration>(
            MetadataAddress(options.Authority), new OpenIdConnectConfigurationRetriever(), retriever)
        {
            RefreshInterval = TimeSpan.FromMinutes(1),
        };
    }

    /// <summary>The discovery document's address: <c>{authority}/.well-known/openid-configuration</c>.</summary>
    public static string MetadataAddress(Uri authority)
    {
        ArgumentNullException.ThrowIfNull(authority);
        return authority.AbsoluteUri.TrimEnd('/') + "/.well-known/openid-configuration";
    }

    /// <summary>Validates <paramref name="idToken"/> (a compact JWS).</summary>
    /// <returns>The identity, or the reason the token is refused; a bad token never throws.</returns>
    /// <exception cref="OidcAuthorityUnavailableException">Discovery or JWKS could not be fetched (answer 503).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<OidcTokenValidation> ValidateAsync(string? idToken, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(idToken))
        {
            return OidcTokenValidation.Invalid("the ID token is missing");
        }

        if (idToken.Length > MaxTokenLength)
        {
            return OidcTokenValidation.Invalid("the ID token is too long");
        }

        var configuration = await ConfigurationAsync(cancellationToken);
        var result = await _handler.ValidateTokenAsync(idToken, Parameters(configuration));
        if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException)
        {
            // An unknown kid: the authority may have rotated its keys since the JWKS was cached.
            _configuration.RequestRefresh();
            var refreshed = await ConfigurationAsync(cancellationToken);
            if (!ReferenceEquals(refreshed, configuration))
            {
                result = await _handler.ValidateTokenAsync(idToken, Parameters(refreshed));
            }
        }

        if (!result.IsValid)
        {
            return OidcTokenValidation.Invalid(Reason(result.Exception));
        }

        var token = (JsonWebToken)result.SecurityToken;
        if (string.Equals(token.Typ, "at+jwt", StringComparison.OrdinalIgnoreCase)
            || string.Equals(token.Typ, "application/at+jwt", StringComparison.OrdinalIgnoreCase))
        {
            return OidcTokenValidation.Invalid("the token is an access token, not an ID token");
        }

        var audiences = token.Audiences.ToList();
        if (audiences.Count > 1 && token.TryGetPayloadValue<string>("azp", out var azp)
            && !string.Equals(azp, _options.ClientId, StringComparison.Ordinal))
        {
            return OidcTokenValidation.Invalid("the ID token was issued to another client (azp)");
        }

        var identity = result.ClaimsIdentity;
        var subject = identity.FindFirst("sub")?.Value;
        if (string.IsNullOrWhiteSpace(subject))
        {
            return OidcTokenValidation.Invalid("the ID token has no subject (sub)");
        }

        var email = NonEmpty(identity.FindFirst("email")?.Value);
        var name = NonEmpty(identity.FindFirst("name")?.Value) ?? NonEmpty(identity.FindFirst("preferred_username")?.Value);
        var role = _options.MapRole(RoleValues(identity, _options.RoleClaim));
        return OidcTokenValidation.Valid(new OidcIdentity(subject, email, name, role));
    }

    private async Task<OpenIdConnectConfiguration> ConfigurationAsync(CancellationToken cancellationToken)
    {
        OpenIdConnectConfiguration configuration;
        try
        {
            configuration = await _configuration.GetConfigurationAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            throw new OidcAuthorityUnavailableException(
                $"the OIDC authority's discovery document or keys could not be fetched from {MetadataAddress(_options.Authority)}", e);
        }

        if (!string.Equals(configuration.Issuer?.TrimEnd('/'), _options.Authority.AbsoluteUri.TrimEnd('/'), StringComparison.Ordinal))
        {
            throw new OidcAuthorityUnavailableException(
                $"the discovery document's issuer '{configuration.Issuer}' is not DGON_OIDC_AUTHORITY '{_options.Authority}'");
        }

        return configuration;
    }

    private TokenValidationParameters Parameters(OpenIdConnectConfiguration configuration) => new()
    {
        ValidIssuer = configuration.Issuer,
        ValidAudience = _options.ClientId,
        IssuerSigningKeys = configuration.SigningKeys,
        ValidAlgorithms = AsymmetricAlgorithms,
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ValidateIssuer = true,
        ValidateAudience = true,
        ValidateLifetime = true,
        ClockSkew = ClockSkew,
        LifetimeValidator = ValidateLifetime,
    };

    // Validators.ValidateLifetime reads the system clock; this one reads the injected TimeProvider. A token without nbf
    // is not valid before its iat either (OpenID Connect Core 1.0 §3.1.3.7 item 10 lets the client refuse such iat).
    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        if (expires is null)
        {
            throw new SecurityTokenNoExpirationException("the token has no exp");
        }

        if (expires.Value.ToUniversalTime() < now - parameters.ClockSkew)
        {
            throw new SecurityTokenExpiredException("the token has expired") { Expires = expires.Value };
        }

        var start = notBefore ?? (token is JsonWebToken { IssuedAt: var iat } && iat != DateTime.MinValue ? iat : null);
        if (start is { } nbf && nbf.ToUniversalTime() > now + parameters.ClockSkew)
        {
            throw new SecurityTokenNotYetValidException("the token is not valid yet") { NotBefore = nbf };
        }

        return true;
    }

    private static string Reason(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException => "the ID token has expired",
        SecurityTokenNotYetValidException => "the ID token is not valid yet",
        SecurityTokenNoExpirationException => "the ID token has no expiry",
        SecurityTokenInvalidAudienceException => "the ID token was issued to another client (audience)",
        SecurityTokenInvalidIssuerException => "the ID token was issued by another issuer",
        SecurityTokenInvalidAlgorithmException => "the ID token's signing algorithm is not accepted",
        SecurityTokenSignatureKeyNotFoundException => "the ID token is signed with a key the authority does not publish",
        SecurityTokenInvalidSignatureException => "the ID token's signature does not verify",
        SecurityTokenMalformedException or ArgumentException => "the ID token is malformed",
        _ => "the ID token is invalid",
    };

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    /// <summary>
    /// The role claim's values: a JSON array arrives as repeated claims (one per element); a plain string is one value;
    /// a string that itself holds a JSON array of strings (some providers serialise so) is unpacked.
    /// </summary>
    internal static IEnumerable<string> RoleValues(ClaimsIdentity identity, string claimType)
    {
        foreach (var claim in identity.FindAll(claimType))
        {
            var value = claim.Value;
            if (value.StartsWith('['))
            {
                string[]? items = null;
                try
                {
                    items = JsonSerializer.Deserialize<string[]>(value);
                }
                catch (JsonException)
                {
                    // not a JSON array of strings: take the text as it is
                }

                if (items is not null)
                {
                    foreach (var item in items)
                    {
                        yield return item;
                    }

                    continue;
                }
            }

            yield return value;
        }
    }
}
