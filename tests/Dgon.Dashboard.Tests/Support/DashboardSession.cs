using System.Net;
using System.Text.RegularExpressions;

namespace Dgon.Dashboard.Tests.Support;

/// <summary>A cookie-keeping HTTP client of the dashboard that does not follow redirects, with a form login.</summary>
public sealed partial class DashboardSession : IDisposable
{
    private readonly HttpClientHandler _handler;

    /// <summary>Creates a session for <paramref name="dashboard"/>.</summary>
    public DashboardSession(DashboardHost dashboard)
    {
        ArgumentNullException.ThrowIfNull(dashboard);
        Cookies = new CookieContainer();
        _handler = new HttpClientHandler { CookieContainer = Cookies, AllowAutoRedirect = false, UseCookies = true };
        Client = new HttpClient(_handler) { BaseAddress = dashboard.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The cookies (auth and antiforgery).</summary>
    public CookieContainer Cookies { get; }

    /// <summary>The client.</summary>
    public HttpClient Client { get; }

    /// <summary>The antiforgery token in a page's first form.</summary>
    public static string AntiforgeryToken(string html)
    {
        var match = TokenPattern().Match(html);
        Assert.True(match.Success, "no antiforgery token in the page");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    /// <summary>Signs in through the login form; returns the answer (303/302 on success).</summary>
    public async Task<HttpResponseMessage> LoginAsync(string email, string password, string returnUrl = "/")
    {
        var path = "login?returnUrl=" + Uri.EscapeDataString(returnUrl);
        var page = await Client.GetStringAsync(new Uri(path, UriKind.Relative));
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = AntiforgeryToken(page),
            ["Credentials.Email"] = email,
            ["Credentials.Password"] = password,
        });
        return await Client.PostAsync(new Uri(path, UriKind.Relative), form);
    }

    /// <summary>GET of a path without following redirects.</summary>
    public Task<HttpResponseMessage> GetAsync(string path) => Client.GetAsync(new Uri(path, UriKind.Relative));

    /// <inheritdoc />
    public void Dispose()
    {
        Client.Dispose();
        _handler.Dispose();
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();
}
