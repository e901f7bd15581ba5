using System.Text.RegularExpressions;
using Dgon.Dashboard.Tests.Support;
using Dgon.Testing;
using static Microsoft.Playwright.Assertions;

namespace Dgon.Dashboard.Tests.Browser;

/// <summary>
/// Single sign-on in a real browser (issue 12): the dashboard's "Sign in with …" runs the authorization-code flow
/// against an in-process OpenID Connect provider (<see cref="OidcProvider"/>), and the real API turns the ID token
/// into a session with the role the provider's claim names.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class OidcBrowserTests(BrowserFixture browser)
{
    [Fact]
    public async Task Sign_in_with_the_identity_provider_lands_signed_in_with_the_mapped_role()
    {
        var dashboardPort = FreePort.Next();
        var callback = new Uri($"http://127.0.0.1:{dashboardPort}/auth/oidc/callback");
        await using var idp = await OidcProvider.StartAsync([new OidcTestClient("dgon-dashboard", "dashboard-secret", [callback])]);
        idp.SetUser("sub-grace", "grace@example.test", "Grace", "dgon-operator");
        var oidc = new Dictionary<string, string?>
        {
            ["DGON_OIDC_AUTHORITY"] = idp.Authority.ToString(),
            ["DGON_OIDC_CLIENT_ID"] = "dgon-dashboard",
            ["DGON_OIDC_DISPLAY_NAME"] = "Test IdP",
        };
        var pg = await SharedPostgres.GetAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await pg.CreateDatabaseAsync(), Environment = oidc });
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress, dashboardPort, openReads: false, new Dictionary<string, string?>(oidc)
        {
            ["DGON_OIDC_CLIENT_SECRET"] = "dashboard-secret",
            ["DGON_OIDC_SCOPES"] = "openid email profile roles",
        });

        var page = await browser.NewPageAsync();
        try
        {
            await page.GotoAsync(dashboard.Url("my-nodes"));
            await page.WaitForURLAsync(new Regex("/login\\?returnUrl="));
            await page.GetByTestId("login-oidc").ClickAsync();
            await page.WaitForURLAsync(new Regex("/my-nodes$"));
            Assert.Equal(1, idp.Authorizations);
            await Expect(page.GetByTestId("signed-in-role")).ToHaveTextAsync("operator");
            await Expect(page.GetByTestId("nav-my-nodes")).ToBeVisibleAsync();
            await Expect(page.GetByTestId("nav-admin-users")).ToHaveCountAsync(0);

            // The account exists in the API, made by the provider login, with the operator role.
            using var users = new HttpRequestMessage(HttpMethod.Get, "/v1/admin/users");
            users.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
            using var response = await api.Client.SendAsync(users);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains("grace@example.test", body, StringComparison.Ordinal);
            Assert.Contains("\"external_login\":\"oidc\"", body, StringComparison.Ordinal);

            // A user the provider refuses (no user signed in there) comes back to the login page with a message, not an error page.
            await page.Context.ClearCookiesAsync();
            idp.SetUser(null);
            await page.GotoAsync(dashboard.Url("login"));
            await page.GetByTestId("login-oidc").ClickAsync();
            await page.WaitForURLAsync(new Regex("/login\\?sso=failed"));
        }
        catch
        {
            await BrowserFixture.ScreenshotAsync(page, "oidc-sign-in");
            throw;
        }
        finally
        {
            await page.Context.CloseAsync();
        }
    }
}
