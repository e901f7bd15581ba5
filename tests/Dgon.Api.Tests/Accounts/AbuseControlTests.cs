using System.Net;
using System.Text.Json;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Seed 004's abuse controls as issue 12 asks for them: lockout after 5 failed logins for 30 min, rate-limited login
/// and sign-up, IP bans with expiry that admins set and lift, automatic bans of an address that keeps failing —
/// each a 403/429 problem+json, never a 500. Each test has its own API (settings differ) on its own database.
/// </summary>
public sealed class AbuseControlTests
{
    [Fact]
    public async Task Five_failed_logins_lock_the_account_for_30_minutes_until_an_admin_unlocks_it()
    {
        await using var host = await StartAsync();
        var api = host.Client;
        var email = NewEmail("locked");
        var id = await CreateUserAsync(api, email, "viewer");
        for (var i = 1; i <= 4; i++)
        {
            var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(email, "wrong password " + i));
            Assert.Equal(HttpStatusCode.Unauthorized, status);
            Assert.Contains("invalid-credentials", body, StringComparison.Ordinal);
        }

        using (var fifth = Request(HttpMethod.Post, "/v1/auth/sessions", json: Login(email, "wrong password 5")))
        using (var response = await api.SendAsync(fifth))
        {
            await Json.AssertProblemAsync(response, 403, "account-locked");
            var retry = response.Headers.RetryAfter?.Delta ?? TimeSpan.Zero;
            Assert.InRange(retry.TotalMinutes, 29, 30.01);
        }

        // The right password does not get in while locked; the lock is in the user row (lockout_end ≈ now + 30 min).
        var locked = await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(email, Password));
        Assert.Equal(HttpStatusCode.Forbidden, locked.Status);
        var users = JsonDocument.Parse((await SendAsync(api, HttpMethod.Get, "/v1/admin/users", ApiHost.AdminToken)).Body).RootElement;
        var user = users.EnumerateArray().Single(u => u.GetProperty("id").GetString() == id);
        Assert.InRange(user.GetProperty("locked_until").GetDateTime() - DateTime.UtcNow, TimeSpan.FromMinutes(29), TimeSpan.FromMinutes(30.1));

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Post, $"/v1/admin/users/{id}/unlock", ApiHost.AdminToken)).Status);
        await LoginAsync(api, email);

        // An unknown e-mail gets the same answer as a wrong password.
        var unknown = await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(NewEmail("nobody"), Password));
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.Status);
        Assert.Contains("invalid-credentials", unknown.Body, StringComparison.Ordinal);
        var audit = (await SendAsync(api, HttpMethod.Get, "/v1/admin/audit?action=session.fail", ApiHost.AdminToken)).Body;
        Assert.Contains("locked_out_now", audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_admins_ip_ban_refuses_the_address_until_lifted_and_expires_by_itself()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartAsync(new() { ["DGON_TRUSTED_PROXIES"] = "127.0.0.1" }, clock: clock);
        var api = host.Client;
        const string banned = "203.0.113.9";
        var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/admin/ip-bans", ApiHost.AdminToken, "{\"network\":\"203.0.113.0/24\",\"reason\":\"scraping\"}");
        Assert.Equal(HttpStatusCode.Created, status);
        var banId = JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();

        using (var request = Request(HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: banned))
        using (var refused = await api.SendAsync(request))
        {
            await Json.AssertProblemAsync(refused, 403, "address-banned");
        }

        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(api, HttpMethod.Post, "/v1/nodes/register", json: "{}", forwardedFor: banned)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: "198.51.100.1")).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/healthz", forwardedFor: banned)).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(api, HttpMethod.Delete, $"/v1/admin/ip-bans/{banId}", ApiHost.AdminToken)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: banned)).Status);

        // A ban with a duration ends by itself: every check compares its expiry with the clock.
        (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/admin/ip-bans", ApiHost.AdminToken, "{\"network\":\"" + banned + "\",\"reason\":\"short\",\"duration_seconds\":60}");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Contains("\"network\":\"203.0.113.9/32\"", body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: banned)).Status);
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: banned)).Status);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: banned)).Status);
        Assert.DoesNotContain(banned, (await SendAsync(api, HttpMethod.Get, "/v1/admin/ip-bans", ApiHost.AdminToken)).Body, StringComparison.Ordinal);
        Assert.Contains(banned, (await SendAsync(api, HttpMethod.Get, "/v1/admin/ip-bans?all=true", ApiHost.AdminToken)).Body, StringComparison.Ordinal);

        var bad = await SendAsync(api, HttpMethod.Post, "/v1/admin/ip-bans", ApiHost.AdminToken, "{\"network\":\"not-an-ip\",\"reason\":\"\"}");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.Status);
        Assert.Contains("network", bad.Body, StringComparison.Ordinal);
        Assert.Contains("reason", bad.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_address_that_keeps_failing_authentication_is_banned_automatically_and_audited()
    {
        await using var host = await StartAsync(new() { ["DGON_TRUSTED_PROXIES"] = "127.0.0.1", ["DGON_AUTO_BAN_FAILURES"] = "4" });
        var api = host.Client;
        const string attacker = "198.51.100.66";
        var email = NewEmail("target");
        await CreateUserAsync(api, email, "viewer");
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(email, "guess " + i + " xxxxxxxx"), forwardedFor: attacker)).Status);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Get, "/v1/nodes", "dgk_0123456789ab_" + new string('x', 43), forwardedFor: attacker)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Get, "/v1/nodes", "not-a-real-admin-token-at-all-0123456789", forwardedFor: attacker)).Status);

        // The 4th failure banned it: even a right credential is refused from there, while others are not.
        var (status, body) = await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: attacker);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("address-banned", body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: "198.51.100.67")).Status);

        var bans = JsonDocument.Parse((await SendAsync(api, HttpMethod.Get, "/v1/admin/ip-bans", ApiHost.AdminToken)).Body).RootElement;
        var ban = Assert.Single(bans.EnumerateArray());
        Assert.True(ban.GetProperty("automatic").GetBoolean());
        Assert.Equal(attacker + "/32", ban.GetProperty("network").GetString());
        Assert.Equal("system", ban.GetProperty("created_by").GetString());
        Assert.InRange(ban.GetProperty("expires_at").GetDateTime() - DateTime.UtcNow, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(60.1));
        await Eventually.Until(
            async () => (await SendAsync(api, HttpMethod.Get, "/v1/admin/audit?action=ip_ban.auto", ApiHost.AdminToken)).Body.Contains(attacker, StringComparison.Ordinal),
            TimeSpan.FromSeconds(10),
            "the automatic ban is in the audit log");

        // Loopback is never banned automatically (an admin on the box cannot lock themselves out).
        for (var i = 0; i < 6; i++)
        {
            await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(NewEmail("x"), "wrong password xx"));
        }

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken)).Status);
    }

    [Fact]
    public async Task Login_and_signup_are_rate_limited_per_address_and_signup_is_off_by_default()
    {
        await using (var closed = await StartAsync())
        {
            var (status, body) = await SendAsync(closed.Client, HttpMethod.Post, "/v1/auth/signup", json: Login(NewEmail("self"), Password));
            Assert.Equal(HttpStatusCode.NotFound, status);
            Assert.Contains("DGON_SIGNUP", body, StringComparison.Ordinal);
        }

        await using var host = await StartAsync(
            new() { ["DGON_SIGNUP"] = "true", ["DGON_RATE_LIMIT_LOGIN"] = "3/1", ["DGON_RATE_LIMIT_SIGNUP"] = "3/1", ["DGON_RATE_LIMIT_ADMIN"] = "1000/1000", ["DGON_AUTO_BAN_FAILURES"] = "0" },
            rateLimits: true);
        var api = host.Client;
        var email = NewEmail("self");
        var signup = await SendAsync(api, HttpMethod.Post, "/v1/auth/signup", json: Login(email, Password));
        Assert.Equal(HttpStatusCode.Created, signup.Status);
        Assert.Contains("\"role\":\"viewer\"", signup.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await SendAsync(api, HttpMethod.Post, "/v1/auth/signup", json: Login(email, Password))).Status);
        var weak = await SendAsync(api, HttpMethod.Post, "/v1/auth/signup", json: Login(NewEmail("weak"), "short"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, weak.Status);
        Assert.Contains("password", weak.Body, StringComparison.Ordinal);
        using (var limited = Request(HttpMethod.Post, "/v1/auth/signup", json: Login(NewEmail("fourth"), Password)))
        using (var response = await api.SendAsync(limited))
        {
            await Json.AssertProblemAsync(response, 429, "rate-limited");
            Assert.NotNull(response.Headers.RetryAfter);
        }

        await LoginAsync(api, email);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(email, "wrong password 1"))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(email, "wrong password 2"))).Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: Login(email, Password))).Status);
    }

    [Fact]
    public async Task Bad_login_bodies_are_4xx_problems_never_500()
    {
        await using var host = await StartAsync();
        foreach (var body in new[] { "", "{", "[]", "{\"email\":5}", "{\"email\":\"a@b.cd\"}", "{\"admin_token\":\"x\",\"email\":\"a@b.cd\",\"password\":\"p\"}", "{\"email\":\"" + new string('a', 300) + "\",\"password\":\"x\"}", "null" })
        {
            var (status, text) = await SendAsync(host.Client, HttpMethod.Post, "/v1/auth/sessions", json: body);
            Assert.True((int)status is >= 400 and < 500, $"{body} → {(int)status}: {text}");
            Assert.Contains("https://dgon.io/problems/", text, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(host.Client, HttpMethod.Post, "/v1/auth/sessions", json: "{\"admin_token\":\"wrong\"}")).Status);
        var admin = await SendAsync(host.Client, HttpMethod.Post, "/v1/auth/sessions", json: JsonSerializer.Serialize(new { admin_token = ApiHost.AdminToken }));
        Assert.Equal(HttpStatusCode.Created, admin.Status);
        Assert.Contains("\"id\":\"admin-token\"", admin.Body, StringComparison.Ordinal);
    }

    private static string Login(string email, string password) => JsonSerializer.Serialize(new { email, password });

    private static async Task<InProcessApiHost> StartAsync(Dictionary<string, string?>? environment = null, bool rateLimits = false, TimeProvider? clock = null)
    {
        var postgres = await SharedPostgres.GetAsync();
        var url = await postgres.CreateDatabaseAsync();
        return await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, RateLimits = rateLimits, Environment = environment ?? [] }, clock);
    }
}
