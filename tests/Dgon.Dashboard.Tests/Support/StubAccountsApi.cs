using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Dgon.Dashboard.Tests.Support;

/// <summary>
/// A real HTTP server on loopback that answers the issue 12 account endpoints of /work/wt/contract.md from memory
/// (sessions, me, API keys, join tokens, users, node list with wallet addresses nulled for non-owners), for the
/// dashboard tests of pages whose API endpoints have not landed yet. Records the <c>Authorization</c> of every call.
/// </summary>
public sealed class StubAccountsApi : IAsyncDisposable
{
    /// <summary>Password of every stub user.</summary>
    public const string Password = "correct horse battery staple";

    /// <summary>The stub's admin token.</summary>
    public const string AdminToken = "stub-admin-token-0123456789abcdef0123456789";

    /// <summary>Wallet address of the stub node; only admins and its owner get it.</summary>
    public const string Wallet = "0xWALLET00000000000000000000000000000000beef";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, JsonObject> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JsonObject> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JsonObject> _joinTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _calls = new();

    private StubAccountsApi(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    /// <summary>Users: id → (email, role).</summary>
    public static readonly IReadOnlyDictionary<string, (string Email, string Role)> Users = new Dictionary<string, (string, string)>
    {
        ["u-admin"] = ("admin@example.test", "admin"),
        ["u-operator"] = ("operator@example.test", "operator"),
        ["u-viewer"] = ("viewer@example.test", "viewer"),
    };

    /// <summary>Base URL.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Every call as <c>METHOD /path Authorization</c>.</summary>
    public IReadOnlyList<string> Calls => [.. _calls];

    /// <summary>Whether anonymous reads work (<c>DGON_OPEN_READS=true</c> on the API).</summary>
    public bool OpenReads { get; init; }

    /// <summary>Live session tokens.</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>Starts the stub on a free port.</summary>
    public static async Task<StubAccountsApi> StartAsync(bool openReads = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var port = FreePort.Next();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var stub = new StubAccountsApi(app, new Uri($"http://127.0.0.1:{port}")) { OpenReads = openReads };
        stub.Map(app);
        await app.StartAsync();
        return stub;
    }

    /// <summary>Ends every session (as if they expired), so the next call with one answers 401.</summary>
    public void ExpireAllSessions() => _sessions.Clear();

    private void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            _calls.Enqueue($"{context.Request.Method} {context.Request.Path}{context.Request.QueryString} {context.Request.Headers.Authorization}");
            await next(context);
        });

        app.MapPost("/v1/auth/sessions", async (HttpContext context) =>
        {
            var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
            JsonObject? user = null;
            if (body["admin_token"]?.GetValue<string>() is { } token)
            {
                user = token == AdminToken ? new JsonObject { ["id"] = "admin-token", ["email"] = null, ["name"] = "admin (token)", ["role"] = "admin" } : null;
            }
            else
            {
                var email = body["email"]?.GetValue<string>();
                var match = Users.FirstOrDefault(u => u.Value.Email == email);
                if (match.Key is not null && body["password"]?.GetValue<string>() == Password)
                {
                    user = UserJson(match.Key);
                }
            }

            if (user is null)
            {
                return Problem(401, "invalid-credentials", "Wrong e-mail or password.");
            }

            var session = "dgs_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            _sessions[session] = user;
            return Results.Json(new JsonObject { ["token"] = session, ["expires_at"] = DateTimeOffset.UtcNow.AddHours(8).ToString("O"), ["user"] = user.DeepClone() }, statusCode: 201);
        });

        app.MapDelete("/v1/auth/sessions/current", (HttpContext context) =>
            Caller(context) is null ? Problem(401, "unauthorized", "no session") : RemoveSession(context));

        app.MapGet("/v1/me", (HttpContext context) => Caller(context) is { } me ? Results.Json(me) : Problem(401, "unauthorized", "login"));

        app.MapGet("/v1/summary", (HttpContext context) =>
            !OpenReads && Caller(context) is null ? Problem(401, "unauthorized", "login")
            : Results.Json(new JsonObject { ["active_nodes"] = 1, ["total_nodes"] = 1, ["by_status"] = new JsonObject { ["active"] = 1, ["pending"] = 0, ["offline"] = 0, ["quarantine"] = 0 } }));

        app.MapGet("/v1/me/summary", (HttpContext context) =>
            Caller(context) is not { } me ? Problem(401, "unauthorized", "login")
            : Role(me) == "viewer" ? Problem(403, "forbidden", "operator or admin")
            : Results.Json(new JsonObject { ["nodes_total"] = 1, ["nodes_online"] = 1, ["receipts"] = 7, ["tokens_input"] = 100, ["tokens_output"] = 250, ["earnings_compute_units"] = null }));

        app.MapGet("/v1/nodes", (HttpContext context) =>
        {
            var me = Caller(context);
            if (me is null && !OpenReads)
            {
                return Problem(401, "unauthorized", "login");
            }

            var sees = me is not null && (Role(me) == "admin" || Id(me) == "u-operator");
            return Results.Json(new JsonArray(new JsonObject
            {
                ["id"] = "gpu-node-1", ["region"] = "eu-west", ["runtime"] = "ollama", ["status"] = "active", ["reputation"] = 60,
                ["green_energy"] = true, ["last_heartbeat"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"), ["ready"] = true,
                ["wallet_address"] = sees ? Wallet : null, ["asn_hint"] = sees ? "AS64500" : null, ["has_key"] = true,
                ["owner_id"] = sees ? "u-operator" : null,
            }));
        });

        foreach (var scope in new[] { "me", "admin" })
        {
            var admin = scope == "admin";
            app.MapGet($"/v1/{scope}/api-keys", (HttpContext context) =>
                Guard(context, admin, out var me) ?? Results.Json(new JsonArray([.. _keys.Values.Where(k => admin || k["owner"]!["id"]!.GetValue<string>() == Id(me!)).Select(k => k.DeepClone())])));
            app.MapPost($"/v1/{scope}/api-keys", async (HttpContext context) =>
            {
                if (Guard(context, admin, out var me) is { } denied)
                {
                    return denied;
                }

                var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
                var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
                var key = new JsonObject
                {
                    ["id"] = id, ["name"] = body["name"]?.GetValue<string>(), ["prefix"] = "dgk_" + id, ["scopes"] = body["scopes"]?.DeepClone() ?? new JsonArray(),
                    ["owner"] = new JsonObject { ["id"] = Id(me!), ["email"] = me!["email"]?.DeepClone() }, ["created_at"] = DateTimeOffset.UtcNow.ToString("O"),
                    ["expires_at"] = body["expires_at"]?.DeepClone(), ["last_used_at"] = null, ["revoked_at"] = null, ["state"] = "active",
                };
                _keys[id] = key;
                var created = (JsonObject)key.DeepClone();
                created["key"] = $"dgk_{id}_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                context.Response.Headers.CacheControl = "no-store";
                return Results.Json(created, statusCode: 201);
            });
            app.MapDelete($"/v1/{scope}/api-keys/{{id}}", (HttpContext context, string id) =>
            {
                if (Guard(context, admin, out _) is { } denied)
                {
                    return denied;
                }

                if (!_keys.TryGetValue(id, out var key))
                {
                    return Problem(404, "not-found", "no key");
                }

                key["state"] = "revoked";
                key["revoked_at"] = DateTimeOffset.UtcNow.ToString("O");
                return Results.NoContent();
            });
        }

        app.MapGet("/v1/admin/join-tokens", (HttpContext context) =>
            ProviderGuard(context, out var me) ?? Results.Json(new JsonArray([.. _joinTokens.Values.Where(t => Role(me!) == "admin" || t["owner"]?["id"]?.GetValue<string>() == Id(me!)).Select(t => t.DeepClone())])));
        app.MapPost("/v1/admin/join-tokens", async (HttpContext context) =>
        {
            if (ProviderGuard(context, out var me) is { } denied)
            {
                return denied;
            }

            var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
            var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
            var ttl = body["ttl_seconds"]?.GetValue<long>() ?? 86_400;
            var token = new JsonObject
            {
                ["id"] = id, ["description"] = body["description"]?.DeepClone(), ["expires_at"] = DateTimeOffset.UtcNow.AddSeconds(ttl).ToString("O"),
                ["max_uses"] = body["max_uses"]?.DeepClone(), ["uses"] = 0, ["region"] = body["region"]?.DeepClone(), ["revoked_at"] = null,
                ["state"] = "valid", ["created_at"] = DateTimeOffset.UtcNow.ToString("O"),
                ["owner"] = Role(me!) == "operator" ? new JsonObject { ["id"] = Id(me!), ["email"] = me!["email"]?.DeepClone() } : null,
            };
            _joinTokens[id] = token;
            var created = (JsonObject)token.DeepClone();
            created["token"] = id + ".abcdefghij012345";
            return Results.Json(created, statusCode: 201);
        });
        app.MapDelete("/v1/admin/join-tokens/{id}", (HttpContext context, string id) =>
        {
            if (ProviderGuard(context, out _) is { } denied)
            {
                return denied;
            }

            if (!_joinTokens.TryGetValue(id, out var token))
            {
                return Problem(404, "not-found", "no join token");
            }

            token["state"] = "revoked";
            return Results.NoContent();
        });

        app.MapGet("/v1/admin/users", (HttpContext context) =>
            Guard(context, true, out _) ?? Results.Json(new JsonArray([.. Users.Keys.Select(id => (JsonNode)UserJson(id))])));
    }

    private IResult RemoveSession(HttpContext context)
    {
        _sessions.TryRemove(Bearer(context)!, out _);
        return Results.NoContent();
    }

    private IResult? Guard(HttpContext context, bool admin, out JsonObject? me)
    {
        me = Caller(context);
        return me is null ? Problem(401, "unauthorized", "login") : admin && Role(me) != "admin" ? Problem(403, "forbidden", "admin only") : null;
    }

    private IResult? ProviderGuard(HttpContext context, out JsonObject? me)
    {
        me = Caller(context);
        return me is null ? Problem(401, "unauthorized", "login") : Role(me) == "viewer" ? Problem(403, "forbidden", "operator or admin") : null;
    }

    private JsonObject? Caller(HttpContext context) => Bearer(context) is { } token && _sessions.TryGetValue(token, out var user) ? user : null;

    private static string? Bearer(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..] : null;
    }

    private static string Role(JsonObject user) => user["role"]!.GetValue<string>();

    private static string Id(JsonObject user) => user["id"]!.GetValue<string>();

    private static JsonObject UserJson(string id) => new()
    {
        ["id"] = id, ["email"] = Users[id].Email, ["name"] = Users[id].Role + " user", ["role"] = Users[id].Role,
        ["external_login"] = null, ["locked_until"] = null, ["created_at"] = DateTimeOffset.UtcNow.ToString("O"),
    };

    private static IResult Problem(int status, string type, string detail) =>
        Results.Json(new JsonObject { ["type"] = "https://dgon.dev/problems/" + type, ["title"] = type, ["status"] = status, ["detail"] = detail }, (JsonSerializerOptions?)null, "application/problem+json", status);

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
