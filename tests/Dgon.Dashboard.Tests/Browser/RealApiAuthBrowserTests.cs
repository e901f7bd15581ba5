using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Dgon.Dashboard.Tests.Support;
using Dgon.Testing;
using Microsoft.Playwright;
using Npgsql;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Dgon.Dashboard.Tests.Browser;

/// <summary>Issue 12 against the real API and PostgreSQL (no open reads): the bootstrap admin, a viewer, logout.</summary>
[Collection(BrowserCollection.Name)]
public sealed partial class RealApiAuthBrowserTests(BrowserFixture browser, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Wallet = "0xREALWALLET000000000000000000000000000c0de";
    private const string ViewerEmail = "viewer@example.test";
    private const string ViewerPassword = "viewer password 12345";
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
    public async Task Admin_token_sign_in_creates_a_viewer_a_join_token_and_a_key_and_the_viewer_sees_no_admin_pages_or_wallets()
    {
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = databaseUrl });
        await InsertNodeWithWalletAsync(pg, databaseUrl, api.Client);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, openReads: false);
        try
        {
            var admin = await NewPageAsync();
            await admin.GotoAsync(dashboard.Url("admin/users"));
            await admin.WaitForURLAsync(new Regex("/login\\?returnUrl="));
            await admin.GetByText("Sign in with the admin token").ClickAsync();
            await admin.GetByTestId("admin-token").FillAsync(ApiHost.AdminToken);
            await admin.GetByTestId("admin-token-submit").ClickAsync();
            await admin.WaitForURLAsync(new Regex("/admin/users$"));
            await Expect(admin.GetByTestId("signed-in-role")).ToHaveTextAsync("admin");

            // A viewer account.
            await admin.GetByTestId("user-email").FillAsync(ViewerEmail);
            await admin.GetByTestId("user-password").FillAsync(ViewerPassword);
            await admin.GetByTestId("user-role").SelectOptionAsync("viewer");
            await admin.GetByTestId("user-submit").ClickAsync();
            await Expect(admin.GetByTestId("users-message")).ToContainTextAsync("created with role viewer");
            await Expect(admin.Locator($"tr[data-email='{ViewerEmail}']")).ToContainTextAsync("viewer");

            // A join token with the ready-made agent command.
            // Navigate by URL: the nav links are covered by the other browser tests, and a click can straddle a page swap.
            await Expect(admin.GetByTestId("nav-join-tokens")).ToBeVisibleAsync();
            await admin.GotoAsync(dashboard.Url("join-tokens"));
            await admin.GetByTestId("join-token-description").FillAsync("rack 9");
            await admin.GetByTestId("join-token-submit").ClickAsync();
            var token = await admin.GetByTestId("join-token-value").TextContentAsync();
            Assert.Matches("^[a-z0-9]{6}\\.[a-z0-9]{16}$", token);
            await Expect(admin.GetByTestId("agent-command")).ToHaveTextAsync($"dgon-agent --api {api.BaseAddress.ToString().TrimEnd('/')} --join-token {token}");
            await Expect(admin.GetByTestId("join-token-row").First).ToContainTextAsync("rack 9");

            // An API key, shown once; it works against the API.
            await Expect(admin.GetByTestId("nav-admin-api-keys")).ToBeVisibleAsync();
            await admin.GotoAsync(dashboard.Url("admin/api-keys"));
            await admin.GetByTestId("api-key-name").FillAsync("ci");
            await admin.GetByTestId("api-key-submit").ClickAsync();
            var key = await admin.GetByTestId("api-key-value").TextContentAsync();
            Assert.StartsWith("dgk_", key, StringComparison.Ordinal);
            using (var request = new HttpRequestMessage(HttpMethod.Get, "/v1/nodes"))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                using var response = await api.Client.SendAsync(request);
                Assert.True(response.IsSuccessStatusCode, $"the new key reads nodes: {(int)response.StatusCode}");
            }

            await admin.GotoAsync(dashboard.Url("admin/api-keys")); // a new visit (a reload would post the form again)
            await Expect(admin.GetByTestId("api-key-value")).ToHaveCountAsync(0);
            await Expect(admin.GetByTestId("api-key-row")).ToHaveCountAsync(1);

            // The admin sees the wallet; the audit log has the admin's actions.
            await admin.GotoAsync(dashboard.Url("nodes"));
            await Expect(admin.Locator("tr[data-node-id='wallet-node-1']").GetByTestId("wallet")).ToHaveTextAsync(Wallet);
            await admin.GotoAsync(dashboard.Url("admin/audit"));
            await Expect(admin.Locator("tr[data-action='api_key.create']")).ToHaveCountAsync(1);
            await Expect(admin.Locator("tr[data-action='user.create']")).ToHaveCountAsync(1);
            await BrowserFixture.ScreenshotAsync(admin, "audit");

            // The viewer: no admin links, typed admin URLs refused, no wallet.
            var viewer = await NewPageAsync();
            await viewer.GotoAsync(dashboard.Url("login"));
            await viewer.GetByTestId("login-email").FillAsync(ViewerEmail);
            await viewer.GetByTestId("login-password").FillAsync(ViewerPassword);
            await viewer.GetByTestId("login-submit").ClickAsync();
            await viewer.WaitForURLAsync(new Regex("/$"));
            await Expect(viewer.GetByTestId("total-nodes")).ToHaveTextAsync("1");
            await Expect(viewer.GetByTestId("nav-admin-users")).ToHaveCountAsync(0);
            await Expect(viewer.GetByTestId("nav-join-tokens")).ToHaveCountAsync(0);
            var refused = await viewer.GotoAsync(dashboard.Url("admin/api-keys"));
            Assert.Equal(403, refused!.Status);
            await viewer.GotoAsync(dashboard.Url("nodes"));
            await Expect(viewer.Locator("tr[data-node-id='wallet-node-1']").GetByTestId("wallet")).ToHaveTextAsync("—");
            Assert.DoesNotContain(Wallet, await viewer.ContentAsync(), StringComparison.Ordinal);

            // Logout: the API session dies; the kept cookie no longer works.
            var cookies = await viewer.Context.CookiesAsync();
            await viewer.GetByTestId("logout").ClickAsync();
            await viewer.WaitForURLAsync(new Regex("/login\\?loggedOut=1$"));
            var replay = await NewPageAsync();
            await replay.Context.AddCookiesAsync(cookies.Select(c => new Cookie { Name = c.Name, Value = c.Value, Domain = c.Domain, Path = c.Path }));
            await replay.GotoAsync(dashboard.Url("nodes"));
            await replay.WaitForURLAsync(new Regex("/login\\?expired=1"));
            await Expect(replay.GetByTestId("node-row")).ToHaveCountAsync(0);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
            output.WriteLine(api.Process.Dump());
        }
    }

    private static async Task InsertNodeWithWalletAsync(PostgresServer pg, string databaseUrl, HttpClient api)
    {
        await using (var db = new NpgsqlConnection(pg.ConnectionStringForUrl(databaseUrl)))
        {
            await db.OpenAsync();
            await using var insert = new NpgsqlCommand(
                """
                INSERT INTO nodes (id, region, runtime, status, ready, last_heartbeat, last_seen_at, registered_at, wallet_address)
                VALUES ('wallet-node-1', 'eu-west', 'ollama', 'active', true, now(), now(), now(), @wallet);
                SELECT pg_notify('dgon_node_changed', 'wallet-node-1');
                """, db);
            insert.Parameters.AddWithValue("wallet", Wallet);
            await insert.ExecuteNonQueryAsync();
        }

        await Eventually.Until(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/summary");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
            using var summary = await api.SendAsync(request);
            using var doc = System.Text.Json.JsonDocument.Parse(await summary.Content.ReadAsStringAsync());
            return doc.RootElement.TryGetProperty("total_nodes", out var total) && total.GetInt32() >= 1;
        }, TimeSpan.FromSeconds(20), "the API's node table holds the inserted node");
    }

    private async Task<IPage> NewPageAsync()
    {
        var page = await browser.NewPageAsync();
        _pages.Add(page);
        return page;
    }
}
