using System.Globalization;

namespace Dgon.Dashboard;

/// <summary>Settings of the dashboard, read once at start-up from configuration (environment variables included).</summary>
/// <param name="ApiBase">Base address of the DGON API (<c>DGON_API_BASE</c>); always ends with a slash.</param>
/// <param name="RefreshSeconds">Seconds between two live refreshes of a page (<c>DGON_REFRESH_SECONDS</c>).</param>
public sealed record DashboardOptions(Uri ApiBase, int RefreshSeconds)
{
    /// <summary>
    /// <c>DGON_OPEN_READS=true</c>: Overview and Nodes work without a login (the v1 dev-open mode; the API must then
    /// run with <c>DGON_OPEN_READS=true</c> too). Every other page still needs a login; admin pages need role admin.
    /// </summary>
    public bool OpenReads { get; init; }

    /// <summary>
    /// <c>DGON_DASHBOARD_DATA_DIR</c>: where the data protection key ring (which protects the auth cookie and the
    /// antiforgery tokens) is kept, so sessions survive a restart and replicas sharing it accept each other's cookies.
    /// Null: an ephemeral in-memory key ring (a warning is logged at start-up; every restart signs everyone out).
    /// </summary>
    public string? DataDir { get; init; }

    /// <summary>
    /// <c>DGON_PUBLIC_API_URL</c>: the API address agents use, shown in the ready-made
    /// <c>dgon-agent --api … --join-token …</c> command; defaults to <see cref="ApiBase"/> (without the trailing slash).
    /// </summary>
    public string PublicApiUrl { get; init; } = "";

    /// <summary>Single sign-on settings, or null when <c>DGON_OIDC_AUTHORITY</c> is not set (then no "Sign in with …" button).</summary>
    public OidcSettings? Oidc { get; init; }

    /// <summary>Address the dashboard listens on when neither <c>ASPNETCORE_URLS</c> nor <c>--urls</c> is given.</summary>
    public const string DefaultUrl = "http://127.0.0.1:3000";

    /// <summary>API base address used when <c>DGON_API_BASE</c> is not set.</summary>
    public const string DefaultApiBase = "http://127.0.0.1:8001/";

    /// <summary>Refresh interval used when <c>DGON_REFRESH_SECONDS</c> is not set (seed 000: every 5 s).</summary>
    public const int DefaultRefreshSeconds = 5;

    /// <summary>Reads <c>DGON_API_BASE</c> and <c>DGON_REFRESH_SECONDS</c>.</summary>
    /// <exception cref="InvalidOperationException">A value is set but invalid; the message names the variable.</exception>
    public static DashboardOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);

        var baseText = configuration["DGON_API_BASE"];
        baseText = string.IsNullOrWhiteSpace(baseText) ? DefaultApiBase : baseText.Trim();
        if (!Uri.TryCreate(baseText, UriKind.Absolute, out var apiBase) || (apiBase.Scheme != Uri.UriSchemeHttp && apiBase.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"DGON_API_BASE must be an absolute http(s) URL, got '{baseText}'.");
        }

        if (!apiBase.AbsolutePath.EndsWith('/'))
        {
            apiBase = new Uri(apiBase.GetLeftPart(UriPartial.Path) + "/");
        }

        var refreshText = configuration["DGON_REFRESH_SECONDS"];
        var refresh = DefaultRefreshSeconds;
        if (!string.IsNullOrWhiteSpace(refreshText)
            && (!int.TryParse(refreshText, NumberStyles.None, CultureInfo.InvariantCulture, out refresh) || refresh is < 1 or > 3600))
        {
            throw new InvalidOperationException($"DGON_REFRESH_SECONDS must be a whole number of seconds from 1 to 3600, got '{refreshText}'.");
        }

        var openText = configuration["DGON_OPEN_READS"];
        var openReads = false;
        if (!string.IsNullOrWhiteSpace(openText) && !bool.TryParse(openText.Trim(), out openReads))
        {
            throw new InvalidOperationException($"DGON_OPEN_READS must be true or false, got '{openText}'.");
        }

        var publicText = configuration["DGON_PUBLIC_API_URL"];
        var publicApi = apiBase.AbsoluteUri.TrimEnd('/');
        if (!string.IsNullOrWhiteSpace(publicText))
        {
            if (!Uri.TryCreate(publicText.Trim(), UriKind.Absolute, out var publicUri) || (publicUri.Scheme != Uri.UriSchemeHttp && publicUri.Scheme != Uri.UriSchemeHttps))
            {
                throw new InvalidOperationException($"DGON_PUBLIC_API_URL must be an absolute http(s) URL, got '{publicText}'.");
            }

            publicApi = publicUri.AbsoluteUri.TrimEnd('/');
        }

        OidcSettings? oidc = null;
        var authority = configuration["DGON_OIDC_AUTHORITY"];
        if (!string.IsNullOrWhiteSpace(authority))
        {
            var display = configuration["DGON_OIDC_DISPLAY_NAME"];
            if (!Uri.TryCreate(authority.Trim(), UriKind.Absolute, out var authorityUri) || (authorityUri.Scheme != Uri.UriSchemeHttps && !(authorityUri.Scheme == Uri.UriSchemeHttp && authorityUri.IsLoopback)))
            {
                throw new InvalidOperationException($"DGON_OIDC_AUTHORITY must be an absolute https URL (http only on loopback), got '{authority}'.");
            }

            var clientId = configuration["DGON_OIDC_CLIENT_ID"]?.Trim();
            if (string.IsNullOrEmpty(clientId))
            {
                throw new InvalidOperationException("DGON_OIDC_CLIENT_ID is required when DGON_OIDC_AUTHORITY is set.");
            }

            var secret = configuration["DGON_OIDC_CLIENT_SECRET"];
            oidc = new OidcSettings(authority.Trim(), clientId, string.IsNullOrWhiteSpace(display) ? OidcSettings.DefaultDisplayName : display.Trim())
            {
                ClientSecret = string.IsNullOrWhiteSpace(secret) ? null : secret.Trim(),
                Scopes = (configuration["DGON_OIDC_SCOPES"] ?? "openid email profile").Split(' ', StringSplitOptions.RemoveEmptyEntries),
            };
        }

        var dataDir = configuration["DGON_DASHBOARD_DATA_DIR"];
        return new DashboardOptions(apiBase, refresh)
        {
            OpenReads = openReads,
            DataDir = string.IsNullOrWhiteSpace(dataDir) ? null : dataDir.Trim(),
            PublicApiUrl = publicApi,
            Oidc = oidc,
        };
    }

    /// <summary>The API base address as shown to people: without the trailing slash.</summary>
    public string ApiBaseDisplay => ApiBase.AbsoluteUri.TrimEnd('/');
}

/// <summary>Single sign-on settings of the dashboard (issue 12; the OIDC handler itself is wired at <c>/auth/oidc</c>).</summary>
/// <param name="Authority">The OIDC authority (<c>DGON_OIDC_AUTHORITY</c>).</param>
/// <param name="ClientId">The client id (<c>DGON_OIDC_CLIENT_ID</c>), or null if not set.</param>
/// <param name="DisplayName">Button text after "Sign in with" (<c>DGON_OIDC_DISPLAY_NAME</c>, default "single sign-on").</param>
public sealed record OidcSettings(string Authority, string? ClientId, string DisplayName)
{
    /// <summary>Button text when <c>DGON_OIDC_DISPLAY_NAME</c> is not set.</summary>
    public const string DefaultDisplayName = "single sign-on";

    /// <summary>The client secret (<c>DGON_OIDC_CLIENT_SECRET</c>), or null for a public client (PKCE only).</summary>
    public string? ClientSecret { get; init; }

    /// <summary>Scopes requested (<c>DGON_OIDC_SCOPES</c>, space-separated; default <c>openid email profile</c>; add the one that releases the role claim, e.g. <c>roles</c>).</summary>
    public IReadOnlyList<string> Scopes { get; init; } = ["openid", "email", "profile"];
}
