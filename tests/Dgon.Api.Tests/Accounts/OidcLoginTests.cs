using System.Net;
using System.Text.Json;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Single sign-on (issue 12): the API trades an ID token of the configured provider — a real OpenID Connect provider
/// in process (<see cref="OidcProvider"/>, OpenIddict), reached over HTTP for discovery and keys — for a session,
/// creating the account on first login and taking the role from the role claim on every login.
/// </summary>
public sealed class OidcLoginTests
{
    private static readonly Uri Callback = new("http://127.0.0.1:1/auth/oidc/callback");

    [Fact]
    public async Task An_id_token_of_the_provider_signs_in_with_the_mapped_role_and_a_foreign_one_does_not()
    {
        await using var idp = await OidcProvider.StartAsync([new OidcTestClient("dgon", "s3cret", [Callback]), new OidcTestClient("other-app", "x", [Callback])]);
        await using var api = await StartAsync(idp);
        idp.SetUser("sub-ada", "ada@example.test", "Ada", "dgon-operator");

        var (status, body) = await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken(await idp.GetIdTokenAsync("dgon", "s3cret", Callback)));
        Assert.True(status == HttpStatusCode.Created, body);
        var session = JsonDocument.Parse(body).RootElement;
        Assert.Equal("operator", session.GetProperty("user").GetProperty("role").GetString());
        Assert.Equal("oidc", session.GetProperty("user").GetProperty("external_login").GetString());
        var token = session.GetProperty("token").GetString()!;
        var me = JsonDocument.Parse((await SendAsync(api.Client, HttpMethod.Get, "/v1/me", token)).Body).RootElement;
        Assert.Equal("ada@example.test", me.GetProperty("email").GetString());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api.Client, HttpMethod.Get, "/v1/admin/join-tokens", token)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(api.Client, HttpMethod.Get, "/v1/admin/users", token)).Status);

        // The provider makes her an admin: the next login says so, and it is the same account.
        idp.SetUser("sub-ada", "ada@example.test", "Ada", "dgon-admin", "staff");
        (status, body) = await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken(await idp.GetIdTokenAsync("dgon", "s3cret", Callback)));
        Assert.Equal(HttpStatusCode.Created, status);
        var again = JsonDocument.Parse(body).RootElement.GetProperty("user");
        Assert.Equal("admin", again.GetProperty("role").GetString());
        Assert.Equal(session.GetProperty("user").GetProperty("id").GetString(), again.GetProperty("id").GetString());

        // A token issued to another client, a tampered one, and garbage: 401, no account made.
        idp.SetUser("sub-eve", "eve@example.test", "Eve", "dgon-admin");
        var foreign = await idp.GetIdTokenAsync("other-app", "x", Callback);
        (status, body) = await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken(foreign));
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Contains("id-token-refused", body, StringComparison.Ordinal);
        var genuine = await idp.GetIdTokenAsync("dgon", "s3cret", Callback);
        var tampered = genuine[..^4] + (genuine[^4] == 'A' ? "B" : "A") + genuine[^3..];
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken(tampered))).Status);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: "{}")).Status);
        var users = (await SendAsync(api.Client, HttpMethod.Get, "/v1/admin/users", ApiHost.AdminToken)).Body;
        Assert.DoesNotContain("eve@example.test", users, StringComparison.Ordinal);
        Assert.Contains("ada@example.test", users, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_provider_account_never_takes_over_a_local_account_with_the_same_email()
    {
        await using var idp = await OidcProvider.StartAsync([new OidcTestClient("dgon", "s3cret", [Callback])]);
        await using var api = await StartAsync(idp);
        var email = NewEmail("local");
        await CreateUserAsync(api.Client, email, "viewer");
        idp.SetUser("sub-x", email, "Mallory", "dgon-admin");
        var (status, body) = await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken(await idp.GetIdTokenAsync("dgon", "s3cret", Callback)));
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("email-taken", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_provider_configured_the_endpoint_is_404_and_an_unreachable_one_is_503()
    {
        var postgres = await SharedPostgres.GetAsync();
        await using (var plain = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await postgres.CreateDatabaseAsync() }))
        {
            Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(plain.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken("x.y.z"))).Status);
        }

        var env = new Dictionary<string, string?> { ["DGON_OIDC_AUTHORITY"] = $"http://127.0.0.1:{FreePort.Next()}/", ["DGON_OIDC_CLIENT_ID"] = "dgon" };
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await postgres.CreateDatabaseAsync(), Environment = env });
        var (status, body) = await SendAsync(api.Client, HttpMethod.Post, "/v1/auth/sessions/oidc", json: IdToken("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("https://dgon.io/problems/", body, StringComparison.Ordinal);
    }

    private static string IdToken(string token) => JsonSerializer.Serialize(new { id_token = token });

    private static async Task<InProcessApiHost> StartAsync(OidcProvider idp)
    {
        var postgres = await SharedPostgres.GetAsync();
        return await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await postgres.CreateDatabaseAsync(),
            Environment = new Dictionary<string, string?> { ["DGON_OIDC_AUTHORITY"] = idp.Authority.ToString(), ["DGON_OIDC_CLIENT_ID"] = "dgon" },
        });
    }
}
