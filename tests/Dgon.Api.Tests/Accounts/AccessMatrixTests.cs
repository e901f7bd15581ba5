using System.Net;
using System.Text;
using Dgon.Testing;
using Xunit.Abstractions;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Accounts;

/// <summary>
/// Issue 12's role × endpoint table, over real HTTP against the API and PostgreSQL: every credential kind and role
/// against every endpoint that decides access. A cell is the status the endpoint must answer; allowed cells use a
/// request that stops right after authorization (a 422 body, a node that does not exist) so nothing is changed.
/// </summary>
public sealed class AccessMatrixTests(ApiFixture fx, ITestOutputHelper output) : IClassFixture<ApiFixture>
{
    private const string Everyone = "admin-token admin operator viewer viewer-key:nodes:read operator-key:inference admin-key:admin admin-key:nodes:read";
    private const string Readers = "admin-token admin operator viewer viewer-key:nodes:read admin-key:nodes:read";
    private const string People = "admin-token admin operator viewer";
    private const string Admins = "admin-token admin admin-key:admin";
    private const string NodeManagers = "admin-token admin admin-key:admin operator";

    /// <summary>Method, path, body, the status of an allowed caller, and who is allowed.</summary>
    private static readonly (string Method, string Path, string? Body, int Ok, string Allowed)[] Endpoints =
    [
        ("GET", "/v1/nodes", null, 200, Readers),
        ("GET", "/v1/summary", null, 200, Readers),
        ("GET", "/v1/me", null, 200, Everyone),
        ("GET", "/v1/me/summary", null, 200, People),
        ("GET", "/v1/me/api-keys", null, 200, People),
        ("POST", "/v1/me/api-keys", "{}", 422, People),
        ("GET", "/v1/admin/users", null, 200, Admins),
        ("POST", "/v1/admin/users", "{}", 422, Admins),
        ("PATCH", "/v1/admin/users/no-such-user", "{}", 404, Admins),
        ("DELETE", "/v1/admin/users/no-such-user", null, 404, Admins),
        ("GET", "/v1/admin/api-keys", null, 200, Admins),
        ("POST", "/v1/admin/api-keys", "{}", 422, Admins),
        ("DELETE", "/v1/admin/api-keys/000000000000", null, 404, Admins),
        ("GET", "/v1/admin/ip-bans", null, 200, Admins),
        ("POST", "/v1/admin/ip-bans", "{}", 422, Admins),
        ("DELETE", "/v1/admin/ip-bans/999999", null, 404, Admins),
        ("GET", "/v1/admin/audit", null, 200, Admins),
        ("GET", "/v1/admin/join-tokens", null, 200, NodeManagers),
        ("POST", "/v1/admin/join-tokens", "{\"ttl_seconds\":1}", 422, NodeManagers),
        ("DELETE", "/v1/admin/join-tokens/zzzzzz", null, 404, NodeManagers),
        ("POST", "/v1/admin/nodes/no-such-node/quarantine", null, 404, NodeManagers),
        ("POST", "/v1/admin/nodes/no-such-node/release", null, 404, NodeManagers),
        ("POST", "/v1/admin/nodes/no-such-node/reset-key", null, 404, NodeManagers),
        ("DELETE", "/v1/admin/nodes/no-such-node", null, 404, NodeManagers),
    ];

    private static readonly string[] Principals = ["anonymous", "invalid", .. Everyone.Split(' ')];

    [Fact]
    public async Task Every_role_and_credential_gets_exactly_its_access_on_every_endpoint()
    {
        var api = fx.Client;
        var credentials = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["anonymous"] = null,
            ["invalid"] = "dgk_000000000000_" + new string('A', 43),
            ["admin-token"] = ApiHost.AdminToken,
        };
        foreach (var role in new[] { "admin", "operator", "viewer" })
        {
            var email = NewEmail(role);
            await CreateUserAsync(api, email, role);
            credentials[role] = await LoginAsync(api, email);
        }

        credentials["viewer-key:nodes:read"] = (await CreateKeyAsync(api, credentials["viewer"]!, "nodes:read")).Key;
        credentials["operator-key:inference"] = (await CreateKeyAsync(api, credentials["operator"]!, "inference")).Key;
        credentials["admin-key:admin"] = (await CreateKeyAsync(api, credentials["admin"]!, "admin")).Key;
        credentials["admin-key:nodes:read"] = (await CreateKeyAsync(api, credentials["admin"]!, "nodes:read")).Key;

        var table = new StringBuilder("| endpoint | " + string.Join(" | ", Principals) + " |\n|---|" + string.Concat(Principals.Select(_ => "---|")) + "\n");
        var failures = new List<string>();
        foreach (var (method, path, body, ok, allowed) in Endpoints)
        {
            var allowedSet = allowed.Split(' ').ToHashSet(StringComparer.Ordinal);
            table.Append($"| `{method} {path}` |");
            foreach (var principal in Principals)
            {
                var expected = principal is "anonymous" or "invalid" ? 401 : allowedSet.Contains(principal) ? ok : 403;
                var (status, text) = await SendAsync(api, new HttpMethod(method), path, credentials[principal], body);
                table.Append($" {(int)status} |");
                if ((int)status != expected)
                {
                    failures.Add($"{method} {path} as {principal}: expected {expected}, got {(int)status}: {text}");
                }
                else if (expected is 401 or 403 && !text.Contains("\"type\":\"https://dgon.io/problems/", StringComparison.Ordinal))
                {
                    failures.Add($"{method} {path} as {principal}: {expected} without a problem+json body: {text}");
                }
            }

            table.Append('\n');
        }

        output.WriteLine(table.ToString());
        Assert.True(failures.Count == 0, string.Join('\n', failures) + "\n\n" + table);
    }

    [Fact]
    public async Task A_key_never_has_more_than_its_owner_and_follows_the_owners_role()
    {
        var api = fx.Client;
        var email = NewEmail("demoted");
        var id = await CreateUserAsync(api, email, "admin");
        var session = await LoginAsync(api, email);

        // Beyond the role: a viewer cannot mint an inference or admin key.
        var viewerEmail = NewEmail("viewer");
        await CreateUserAsync(api, viewerEmail, "viewer");
        var viewer = await LoginAsync(api, viewerEmail);
        var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/me/api-keys", viewer, "{\"name\":\"x\",\"scopes\":[\"admin\"]}");
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("beyond your role", body, StringComparison.Ordinal);

        var (_, key) = await CreateKeyAsync(api, session, "admin", "nodes:read");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/admin/users", key)).Status);

        // Demoted to viewer: the key keeps only what a viewer may have; the admin's sessions end.
        (status, body) = await SendAsync(api, HttpMethod.Patch, $"/v1/admin/users/{id}", ApiHost.AdminToken, "{\"role\":\"viewer\"}");
        Assert.True(status == HttpStatusCode.OK, body);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(api, HttpMethod.Get, "/v1/admin/users", key)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/nodes", key)).Status);
        var me = await SendAsync(api, HttpMethod.Get, "/v1/me", key);
        Assert.Contains("\"scopes\":[\"nodes:read\"]", me.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Get, "/v1/me", session)).Status);

        // last_used_at is recorded.
        var keys = await SendAsync(api, HttpMethod.Get, "/v1/admin/api-keys", ApiHost.AdminToken);
        Assert.Contains("\"last_used_at\":\"", keys.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoked_and_expired_credentials_are_401_and_revocation_is_audited()
    {
        var api = fx.Client;
        var email = NewEmail("op");
        await CreateUserAsync(api, email, "operator");
        var session = await LoginAsync(api, email);
        var (keyId, key) = await CreateKeyAsync(api, session, "nodes:read");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(api, HttpMethod.Get, "/v1/nodes", key)).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(api, HttpMethod.Delete, $"/v1/me/api-keys/{keyId}", session)).Status);
        var (status, body) = await SendAsync(api, HttpMethod.Get, "/v1/nodes", key);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Contains("invalid-credential", body, StringComparison.Ordinal);

        // Someone else's key id is "not found" to an operator.
        var (otherId, _) = await CreateKeyAsync(api, ApiHost.AdminToken, "nodes:read");
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(api, HttpMethod.Delete, $"/v1/me/api-keys/{otherId}", session)).Status);

        // Logout ends the session.
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(api, HttpMethod.Delete, "/v1/auth/sessions/current", session)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Get, "/v1/me", session)).Status);

        // A key whose expiry passed.
        var (_, shortLived) = await CreateKeyAsync(api, ApiHost.AdminToken, "nodes:read");
        await fx.ScalarAsync<int>("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1 RETURNING 1", shortLived.Substring(4, 12));
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(api, HttpMethod.Get, "/v1/nodes", shortLived)).Status);

        var audit = await SendAsync(api, HttpMethod.Get, "/v1/admin/audit?action=api_key.revoke", ApiHost.AdminToken);
        Assert.Contains($"\"target\":\"api_key:{keyId}\"", audit.Body, StringComparison.Ordinal);
        var logout = await SendAsync(api, HttpMethod.Get, "/v1/admin/audit?action=session.delete", ApiHost.AdminToken);
        Assert.Contains("\"outcome\":\"success\"", logout.Body, StringComparison.Ordinal);
    }
}
