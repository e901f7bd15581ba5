using System.Text.RegularExpressions;
using Dgon.Dashboard.Tests.Support;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Dgon.Dashboard.Tests.Browser;

/// <summary>Issue 12 in headless Chromium: sign-in, admin pages, what a viewer cannot see, logout.</summary>
[Collection(BrowserCollection.Name)]
public sealed partial class AuthBrowserTests(BrowserFixture browser, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<IPage> _pages = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var page in _pages)
        {
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task An_admin_signs_in_creates_a_join_token_with_the_agent_command_and_an_api_key_shown_once()
    {
        await using var api = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: false);
        try
        {
            var page = await NewPageAsync();
            await page.GotoAsync(dashboard.Url("join-tokens"));
            await page.WaitForURLAsync(new Regex("/login\\?returnUrl="));
            await SignInAsync(page, StubAccountsApi.Users["u-admin"].Email);
            await page.WaitForURLAsync(new Regex("/join-tokens$"));
            await Expect(page.GetByTestId("signed-in-role")).ToHaveTextAsync("admin");
            await Expect(page.GetByTestId("nav-admin-users")).ToBeVisibleAsync();

            await page.GetByTestId("join-token-description").FillAsync("rack 7");
            await page.GetByTestId("join-token-max-uses").FillAsync("3");
            await page.GetByTestId("join-token-submit").ClickAsync();
            var token = page.GetByTestId("join-token-value");
            await Expect(token).ToHaveTextAsync(JoinTokenPattern());
            var tokenText = await token.TextContentAsync();
            await Expect(page.GetByTestId("agent-command")).ToHaveTextAsync($"dgon-agent --api {api.BaseAddress.ToString().TrimEnd('/')} --join-token {tokenText}");
            await Expect(page.GetByTestId("copy-agent-command")).ToBeVisibleAsync();
            await Expect(page.GetByTestId("join-token-row")).ToHaveCountAsync(1);
            await Expect(page.GetByTestId("join-token-row")).ToContainTextAsync("rack 7");
            await Expect(page.GetByTestId("join-token-row")).ToContainTextAsync("0 / 3");
            await BrowserFixture.ScreenshotAsync(page, "join-token-created");

            await page.GetByTestId("nav-my-api-keys").ClickAsync();
            await page.WaitForURLAsync(new Regex("/account/api-keys$"));
            await page.GetByTestId("api-key-name").FillAsync("ci");
            await page.GetByTestId("api-key-submit").ClickAsync();
            var key = page.GetByTestId("api-key-value");
            await Expect(key).ToHaveTextAsync(ApiKeyPattern());
            await Expect(page.GetByTestId("api-key-row")).ToHaveCountAsync(1);
            await Expect(page.GetByTestId("api-key-row")).ToContainTextAsync("nodes:read receipts:read inference");
            await BrowserFixture.ScreenshotAsync(page, "api-key-created");
            Assert.Contains(api.Calls, c => c.StartsWith("POST /v1/me/api-keys", StringComparison.Ordinal) && c.Contains("Bearer dgs_", StringComparison.Ordinal));

            // Shown once: a new visit lists the key, never the key itself.
            await page.GotoAsync(dashboard.Url("account/api-keys"));
            await Expect(page.GetByTestId("api-key-row")).ToHaveCountAsync(1);
            await Expect(page.GetByTestId("api-key-value")).ToHaveCountAsync(0);

            // Revoke, confirmed in the dialog.
            page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
            await page.GetByTestId("api-key-revoke").ClickAsync();
            await Expect(page.GetByTestId("api-key-state")).ToHaveTextAsync("revoked");
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task A_viewer_sees_no_admin_links_is_refused_typed_admin_urls_and_sees_no_wallet_addresses()
    {
        await using var api = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: false);
        try
        {
            var viewer = await NewPageAsync();
            await viewer.GotoAsync(dashboard.Url("login"));
            await SignInAsync(viewer, StubAccountsApi.Users["u-viewer"].Email);
            await viewer.WaitForURLAsync(new Regex("/$"));
            await Expect(viewer.GetByTestId("signed-in-role")).ToHaveTextAsync("viewer");
            await Expect(viewer.GetByTestId("nav-nodes")).ToBeVisibleAsync();
            await Expect(viewer.GetByTestId("nav-my-api-keys")).ToBeVisibleAsync();
            foreach (var hidden in new[] { "nav-admin-users", "nav-admin-api-keys", "nav-admin-ip-bans", "nav-admin-audit", "nav-join-tokens", "nav-my-nodes" })
            {
                await Expect(viewer.GetByTestId(hidden)).ToHaveCountAsync(0);
            }

            foreach (var path in new[] { "admin/users", "admin/api-keys", "admin/ip-bans", "admin/audit", "join-tokens", "my-nodes" })
            {
                var response = await viewer.GotoAsync(dashboard.Url(path));
                Assert.Equal(403, response!.Status);
                await Expect(viewer.GetByTestId("forbidden")).ToBeVisibleAsync();
            }

            Assert.DoesNotContain(api.Calls, c => c.Contains("/v1/admin/", StringComparison.Ordinal));

            await viewer.GotoAsync(dashboard.Url("nodes"));
            var row = viewer.Locator("tr[data-node-id='gpu-node-1']");
            await Expect(row.GetByTestId("wallet")).ToHaveTextAsync("—");
            await Expect(row.GetByTestId("node-actions")).ToHaveCountAsync(0);
            Assert.DoesNotContain(StubAccountsApi.Wallet, await viewer.ContentAsync(), StringComparison.Ordinal);
            await BrowserFixture.ScreenshotAsync(viewer, "nodes-viewer");

            // The same table for the admin: the wallet and the node actions.
            var admin = await NewPageAsync();
            await admin.GotoAsync(dashboard.Url("login?returnUrl=%2Fnodes"));
            await SignInAsync(admin, StubAccountsApi.Users["u-admin"].Email);
            await admin.WaitForURLAsync(new Regex("/nodes$"));
            var adminRow = admin.Locator("tr[data-node-id='gpu-node-1']");
            await Expect(adminRow.GetByTestId("wallet")).ToHaveTextAsync(StubAccountsApi.Wallet);
            await Expect(adminRow.GetByTestId("node-quarantine")).ToBeVisibleAsync();
            await BrowserFixture.ScreenshotAsync(admin, "nodes-admin");
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task Logout_ends_the_api_session_and_the_old_cookie_no_longer_works()
    {
        await using var api = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: false);
        try
        {
            var page = await NewPageAsync();
            await page.GotoAsync(dashboard.Url("login?returnUrl=%2Fadmin%2Fusers"));
            await SignInAsync(page, StubAccountsApi.Users["u-admin"].Email);
            await page.WaitForURLAsync(new Regex("/admin/users$"));
            await Expect(page.GetByTestId("user-row")).ToHaveCountAsync(3);
            var cookies = await page.Context.CookiesAsync();
            var auth = Assert.Single(cookies, c => c.Name == "dgon_auth");
            Assert.True(auth.HttpOnly);
            Assert.Equal(SameSiteAttribute.Lax, auth.SameSite);

            await page.GetByTestId("logout").ClickAsync();
            await page.WaitForURLAsync(new Regex("/login\\?loggedOut=1$"));
            await Expect(page.GetByTestId("logged-out")).ToBeVisibleAsync();
            await Expect(page.GetByTestId("nav-login")).ToBeVisibleAsync();
            Assert.Contains(api.Calls, c => c.StartsWith("DELETE /v1/auth/sessions/current Bearer dgs_", StringComparison.Ordinal));
            Assert.Equal(0, api.SessionCount);

            // Someone who kept the old cookie: the API refuses its session, the dashboard sends them to /login.
            var replay = await NewPageAsync();
            await replay.Context.AddCookiesAsync(cookies.Select(c => new Cookie { Name = c.Name, Value = c.Value, Domain = c.Domain, Path = c.Path, HttpOnly = c.HttpOnly, SameSite = c.SameSite }));
            await replay.GotoAsync(dashboard.Url("admin/users"));
            await replay.WaitForURLAsync(new Regex("/login\\?expired=1"));
            await Expect(replay.GetByTestId("session-expired")).ToBeVisibleAsync();
            await Expect(replay.GetByTestId("user-row")).ToHaveCountAsync(0);
            Assert.DoesNotContain(await replay.Context.CookiesAsync(), c => c.Name == "dgon_auth");
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task Wrong_credentials_are_explained_and_the_admin_token_signs_in_the_bootstrap_admin()
    {
        await using var api = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: false);
        var page = await NewPageAsync();
        await page.GotoAsync(dashboard.Url("login"));
        await page.GetByTestId("login-email").FillAsync(StubAccountsApi.Users["u-admin"].Email);
        await page.GetByTestId("login-password").FillAsync("not the password at all");
        await page.GetByTestId("login-submit").ClickAsync();
        await Expect(page.GetByTestId("login-error")).ToContainTextAsync("Wrong e-mail, password or token.");
        await Expect(page.GetByTestId("login-oidc")).ToHaveCountAsync(0); // no DGON_OIDC_AUTHORITY

        await page.GetByText("Sign in with the admin token").ClickAsync();
        await page.GetByTestId("admin-token").FillAsync(StubAccountsApi.AdminToken);
        await page.GetByTestId("admin-token-submit").ClickAsync();
        await page.WaitForURLAsync(new Regex("/$"));
        await Expect(page.GetByTestId("signed-in-as")).ToHaveTextAsync("admin (token)");
        await Expect(page.GetByTestId("nav-admin-users")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task The_sign_in_with_button_shows_only_when_oidc_is_configured()
    {
        await using var api = await StubAccountsApi.StartAsync();
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: false, environment: new Dictionary<string, string?>
        {
            ["DGON_OIDC_AUTHORITY"] = "https://id.example.test/realms/dgon",
            ["DGON_OIDC_CLIENT_ID"] = "dgon-dashboard",
            ["DGON_OIDC_DISPLAY_NAME"] = "Example ID",
        });
        var page = await NewPageAsync();
        await page.GotoAsync(dashboard.Url("login?returnUrl=%2Fnodes"));
        var button = page.GetByTestId("login-oidc");
        await Expect(button).ToHaveTextAsync("Sign in with Example ID");
        await Expect(button).ToHaveAttributeAsync("href", "auth/oidc?returnUrl=%2Fnodes");
    }

    private static async Task SignInAsync(IPage page, string email)
    {
        await page.GetByTestId("login-email").FillAsync(email);
        await page.GetByTestId("login-password").FillAsync(StubAccountsApi.Password);
        await page.GetByTestId("login-submit").ClickAsync();
    }

    private async Task<IPage> NewPageAsync()
    {
        var page = await browser.NewPageAsync();
        _pages.Add(page);
        return page;
    }

    [GeneratedRegex("^[0-9a-f]{6}\\.[a-z0-9]{16}$")]
    private static partial Regex JoinTokenPattern();

    [GeneratedRegex("^dgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")]
    private static partial Regex ApiKeyPattern();
}
