using System.Net;
using System.Text.Json;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Issue 12 across two API replicas — two API processes on one PostgreSQL: a key revoked, a session ended, a role
/// changed or an address banned on one replica takes effect on the other at once (credentials are looked up on every
/// request; bans travel by LISTEN/NOTIFY).
/// </summary>
public sealed class AccountsReplicaTests
{
    [Fact]
    public async Task Revocation_logout_demotion_and_bans_on_one_replica_hold_on_the_other_at_once()
    {
        var postgres = await SharedPostgres.GetAsync();
        var url = await postgres.CreateDatabaseAsync();
        var env = new Dictionary<string, string?> { ["DGON_TRUSTED_PROXIES"] = "127.0.0.1" };
        await using var a = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, Environment = env });
        await using var b = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url, Environment = env });

        var email = NewEmail("replicated");
        var id = await CreateUserAsync(a.Client, email, "admin");
        var session = await LoginAsync(a.Client, email);
        var (keyId, key) = await CreateKeyAsync(a.Client, session, "nodes:read", "admin");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(b.Client, HttpMethod.Get, "/v1/nodes", key)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(b.Client, HttpMethod.Get, "/v1/admin/users", session)).Status);

        // Revoked on A: refused on B with the very next request.
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(a.Client, HttpMethod.Delete, $"/v1/admin/api-keys/{keyId}", ApiHost.AdminToken)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(b.Client, HttpMethod.Get, "/v1/nodes", key)).Status);

        // A second key survives; demoting its owner on B cuts its scopes on A at once.
        var (_, second) = await CreateKeyAsync(b.Client, session, "nodes:read", "admin");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(a.Client, HttpMethod.Get, "/v1/admin/audit", second)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(b.Client, HttpMethod.Patch, $"/v1/admin/users/{id}", ApiHost.AdminToken, "{\"role\":\"viewer\"}")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(a.Client, HttpMethod.Get, "/v1/admin/audit", second)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(a.Client, HttpMethod.Get, "/v1/nodes", second)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(a.Client, HttpMethod.Get, "/v1/me", session)).Status); // demotion ended the session

        // Logout on B ends the session on A.
        var fresh = await LoginAsync(b.Client, email);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(a.Client, HttpMethod.Get, "/v1/me", fresh)).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(b.Client, HttpMethod.Delete, "/v1/auth/sessions/current", fresh)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(a.Client, HttpMethod.Get, "/v1/me", fresh)).Status);

        // A ban set on A refuses on B as soon as B's ban list hears of it (NOTIFY), and lifting it on B frees it on A.
        const string address = "192.0.2.44";
        var (status, body) = await SendAsync(a.Client, HttpMethod.Post, "/v1/admin/ip-bans", ApiHost.AdminToken, "{\"network\":\"" + address + "\",\"reason\":\"replica test\"}");
        Assert.Equal(HttpStatusCode.Created, status);
        var banId = JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();
        await Eventually.Until(
            async () => (await SendAsync(b.Client, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: address)).Status == HttpStatusCode.Forbidden,
            TimeSpan.FromSeconds(10),
            "the ban reaches replica B");
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(b.Client, HttpMethod.Delete, $"/v1/admin/ip-bans/{banId}", ApiHost.AdminToken)).Status);
        await Eventually.Until(
            async () => (await SendAsync(a.Client, HttpMethod.Get, "/v1/summary", ApiHost.AdminToken, forwardedFor: address)).Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(10),
            "the lift reaches replica A");
    }
}
