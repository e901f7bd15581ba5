using System.Net;
using Dgon.Dashboard.Tests.Support;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Dashboard.Tests.Server;

/// <summary>Issue 12 over plain HTTP: redirects to /login, security headers, antiforgery, the bearer the API gets.</summary>
public sealed class AuthServerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Without_open_reads_every_page_but_login_healthz_and_static_files_redirects_to_login()
    {
        await using var stub = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(stub.BaseAddress, openReads: false);
        using var session = new DashboardSession(dashboard);
        try
        {
            foreach (var path in new[] { "", "nodes", "my-nodes", "join-tokens", "account/api-keys", "admin/users", "admin/api-keys", "admin/ip-bans", "admin/audit", "fragments/summary", "fragments/nodes" })
            {
                using var response = await session.GetAsync(path);
                Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"/{path} → {(int)response.StatusCode}");
                Assert.StartsWith("/login?returnUrl=", Local(response), StringComparison.Ordinal);
            }

            // The live refresh (htmx) gets 401 with HX-Redirect, so the whole page goes to /login.
            using var request = new HttpRequestMessage(HttpMethod.Get, "fragments/summary");
            request.Headers.Add("HX-Request", "true");
            using var htmx = await session.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, htmx.StatusCode);
            Assert.StartsWith("/login", htmx.Headers.GetValues("HX-Redirect").Single(), StringComparison.Ordinal);

            foreach (var path in new[] { "login", "healthz", "css/site.css", "js/dashboard.js", "lib/htmx/htmx.min.js", "favicon.svg" })
            {
                using var response = await session.GetAsync(path);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"/{path} → {(int)response.StatusCode}");
            }

            Assert.DoesNotContain(stub.Calls, c => c.Contains("/v1/nodes", StringComparison.Ordinal)); // nothing asked for a visitor
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task With_open_reads_overview_and_nodes_need_no_login_but_admin_pages_do()
    {
        await using var stub = await StubAccountsApi.StartAsync(openReads: true);
        await using var dashboard = await DashboardHost.StartAsync(stub.BaseAddress, openReads: true);
        using var session = new DashboardSession(dashboard);
        foreach (var path in new[] { "", "nodes", "fragments/summary", "fragments/nodes" })
        {
            using var response = await session.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/{path} → {(int)response.StatusCode}");
        }

        foreach (var path in new[] { "admin/users", "admin/api-keys", "join-tokens", "my-nodes", "account/api-keys" })
        {
            using var response = await session.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"/{path} → {(int)response.StatusCode}");
            Assert.StartsWith("/login", Local(response), StringComparison.Ordinal);
        }

        var nodes = await session.Client.GetStringAsync(new Uri("nodes", UriKind.Relative));
        Assert.Contains("data-node-id=\"gpu-node-1\"", nodes, StringComparison.Ordinal);
        Assert.DoesNotContain(StubAccountsApi.Wallet, nodes, StringComparison.Ordinal);
        Assert.DoesNotContain("nav-admin-users", nodes, StringComparison.Ordinal);
        Assert.All(stub.Calls, call => Assert.EndsWith(" ", call, StringComparison.Ordinal)); // no Authorization header sent
    }

    [Fact]
    public async Task Every_response_carries_the_security_headers()
    {
        await using var stub = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(stub.BaseAddress, openReads: false);
        using var session = new DashboardSession(dashboard);
        foreach (var path in new[] { "login", "", "healthz", "css/site.css", "no-such-page" })
        {
            using var response = await session.GetAsync(path);
            var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
            Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
            Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe-eval", csp, StringComparison.Ordinal);
            var scripts = csp.Split(';').Single(d => d.Trim().StartsWith("script-src", StringComparison.Ordinal));
            Assert.DoesNotContain("unsafe-inline", scripts, StringComparison.Ordinal);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
            Assert.Equal("same-origin", response.Headers.GetValues("Referrer-Policy").Single());
        }
    }

    [Fact]
    public async Task A_form_post_without_the_antiforgery_token_is_rejected()
    {
        await using var stub = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(stub.BaseAddress, openReads: false);
        using var session = new DashboardSession(dashboard);
        using var login = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["Credentials.Email"] = StubAccountsApi.Users["u-admin"].Email,
            ["Credentials.Password"] = StubAccountsApi.Password,
        });
        using var rejected = await session.Client.PostAsync(new Uri("login", UriKind.Relative), login);
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        Assert.DoesNotContain(stub.Calls, c => c.StartsWith("POST /v1/auth/sessions", StringComparison.Ordinal));
        Assert.DoesNotContain(session.Cookies.GetCookies(dashboard.BaseAddress), c => c.Name == "dgon_auth");

        // Signed in, a logout or node action without the token is refused too, and the session lives on.
        using var ok = await session.LoginAsync(StubAccountsApi.Users["u-admin"].Email, StubAccountsApi.Password);
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        foreach (var path in new[] { "logout", "nodes/gpu-node-1/actions/quarantine" })
        {
            using var empty = new FormUrlEncodedContent(new Dictionary<string, string> { ["returnUrl"] = "/nodes" });
            using var response = await session.Client.PostAsync(new Uri(path, UriKind.Relative), empty);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"/{path} → {(int)response.StatusCode}");
        }

        Assert.DoesNotContain(stub.Calls, c => c.Contains("/v1/admin/nodes", StringComparison.Ordinal));
        Assert.Equal(1, stub.SessionCount);
        using var still = await session.GetAsync("admin/users");
        Assert.Equal(HttpStatusCode.OK, still.StatusCode);
    }

    [Fact]
    public async Task Api_calls_carry_the_session_token_and_an_expired_session_signs_out_to_login()
    {
        await using var stub = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(stub.BaseAddress, openReads: false);
        using var session = new DashboardSession(dashboard);
        using var login = await session.LoginAsync(StubAccountsApi.Users["u-viewer"].Email, StubAccountsApi.Password, "/nodes");
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        Assert.Equal("/nodes", Local(login));
        var cookie = Assert.Single(session.Cookies.GetCookies(dashboard.BaseAddress), c => c.Name == "dgon_auth");
        Assert.True(cookie.HttpOnly);
        Assert.DoesNotContain("dgs_", cookie.Value, StringComparison.Ordinal); // the token is inside the data-protected cookie

        using var nodes = await session.GetAsync("nodes");
        Assert.Equal(HttpStatusCode.OK, nodes.StatusCode);
        Assert.Contains(stub.Calls, c => c.StartsWith("GET /v1/nodes", StringComparison.Ordinal) && c.Contains("Bearer dgs_", StringComparison.Ordinal));

        // A viewer typing an admin URL: refused (403 page), and the API is not asked.
        using var admin = await session.GetAsync("admin/users");
        Assert.Equal(HttpStatusCode.Redirect, admin.StatusCode);
        Assert.StartsWith("/forbidden", Local(admin), StringComparison.Ordinal);
        using var forbidden = await session.GetAsync(Local(admin).TrimStart('/'));
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.DoesNotContain(stub.Calls, c => c.Contains("/v1/admin/users", StringComparison.Ordinal));

        // The API ends the session (expiry/revocation): the next page goes to /login and the cookie is dropped.
        stub.ExpireAllSessions();
        using var expired = await session.GetAsync("nodes");
        Assert.Equal(HttpStatusCode.Redirect, expired.StatusCode);
        Assert.StartsWith("/login?expired=1", Local(expired), StringComparison.Ordinal);
        Assert.DoesNotContain(session.Cookies.GetCookies(dashboard.BaseAddress), c => c.Name == "dgon_auth");
    }

    /// <summary>The path and query of a redirect's Location (the dashboard writes absolute URLs of itself).</summary>
    private static string Local(HttpResponseMessage response) =>
        response.Headers.Location is { } location ? (location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString) : "";
}

/// <summary>The v1 dev-open mode against the real API: DGON_OPEN_READS=true on both, no login.</summary>
public sealed class OpenReadsServerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Open_reads_on_api_and_dashboard_show_overview_and_nodes_without_a_login()
    {
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = databaseUrl });
        await Fleet.InsertAsync(pg, databaseUrl, 3, api.Client);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: true);
        try
        {
            using var session = new DashboardSession(dashboard);
            using var overview = await session.GetAsync("");
            Assert.Equal(HttpStatusCode.OK, overview.StatusCode);
            Assert.Matches("data-testid=\"total-nodes\">3<", await overview.Content.ReadAsStringAsync());
            using var nodes = await session.GetAsync("nodes");
            var html = await nodes.Content.ReadAsStringAsync();
            Assert.Contains("data-node-id=\"node-000003\"", html, StringComparison.Ordinal);
            Assert.DoesNotContain("data-testid=\"node-actions\"", html, StringComparison.Ordinal);
            using var admin = await session.GetAsync("admin/users");
            Assert.Equal(HttpStatusCode.Redirect, admin.StatusCode);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }
}
