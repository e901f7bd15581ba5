using System.Globalization;

namespace Dgon.Dashboard;

/// <summary>Settings of the dashboard, read once at start-up from configuration (environment variables included).</summary>
/// <param name="ApiBase">Base address of the DGON API (<c>DGON_API_BASE</c>); always ends with a slash.</param>
/// <param name="RefreshSeconds">Seconds between two live refreshes of a page (<c>DGON_REFRESH_SECONDS</c>).</param>
public sealed record DashboardOptions(Uri ApiBase, int RefreshSeconds)
{
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

        return new DashboardOptions(apiBase, refresh);
    }

    /// <summary>The API base address as shown to people: without the trailing slash.</summary>
    public string ApiBaseDisplay => ApiBase.AbsoluteUri.TrimEnd('/');
}
