using System.Net;
using Dgon.Persistence;

namespace Dgon.Api.Accounts;

/// <summary>
/// OpenID Connect login (issue 12), optional beside local accounts. Read from <c>DGON_OIDC_*</c>; absent
/// (<see cref="FromConfiguration"/> returns null) when <c>DGON_OIDC_AUTHORITY</c> is unset. The dashboard runs the
/// authorization-code flow with PKCE; the API validates the ID token it posts (see <see cref="OidcIdTokenValidator"/>).
/// </summary>
public sealed record OidcOptions
{
    /// <summary>Default <see cref="RoleClaim"/>: <c>roles</c>.</summary>
    public const string DefaultRoleClaim = "roles";

    /// <summary>Default <see cref="DisplayName"/>: <c>single sign-on</c>.</summary>
    public const string DefaultDisplayName = "single sign-on";

    /// <summary>
    /// <c>DGON_OIDC_AUTHORITY</c>: the issuer URL; its discovery document is
    /// <c>{authority}/.well-known/openid-configuration</c> (OpenID Connect Discovery 1.0 §4). Absolute https; plain
    /// http only for a loopback host (127.0.0.0/8, ::1, <c>localhost</c>: tests and local development).
    /// </summary>
    public required Uri Authority { get; init; }

    /// <summary><c>DGON_OIDC_CLIENT_ID</c> (required with an authority): the ID token's audience must contain it.</summary>
    public required string ClientId { get; init; }

    /// <summary>
    /// <c>DGON_OIDC_CLIENT_SECRET</c>: used by the dashboard's token request only; the API does not need it
    /// (null when unset).
    /// </summary>
    public string? ClientSecret { get; init; }

    /// <summary><c>DGON_OIDC_ROLE_CLAIM</c> (default <c>roles</c>): the ID token claim whose values decide the role.</summary>
    public string RoleClaim { get; init; } = DefaultRoleClaim;

    /// <summary>
    /// <c>DGON_OIDC_ADMIN_VALUES</c>, comma-separated (default <c>dgon-admin</c>): any of these among the role claim's
    /// values gives role admin. Compared ordinally (case-sensitive), as identity providers emit them.
    /// </summary>
    public IReadOnlyList<string> AdminValues { get; init; } = ["dgon-admin"];

    /// <summary>
    /// <c>DGON_OIDC_OPERATOR_VALUES</c>, comma-separated (default <c>dgon-operator</c>): any of these gives role
    /// operator (unless an admin value is present too). Neither → viewer.
    /// </summary>
    public IReadOnlyList<string> OperatorValues { get; init; } = ["dgon-operator"];

    /// <summary><c>DGON_OIDC_DISPLAY_NAME</c> (default "single sign-on"): the dashboard's login button text.</summary>
    public string DisplayName { get; init; } = DefaultDisplayName;

    /// <summary>Whether <see cref="Authority"/> is plain http (allowed for loopback hosts only).</summary>
    public bool AllowsHttp => Authority.Scheme == Uri.UriSchemeHttp;

    /// <summary>
    /// The role for a set of role-claim values: <c>admin</c> if any is in <see cref="AdminValues"/>, else
    /// <c>operator</c> if any is in <see cref="OperatorValues"/>, else <c>viewer</c>.
    /// </summary>
    public string MapRole(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var set = values.ToHashSet(StringComparer.Ordinal);
        if (AdminValues.Any(set.Contains))
        {
            return "admin";
        }

        return OperatorValues.Any(set.Contains) ? "operator" : "viewer";
    }

    /// <summary>Reads the settings; null when <c>DGON_OIDC_AUTHORITY</c> is unset or blank (OIDC off).</summary>
    /// <exception cref="InvalidOperationException">A value is malformed or missing; the message names the variable.</exception>
    public static OidcOptions? FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var authorityText = Settings.Optional(configuration["DGON_OIDC_AUTHORITY"]);
        if (authorityText is null)
        {
            return null;
        }

        if (!Uri.TryCreate(authorityText, UriKind.Absolute, out var authority)
            || (authority.Scheme != Uri.UriSchemeHttps && authority.Scheme != Uri.UriSchemeHttp))
        {
            throw new InvalidOperationException($"DGON_OIDC_AUTHORITY must be an absolute https URL; got '{authorityText}'");
        }

        if (authority.Scheme == Uri.UriSchemeHttp && !IsLoopback(authority))
        {
            throw new InvalidOperationException(
                $"DGON_OIDC_AUTHORITY must use https (plain http is allowed only for a loopback host); got '{authorityText}'");
        }

        if (!string.IsNullOrEmpty(authority.Query) || !string.IsNullOrEmpty(authority.Fragment) || !string.IsNullOrEmpty(authority.UserInfo))
        {
            throw new InvalidOperationException($"DGON_OIDC_AUTHORITY must have no query, fragment or user info; got '{authorityText}'");
        }

        var clientId = Settings.Optional(configuration["DGON_OIDC_CLIENT_ID"])
            ?? throw new InvalidOperationException("DGON_OIDC_CLIENT_ID is required when DGON_OIDC_AUTHORITY is set");

        var roleClaim = Settings.Optional(configuration["DGON_OIDC_ROLE_CLAIM"]) ?? DefaultRoleClaim;
        if (roleClaim.Any(char.IsWhiteSpace))
        {
            throw new InvalidOperationException($"DGON_OIDC_ROLE_CLAIM must be a claim name without spaces; got '{roleClaim}'");
        }

        return new OidcOptions
        {
            Authority = authority,
            ClientId = clientId,
            ClientSecret = Settings.Optional(configuration["DGON_OIDC_CLIENT_SECRET"]),
            RoleClaim = roleClaim,
            AdminValues = Values(configuration, "DGON_OIDC_ADMIN_VALUES", "dgon-admin"),
            OperatorValues = Values(configuration, "DGON_OIDC_OPERATOR_VALUES", "dgon-operator"),
            DisplayName = Settings.Optional(configuration["DGON_OIDC_DISPLAY_NAME"]) ?? DefaultDisplayName,
        };
    }

    private static string[] Values(IConfiguration configuration, string name, string defaultValue)
    {
        var text = Settings.Optional(configuration[name]);
        if (text is null)
        {
            return [defaultValue];
        }

        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return values.Length == 0
            ? throw new InvalidOperationException($"{name} must list at least one comma-separated value; got '{text}'")
            : values;
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback
        || string.Equals(uri.IdnHost, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(uri.IdnHost, out var address) && IPAddress.IsLoopback(address));
}
