using System.Globalization;
using System.Net;
using Dgon.Api.Accounts;
using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Domain.Contracts;
using Dgon.Persistence.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Api.Apis;

/// <summary>
/// Admin endpoints of accounts (issue 12), all under scope <c>admin</c> (<see cref="AccessClaims.AdminPolicy"/>):
/// users and roles (<c>/v1/admin/users</c>), every API key (<c>/v1/admin/api-keys</c>), IP bans
/// (<c>/v1/admin/ip-bans</c>) and the audit log (<c>GET /v1/admin/audit</c>). Each change is audited.
/// </summary>
public static class AccountsAdminApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapAccountsAdminApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin")
            .WithTags("Admin")
            .RequireAuthorization(AccessClaims.AdminPolicy)
            .RequireRateLimiting(ServiceCollectionExtensions.AdminRateLimit)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);

        group.MapGet("/users", ListUsersAsync).WithName("ListUsers").Produces<List<UserView>>();
        group.MapPost("/users", CreateUserAsync).WithName("CreateUser")
            .Accepts<UserCreateRequest>("application/json").Produces<UserView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapPatch("/users/{id}", UpdateUserAsync).WithName("UpdateUser")
            .Accepts<UserUpdateRequest>("application/json").Produces<UserView>()
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapPost("/users/{id}/unlock", UnlockUserAsync).WithName("UnlockUser").Produces<UserView>().ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/users/{id}", DeleteUserAsync).WithName("DeleteUser").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);

        group.MapGet("/api-keys", (HttpContext http, CredentialStore store, TimeProvider clock, CancellationToken ct) => AuthApi.ListKeysAsync(http, store, clock, all: true, ct))
            .WithName("ListApiKeys").Produces<List<ApiKeyView>>();
        group.MapPost("/api-keys", AuthApi.CreateKeyAsync).WithName("CreateApiKey")
            .Accepts<ApiKeyCreateRequest>("application/json").Produces<ApiKeyView>(StatusCodes.Status201Created)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapDelete("/api-keys/{id}", (string id, HttpContext http, CredentialStore store, AuditLog audit, CancellationToken ct) => AuthApi.RevokeKeyAsync(id, http, store, audit, all: true, ct))
            .WithName("RevokeApiKey").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);

        group.MapGet("/ip-bans", ListBansAsync).WithName("ListIpBans").Produces<List<IpBanView>>();
        group.MapPost("/ip-bans", CreateBanAsync).WithName("CreateIpBan")
            .Accepts<IpBanCreateRequest>("application/json").Produces<IpBanView>(StatusCodes.Status201Created)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapDelete("/ip-bans/{id}", LiftBanAsync).WithName("LiftIpBan").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);

        group.MapGet("/audit", ListAuditAsync).WithName("ListAudit")
            .WithSummary("Audit log, newest first; ?limit= (1-1000, default 100), ?before=<id>, ?actor=, ?action=<prefix>; next page in the Link header")
            .Produces<List<AuditEntryView>>().ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    private static async Task<IResult> ListUsersAsync(UserManager<DgonUser> users, CancellationToken ct)
    {
        var all = await users.Users.AsNoTracking().OrderBy(u => u.Email).Take(10_000).ToListAsync(ct);
        var views = new List<UserView>(all.Count);
        foreach (var user in all)
        {
            views.Add(await AuthApi.ViewAsync(users, user));
        }

        return TypedResults.Json(views, AccountJsonContext.Default.ListUserView);
    }

    private static async Task<IResult> CreateUserAsync(HttpContext http, UserManager<DgonUser> users, AuditLog audit, TimeProvider clock, CancellationToken ct)
    {
        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.UserCreateRequest, b => AccountValidator.Validate(b, roleRequired: true), ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var (user, error) = await AuthApi.CreateUserAsync(users, parsed.Value!, parsed.Value!.Role!, clock);
        if (error is not null)
        {
            return error;
        }

        await audit.WriteAsync(http, "user.create", "user:" + user!.Id, details: new Dictionary<string, string?> { ["email"] = user.Email, ["role"] = parsed.Value.Role });
        return TypedResults.Json(await AuthApi.ViewAsync(users, user), AccountJsonContext.Default.UserView, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> UpdateUserAsync(string id, HttpContext http, UserManager<DgonUser> users, CredentialStore sessions, AuditLog audit, CancellationToken ct)
    {
        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.UserUpdateRequest, AccountValidator.Validate, ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var user = await users.FindByIdAsync(id);
        if (user is null)
        {
            return Problems.NotFound($"no user with id '{Problems.Clip(id)}'");
        }

        var body = parsed.Value!;
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (body.Name is not null)
        {
            user.DisplayName = body.Name.Trim().Length == 0 ? null : body.Name.Trim();
            var updated = await users.UpdateAsync(user);
            if (!updated.Succeeded)
            {
                return AuthApi.IdentityProblem(updated);
            }

            changes["name"] = user.DisplayName;
        }

        if (body.Role is { } role)
        {
            var current = await users.GetRolesAsync(user);
            if (!current.SequenceEqual([role]))
            {
                var removed = await users.RemoveFromRolesAsync(user, current);
                var added = removed.Succeeded ? await users.AddToRoleAsync(user, role) : removed;
                if (!added.Succeeded)
                {
                    return AuthApi.IdentityProblem(added);
                }

                changes["role"] = role;
            }
        }

        if (body.Password is { } password)
        {
            var token = await users.GeneratePasswordResetTokenAsync(user);
            var reset = await users.ResetPasswordAsync(user, token, password);
            if (!reset.Succeeded)
            {
                return AuthApi.IdentityProblem(reset);
            }

            changes["password"] = "changed";
        }

        if (changes.ContainsKey("role") || changes.ContainsKey("password"))
        {
            // A changed role or password ends the person's sessions at once (keys follow the role by themselves).
            changes["sessions_ended"] = (await sessions.EndUserSessionsAsync(user.Id, ct)).ToString(CultureInfo.InvariantCulture);
        }

        await audit.WriteAsync(http, "user.update", "user:" + user.Id, details: changes);
        return TypedResults.Json(await AuthApi.ViewAsync(users, user), AccountJsonContext.Default.UserView);
    }

    private static async Task<IResult> UnlockUserAsync(string id, HttpContext http, UserManager<DgonUser> users, AuditLog audit)
    {
        var user = await users.FindByIdAsync(id);
        if (user is null)
        {
            return Problems.NotFound($"no user with id '{Problems.Clip(id)}'");
        }

        await users.SetLockoutEndDateAsync(user, null);
        await users.ResetAccessFailedCountAsync(user);
        await audit.WriteAsync(http, "user.unlock", "user:" + user.Id);
        return TypedResults.Json(await AuthApi.ViewAsync(users, user), AccountJsonContext.Default.UserView);
    }

    private static async Task<IResult> DeleteUserAsync(string id, HttpContext http, UserManager<DgonUser> users, AuditLog audit)
    {
        var user = await users.FindByIdAsync(id);
        if (user is null)
        {
            return Problems.NotFound($"no user with id '{Problems.Clip(id)}'");
        }

        if (user.Id == http.User.UserId())
        {
            return Problems.Conflict("cannot-delete-self", "Cannot delete yourself", "an admin cannot delete their own account; another admin can");
        }

        // Sessions and API keys go with the row (ON DELETE CASCADE); join tokens and nodes stay, without an owner.
        var deleted = await users.DeleteAsync(user);
        if (!deleted.Succeeded)
        {
            return AuthApi.IdentityProblem(deleted);
        }

        await audit.WriteAsync(http, "user.delete", "user:" + user.Id, details: new Dictionary<string, string?> { ["email"] = user.Email });
        return TypedResults.NoContent();
    }

    private static async Task<IResult> ListBansAsync(HttpRequest request, IpBanList bans, CancellationToken ct)
    {
        var all = string.Equals(request.Query["all"].ToString(), "true", StringComparison.OrdinalIgnoreCase);
        var list = await bans.ListAsync(all, ct);
        return TypedResults.Json(list.Select(BanView).ToList(), AccountJsonContext.Default.ListIpBanView);
    }

    private static async Task<IResult> CreateBanAsync(HttpContext http, IpBanList bans, AuditLog audit, TimeProvider clock, CancellationToken ct)
    {
        IPNetwork network = default;
        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.IpBanCreateRequest, body =>
        {
            var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
            if (!TryParseNetwork(body.Network, out network))
            {
                errors["network"] = ["must be an IP address or a CIDR network (e.g. 203.0.113.7 or 203.0.113.0/24)"];
            }

            if (string.IsNullOrWhiteSpace(body.Reason) || body.Reason.Length > 200)
            {
                errors["reason"] = ["must be 1 to 200 characters"];
            }

            if (body.DurationSeconds is < 60 or > 31_536_000)
            {
                errors["duration_seconds"] = ["must be from 60 to 31536000 (365 days), or absent for a ban until lifted"];
            }

            return errors;
        }, ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var body = parsed.Value!;
        var expires = body.DurationSeconds is { } seconds ? clock.GetUtcNow() + TimeSpan.FromSeconds(seconds) : (DateTimeOffset?)null;
        var ban = await bans.BanAsync(network, body.Reason!.Trim(), http.User.ActorId()!, automatic: false, expires, ct);
        await audit.WriteAsync(http, "ip_ban.create", "ip_ban:" + ban.Id.ToString(CultureInfo.InvariantCulture), details: new Dictionary<string, string?> { ["network"] = ban.Network.ToString(), ["reason"] = ban.Reason });
        return TypedResults.Json(BanView(ban), AccountJsonContext.Default.IpBanView, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> LiftBanAsync(string id, HttpContext http, IpBanList bans, AuditLog audit, CancellationToken ct)
    {
        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var banId) || !await bans.LiftAsync(banId, ct))
        {
            return Problems.NotFound($"no active IP ban with id '{Problems.Clip(id)}'");
        }

        await audit.WriteAsync(http, "ip_ban.delete", "ip_ban:" + id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> ListAuditAsync(HttpRequest request, AuditLog audit, CancellationToken ct)
    {
        var q = request.Query;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var limit = 100;
        if (q["limit"].ToString() is { Length: > 0 } l && !(int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= 1000))
        {
            errors["limit"] = ["must be an integer from 1 to 1000"];
        }

        long? before = null;
        if (q["before"].ToString() is { Length: > 0 } b)
        {
            if (long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                before = id;
            }
            else
            {
                errors["before"] = ["must be an audit entry id"];
            }
        }

        var actor = q["actor"].ToString() is { Length: > 0 and <= 200 } a ? a : null;
        var action = q["action"].ToString() is { Length: > 0 and <= 100 } x ? x : null;
        if (errors.Count > 0)
        {
            return Problems.InvalidQuery(errors);
        }

        var entries = await audit.ListAsync(before, actor, action, limit, ct);
        if (entries.Count == limit)
        {
            var next = new List<string> { $"limit={limit}", $"before={entries[^1].Id}" };
            if (actor is not null)
            {
                next.Add("actor=" + Uri.EscapeDataString(actor));
            }

            if (action is not null)
            {
                next.Add("action=" + Uri.EscapeDataString(action));
            }

            request.HttpContext.Response.Headers.Link = $"</v1/admin/audit?{string.Join('&', next)}>; rel=\"next\"";
        }

        return TypedResults.Json(
            entries.Select(e => new AuditEntryView
            {
                Id = e.Id,
                At = e.At.UtcDateTime,
                Actor = new AuditActorView(e.ActorId, e.ActorName),
                Credential = e.Credential,
                Action = e.Action,
                Target = e.Target,
                Address = e.Address,
                Outcome = e.Outcome,
                Details = e.Details,
            }).ToList(),
            AccountJsonContext.Default.ListAuditEntryView);
    }

    private static IpBanView BanView(IpBan ban) => new()
    {
        Id = ban.Id,
        Network = ban.Network.ToString(),
        Reason = ban.Reason,
        ExpiresAt = ban.ExpiresAt?.UtcDateTime,
        CreatedAt = ban.CreatedAt.UtcDateTime,
        CreatedBy = ban.CreatedBy,
        Automatic = ban.Automatic,
        LiftedAt = ban.LiftedAt?.UtcDateTime,
    };

    private static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (text.Contains('/', StringComparison.Ordinal))
        {
            return IPNetwork.TryParse(text, out network);
        }

        if (!IPAddress.TryParse(text, out var address))
        {
            return false;
        }

        address = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }
}
