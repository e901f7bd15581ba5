using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;

namespace Dgon.Dashboard.Api;

/// <summary>The value of a successful call that answers no body (204).</summary>
public sealed class ApiDone
{
    private ApiDone()
    {
    }

    /// <summary>The only instance.</summary>
    public static ApiDone Instance { get; } = new();
}

/// <summary>Issue 12 calls (see /work/wt/contract.md): sessions, me, API keys, users, join tokens, IP bans, audit, node actions.</summary>
public sealed partial class DgonApiClient
{
    /// <summary>Request option that keeps <see cref="Auth.SessionBearerHandler"/> from adding the signed-in user's session token.</summary>
    public static readonly HttpRequestOptionsKey<bool> Anonymous = new("dgon.anonymous");

    /// <summary><c>POST /v1/auth/sessions</c> <c>{"email","password"}</c> → 201 session (401 invalid-credentials, 403 account-locked, 429).</summary>
    public async Task<ApiResult<ApiSession>> LoginAsync(string email, string password, CancellationToken cancellationToken) =>
        (await SendAsync(HttpMethod.Post, Rel("v1/auth/sessions"), new JsonObject { ["email"] = email, ["password"] = password }, DashboardJsonContext.Default.ApiSession, cancellationToken, r => r.Options.Set(Anonymous, true))).Result;

    /// <summary><c>POST /v1/auth/sessions</c> <c>{"admin_token"}</c> → 201 session of the bootstrap admin.</summary>
    public async Task<ApiResult<ApiSession>> LoginWithAdminTokenAsync(string adminToken, CancellationToken cancellationToken) =>
        (await SendAsync(HttpMethod.Post, Rel("v1/auth/sessions"), new JsonObject { ["admin_token"] = adminToken }, DashboardJsonContext.Default.ApiSession, cancellationToken, r => r.Options.Set(Anonymous, true))).Result;

    /// <summary><c>POST /v1/auth/sessions/oidc</c> <c>{"id_token"}</c> → 201: the API validates the identity provider's ID token itself and starts a session.</summary>
    public async Task<ApiResult<ApiSession>> LoginWithIdTokenAsync(string idToken, CancellationToken cancellationToken) =>
        (await SendAsync(HttpMethod.Post, Rel("v1/auth/sessions/oidc"), new JsonObject { ["id_token"] = idToken }, DashboardJsonContext.Default.ApiSession, cancellationToken, r => r.Options.Set(Anonymous, true))).Result;

    /// <summary><c>DELETE /v1/auth/sessions/current</c> with <paramref name="sessionToken"/> → 204 (the session is dead everywhere).</summary>
    public async Task<ApiResult<ApiDone>> LogoutAsync(string sessionToken, CancellationToken cancellationToken) =>
        (await SendAsync<ApiDone>(HttpMethod.Delete, Rel("v1/auth/sessions/current"), null, null, cancellationToken, r =>
        {
            r.Options.Set(Anonymous, true);
            r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", sessionToken);
        })).Result;

    /// <summary><c>GET /v1/me</c>.</summary>
    public Task<ApiResult<ApiMe>> GetMeAsync(CancellationToken cancellationToken) => Get("v1/me", DashboardJsonContext.Default.ApiMe, cancellationToken);

    /// <summary><c>GET /v1/me/summary</c>: the provider summary over the caller's own nodes (operator/admin).</summary>
    public Task<ApiResult<ProviderTotals>> GetProviderSummaryAsync(CancellationToken cancellationToken) => Get("v1/me/summary", DashboardJsonContext.Default.ProviderTotals, cancellationToken);

    /// <summary><c>GET /v1/me/api-keys</c> (own keys) or, with <paramref name="all"/>, <c>GET /v1/admin/api-keys</c> (every key).</summary>
    public Task<ApiResult<List<ApiKeyItem>>> ListApiKeysAsync(bool all, CancellationToken cancellationToken) =>
        Get(all ? "v1/admin/api-keys" : "v1/me/api-keys", DashboardJsonContext.Default.ListApiKeyItem, cancellationToken);

    /// <summary><c>POST /v1/me/api-keys</c> (or <c>/v1/admin/api-keys</c>) <c>{"name","scopes","expires_at"?}</c> → 201 with the key, shown once.</summary>
    public async Task<ApiResult<ApiKeyItem>> CreateApiKeyAsync(bool admin, string name, IEnumerable<string> scopes, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["name"] = name, ["scopes"] = new JsonArray([.. scopes.Select(s => (JsonNode?)JsonValue.Create(s))]) };
        if (expiresAt is { } at)
        {
            body["expires_at"] = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }

        return (await SendAsync(HttpMethod.Post, Rel(admin ? "v1/admin/api-keys" : "v1/me/api-keys"), body, DashboardJsonContext.Default.ApiKeyItem, cancellationToken)).Result;
    }

    /// <summary><c>DELETE /v1/me/api-keys/{id}</c> (or <c>/v1/admin/api-keys/{id}</c>) → 204.</summary>
    public Task<ApiResult<ApiDone>> RevokeApiKeyAsync(bool admin, string id, CancellationToken cancellationToken) =>
        Done(HttpMethod.Delete, (admin ? "v1/admin/api-keys/" : "v1/me/api-keys/") + Uri.EscapeDataString(id), null, cancellationToken);

    /// <summary><c>GET /v1/admin/users</c>.</summary>
    public Task<ApiResult<List<ApiUser>>> ListUsersAsync(CancellationToken cancellationToken) => Get("v1/admin/users", DashboardJsonContext.Default.ListApiUser, cancellationToken);

    /// <summary><c>POST /v1/admin/users</c> <c>{"email","password","role","name"?}</c> → 201 (409 taken, 422 weak password / bad role).</summary>
    public async Task<ApiResult<ApiUser>> CreateUserAsync(string email, string password, string role, string? name, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["email"] = email, ["password"] = password, ["role"] = role };
        if (!string.IsNullOrWhiteSpace(name))
        {
            body["name"] = name;
        }

        return (await SendAsync(HttpMethod.Post, Rel("v1/admin/users"), body, DashboardJsonContext.Default.ApiUser, cancellationToken)).Result;
    }

    /// <summary><c>PATCH /v1/admin/users/{id}</c> <c>{"role"?, "password"?}</c> → 200 (ends the user's sessions).</summary>
    public async Task<ApiResult<ApiUser>> UpdateUserAsync(string id, string? role, string? password, CancellationToken cancellationToken)
    {
        var body = new JsonObject();
        if (role is not null)
        {
            body["role"] = role;
        }

        if (password is not null)
        {
            body["password"] = password;
        }

        return (await SendAsync(HttpMethod.Patch, Rel("v1/admin/users/" + Uri.EscapeDataString(id)), body, DashboardJsonContext.Default.ApiUser, cancellationToken)).Result;
    }

    /// <summary><c>POST /v1/admin/users/{id}/unlock</c>.</summary>
    public Task<ApiResult<ApiDone>> UnlockUserAsync(string id, CancellationToken cancellationToken) =>
        Done(HttpMethod.Post, "v1/admin/users/" + Uri.EscapeDataString(id) + "/unlock", new JsonObject(), cancellationToken);

    /// <summary><c>DELETE /v1/admin/users/{id}</c> → 204.</summary>
    public Task<ApiResult<ApiDone>> DeleteUserAsync(string id, CancellationToken cancellationToken) =>
        Done(HttpMethod.Delete, "v1/admin/users/" + Uri.EscapeDataString(id), null, cancellationToken);

    /// <summary><c>GET /v1/admin/join-tokens</c> (admin: all; operator: their own).</summary>
    public Task<ApiResult<List<JoinTokenItem>>> ListJoinTokensAsync(CancellationToken cancellationToken) => Get("v1/admin/join-tokens", DashboardJsonContext.Default.ListJoinTokenItem, cancellationToken);

    /// <summary><c>POST /v1/admin/join-tokens</c> <c>{"ttl_seconds","max_uses","description","region"}</c> (each optional) → 201 with the token, shown once.</summary>
    public async Task<ApiResult<JoinTokenItem>> CreateJoinTokenAsync(long? ttlSeconds, int? maxUses, string? description, string? region, CancellationToken cancellationToken)
    {
        var body = new JsonObject();
        if (ttlSeconds is { } ttl)
        {
            body["ttl_seconds"] = ttl;
        }

        if (maxUses is { } max)
        {
            body["max_uses"] = max;
        }

        if (!string.IsNullOrWhiteSpace(description))
        {
            body["description"] = description.Trim();
        }

        if (!string.IsNullOrWhiteSpace(region))
        {
            body["region"] = region.Trim();
        }

        return (await SendAsync(HttpMethod.Post, Rel("v1/admin/join-tokens"), body, DashboardJsonContext.Default.JoinTokenItem, cancellationToken)).Result;
    }

    /// <summary><c>DELETE /v1/admin/join-tokens/{id}</c> → 204.</summary>
    public Task<ApiResult<ApiDone>> RevokeJoinTokenAsync(string id, CancellationToken cancellationToken) =>
        Done(HttpMethod.Delete, "v1/admin/join-tokens/" + Uri.EscapeDataString(id), null, cancellationToken);

    /// <summary><c>GET /v1/admin/ip-bans</c> (active bans; <paramref name="all"/> adds expired and lifted ones).</summary>
    public Task<ApiResult<List<IpBan>>> ListIpBansAsync(bool all, CancellationToken cancellationToken) =>
        Get(all ? "v1/admin/ip-bans?all=true" : "v1/admin/ip-bans", DashboardJsonContext.Default.ListIpBan, cancellationToken);

    /// <summary><c>POST /v1/admin/ip-bans</c> <c>{"network","reason","duration_seconds"?}</c> → 201.</summary>
    public async Task<ApiResult<IpBan>> CreateIpBanAsync(string network, string reason, long? durationSeconds, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["network"] = network.Trim(), ["reason"] = reason };
        if (durationSeconds is { } d)
        {
            body["duration_seconds"] = d;
        }

        return (await SendAsync(HttpMethod.Post, Rel("v1/admin/ip-bans"), body, DashboardJsonContext.Default.IpBan, cancellationToken)).Result;
    }

    /// <summary><c>DELETE /v1/admin/ip-bans/{id}</c> → 204 (lifted at once).</summary>
    public Task<ApiResult<ApiDone>> DeleteIpBanAsync(string id, CancellationToken cancellationToken) =>
        Done(HttpMethod.Delete, "v1/admin/ip-bans/" + Uri.EscapeDataString(id), null, cancellationToken);

    /// <summary>
    /// <c>GET /v1/admin/audit?limit=&amp;before=&amp;actor=&amp;action=</c>, newest first; the next page's <c>before</c> comes from
    /// <c>Link: rel="next"</c>, or, without a link, from the last entry's id when the page is full.
    /// </summary>
    public async Task<ApiResult<AuditPage>> GetAuditAsync(int limit, string? before, string? actor, string? action, CancellationToken cancellationToken)
    {
        var parameters = new Dictionary<string, string?>(StringComparer.Ordinal) { ["limit"] = limit.ToString(CultureInfo.InvariantCulture) };
        if (!string.IsNullOrWhiteSpace(before))
        {
            parameters["before"] = before;
        }

        if (!string.IsNullOrWhiteSpace(actor))
        {
            parameters["actor"] = actor;
        }

        if (!string.IsNullOrWhiteSpace(action))
        {
            parameters["action"] = action;
        }

        var (result, next) = await GetAsync(new Uri(QueryHelpers.AddQueryString("v1/admin/audit", parameters), UriKind.Relative), DashboardJsonContext.Default.ListAuditEntry, cancellationToken);
        if (!result.Succeeded)
        {
            return ApiResult<AuditPage>.Failed(result.Failure);
        }

        string? nextBefore = null;
        if (next is not null && QueryHelpers.ParseQuery(next.Query).TryGetValue("before", out var values))
        {
            nextBefore = values.ToString();
        }
        else if (next is null && result.Value.Count >= limit)
        {
            nextBefore = result.Value[^1].Id.ToString(CultureInfo.InvariantCulture); // no link sent: a full page may have more
        }

        return ApiResult<AuditPage>.Success(new AuditPage(result.Value, string.IsNullOrEmpty(nextBefore) ? null : nextBefore));
    }

    /// <summary>
    /// A node action: <c>quarantine</c>, <c>release</c>, <c>reset-key</c> (<c>POST /v1/admin/nodes/{id}/{action}</c>) or
    /// <c>delete</c> (<c>DELETE /v1/admin/nodes/{id}</c>); 204, 404 for an unknown node or one an operator does not own.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="action"/> is none of the four.</exception>
    public Task<ApiResult<ApiDone>> NodeActionAsync(string nodeId, string action, CancellationToken cancellationToken)
    {
        var path = "v1/admin/nodes/" + Uri.EscapeDataString(nodeId);
        return action switch
        {
            "quarantine" or "release" or "reset-key" => Done(HttpMethod.Post, path + "/" + action, null, cancellationToken),
            "delete" => Done(HttpMethod.Delete, path, null, cancellationToken),
            _ => throw new ArgumentException($"unknown node action '{action}'", nameof(action)),
        };
    }

    private static Uri Rel(string path) => new(path, UriKind.Relative);

    private async Task<ApiResult<T>> Get<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        where T : class => (await GetAsync(Rel(path), typeInfo, cancellationToken)).Result;

    private async Task<ApiResult<ApiDone>> Done(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken) =>
        (await SendAsync<ApiDone>(method, Rel(path), body, null, cancellationToken)).Result;
}
