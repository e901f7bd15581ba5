using System.Security.Claims;
using Dgon.Api.Accounts;
using Dgon.Api.Auth;
using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Domain.Accounts;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Persistence.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Api.Apis;

/// <summary>
/// Sign-in and the caller's own things (issue 12): <c>POST /v1/auth/sessions</c> (login: e-mail and password through
/// ASP.NET Core Identity with lockout after 5 failures for 30 min, or the admin token), <c>DELETE
/// /v1/auth/sessions/current</c> (logout), <c>POST /v1/auth/signup</c> (only with <c>DGON_SIGNUP=true</c>),
/// <c>GET /v1/me</c>, <c>/v1/me/api-keys</c> and <c>GET /v1/me/summary</c> (seed 004's provider summary).
/// </summary>
public static partial class AuthApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        var auth = app.MapGroup("/v1/auth").WithTags("Accounts");
        auth.MapPost("/sessions", LoginAsync)
            .RequireRateLimiting(ServiceCollectionExtensions.LoginRateLimit)
            .WithName("Login")
            .WithSummary("Sign in with {email, password} (or {admin_token}); returns a session token (Bearer) once")
            .Accepts<LoginRequest>("application/json")
            .Produces<SessionResponse>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        auth.MapPost("/sessions/oidc", OidcLoginAsync)
            .RequireRateLimiting(ServiceCollectionExtensions.LoginRateLimit)
            .WithName("OidcLogin")
            .WithSummary("Sign in with an ID token from the configured identity provider (DGON_OIDC_AUTHORITY); 404 when OIDC is off")
            .Accepts<OidcSessionRequest>("application/json")
            .Produces<SessionResponse>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        auth.MapDelete("/sessions/current", LogoutAsync)
            .RequireAuthorization()
            .WithName("Logout")
            .WithSummary("End the session this request is authenticated with")
            .Produces(StatusCodes.Status204NoContent);
        auth.MapPost("/signup", SignupAsync)
            .RequireRateLimiting(ServiceCollectionExtensions.SignupRateLimit)
            .WithName("Signup")
            .WithSummary("Create an account (only when DGON_SIGNUP=true; role DGON_SIGNUP_ROLE)")
            .Accepts<UserCreateRequest>("application/json")
            .Produces<UserView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);

        var me = app.MapGroup("/v1/me").WithTags("Accounts").RequireAuthorization();
        me.MapGet("", Me).WithName("GetMe").WithSummary("The caller: id, role, effective scopes, credential kind").Produces<MeResponse>();
        me.MapGet("/summary", ProviderSummaryAsync)
            .RequireAuthorization(AccessClaims.PersonPolicy)
            .WithName("GetProviderSummary")
            .WithSummary("Seed 004's provider summary over the caller's own nodes")
            .Produces<ProviderSummary>();
        var keys = me.MapGroup("/api-keys").RequireAuthorization(AccessClaims.PersonPolicy);
        keys.MapGet("", (HttpContext http, CredentialStore store, TimeProvider clock, CancellationToken ct) => ListKeysAsync(http, store, clock, all: false, ct))
            .WithName("ListMyApiKeys").Produces<List<ApiKeyView>>();
        keys.MapPost("", CreateKeyAsync).WithName("CreateMyApiKey")
            .Accepts<ApiKeyCreateRequest>("application/json").Produces<ApiKeyView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        keys.MapDelete("/{id}", (string id, HttpContext http, CredentialStore store, AuditLog audit, CancellationToken ct) => RevokeKeyAsync(id, http, store, audit, all: false, ct))
            .WithName("RevokeMyApiKey").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> LoginAsync(
        HttpContext http, UserManager<DgonUser> users, CredentialStore store, AdminCredential admin, AuditLog audit, IpBanList bans, DgonApiOptions options, CancellationToken ct)
    {
        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.LoginRequest, ValidateLogin, ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var body = parsed.Value!;
        var address = NodeRequestLimits.ClientAddress(http);
        if (body.AdminToken is { } presented)
        {
            if (!admin.Matches(presented))
            {
                await bans.RecordFailureAsync(http.Connection.RemoteIpAddress, ct);
                await audit.WriteAsync(http, "session.fail", AccessClaims.AdminTokenActor, AuditLog.Denied, new Dictionary<string, string?> { ["method"] = "admin_token" }, actorId: "anonymous");
                return Problems.InvalidCredentials();
            }

            var (adminSession, adminToken) = await store.CreateSessionAsync(null, "admin_token", address, options.Accounts.SessionLifetime, ct);
            await audit.WriteAsync(http, "session.create", "session:" + adminSession.Id, details: new Dictionary<string, string?> { ["method"] = "admin_token" }, actorId: AccessClaims.AdminTokenActor, actorName: "admin (token)");
            http.Response.Headers.CacheControl = "no-store";
            return Created(adminToken, adminSession, AdminView);
        }

        var user = await users.FindByEmailAsync(body.Email!);
        if (user is null)
        {
            // Same work and answer as a wrong password, so e-mails cannot be probed by timing or message.
            users.PasswordHasher.VerifyHashedPassword(new DgonUser(), DummyHash(users), body.Password!);
            await bans.RecordFailureAsync(http.Connection.RemoteIpAddress, ct);
            await audit.WriteAsync(http, "session.fail", null, AuditLog.Denied, new Dictionary<string, string?> { ["method"] = "password", ["reason"] = "invalid_credentials" }, actorId: "anonymous", actorName: Problems.Clip(body.Email!));
            return Problems.InvalidCredentials();
        }

        if (await users.IsLockedOutAsync(user))
        {
            await audit.WriteAsync(http, "session.fail", "user:" + user.Id, AuditLog.Denied, new Dictionary<string, string?> { ["method"] = "password", ["reason"] = "locked_out" }, actorId: user.Id, actorName: user.Email);
            return Problems.AccountLocked(LockoutLeft(user));
        }

        if (!await users.CheckPasswordAsync(user, body.Password!))
        {
            await users.AccessFailedAsync(user);
            await bans.RecordFailureAsync(http.Connection.RemoteIpAddress, ct);
            var locked = await users.IsLockedOutAsync(user);
            await audit.WriteAsync(http, "session.fail", "user:" + user.Id, AuditLog.Denied, new Dictionary<string, string?> { ["method"] = "password", ["reason"] = locked ? "locked_out_now" : "invalid_credentials" }, actorId: user.Id, actorName: user.Email);
            return locked ? Problems.AccountLocked(LockoutLeft(user)) : Problems.InvalidCredentials();
        }

        await users.ResetAccessFailedCountAsync(user);
        var (session, token) = await store.CreateSessionAsync(user.Id, "password", address, options.Accounts.SessionLifetime, ct);
        await audit.WriteAsync(http, "session.create", "session:" + session.Id, details: new Dictionary<string, string?> { ["method"] = "password" }, actorId: user.Id, actorName: user.Email);
        var view = await ViewAsync(users, user);
        http.Response.Headers.CacheControl = "no-store";
        return Created(token, session, view);
    }

    /// <summary>
    /// An identity-provider login: the API validates the ID token itself (<see cref="OidcIdTokenValidator"/>: issuer,
    /// audience, signature from the provider's JWKS, lifetime), finds the account by its external login (provider
    /// <c>oidc</c>, key <c>sub</c>) or creates it, sets its role from the role claim on every login, and starts a session.
    /// An e-mail that belongs to a local account is not linked (409): that would let the provider take the account over.
    /// </summary>
    private static async Task<IResult> OidcLoginAsync(
        HttpContext http, UserManager<DgonUser> users, CredentialStore store, AuditLog audit, IpBanList bans, DgonApiOptions options, TimeProvider clock, CancellationToken ct)
    {
        if (http.RequestServices.GetService<OidcIdTokenValidator>() is not { } validator)
        {
            return Problems.NotFound("single sign-on is not configured on this network (DGON_OIDC_AUTHORITY)");
        }

        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.OidcSessionRequest, b =>
            b.IdToken is { Length: > 0 and <= 16_384 } ? [] : new Dictionary<string, string[]>(StringComparer.Ordinal) { ["id_token"] = ["is required (a JWT of at most 16384 characters)"] }, ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var validation = await validator.ValidateAsync(parsed.Value!.IdToken, ct);
        if (!validation.IsValid)
        {
            await bans.RecordFailureAsync(http.Connection.RemoteIpAddress, ct);
            await audit.WriteAsync(http, "session.fail", null, AuditLog.Denied, new Dictionary<string, string?> { ["method"] = "oidc", ["reason"] = validation.Failure }, actorId: "anonymous");
            return Problems.OidcTokenRefused(validation.Failure!);
        }

        var identity = validation.Identity;
        var user = await users.FindByLoginAsync(OidcProvider, identity.Subject);
        if (user is null)
        {
            if (string.IsNullOrEmpty(identity.Email))
            {
                return Problems.OidcTokenRefused("the ID token carries no email claim; ask the identity provider to release it (scope email)");
            }

            if (await users.FindByEmailAsync(identity.Email) is not null)
            {
                return Problems.Conflict("email-taken", "E-mail taken", "a local account has this e-mail; an admin must delete or rename it before it can sign in through the identity provider");
            }

            user = new DgonUser { UserName = identity.Email, Email = identity.Email, DisplayName = identity.Name, CreatedAt = clock.GetUtcNow().UtcDateTime };
            var created = await users.CreateAsync(user);
            var linked = created.Succeeded ? await users.AddLoginAsync(user, new UserLoginInfo(OidcProvider, identity.Subject, options.Accounts.OidcDisplayName)) : created;
            if (!linked.Succeeded)
            {
                return IdentityProblem(linked);
            }

            await audit.WriteAsync(http, "user.create", "user:" + user.Id, details: new Dictionary<string, string?> { ["email"] = user.Email, ["role"] = identity.Role, ["via"] = "oidc" }, actorId: user.Id, actorName: user.Email);
        }

        var roles = await users.GetRolesAsync(user);
        if (!roles.SequenceEqual([identity.Role]))
        {
            await users.RemoveFromRolesAsync(user, roles);
            await users.AddToRoleAsync(user, identity.Role);
        }

        var (session, token) = await store.CreateSessionAsync(user.Id, "oidc", NodeRequestLimits.ClientAddress(http), options.Accounts.SessionLifetime, ct);
        await audit.WriteAsync(http, "session.create", "session:" + session.Id, details: new Dictionary<string, string?> { ["method"] = "oidc", ["role"] = identity.Role }, actorId: user.Id, actorName: user.Email);
        http.Response.Headers.CacheControl = "no-store";
        return Created(token, session, await ViewAsync(users, user));
    }

    /// <summary>Login provider name of identity-provider accounts in <c>user_logins</c>.</summary>
    public const string OidcProvider = "oidc";

    /// <summary>The 201 of a login (password, admin token or identity provider): the session token, its expiry and the user.</summary>
    internal static IResult Created(string token, SessionEntity session, UserView user)
    {
        var response = new SessionResponse { Token = token, ExpiresAt = DateTime.SpecifyKind(session.ExpiresAt, DateTimeKind.Utc), User = user };
        return TypedResults.Json(response, AccountJsonContext.Default.SessionResponse, statusCode: StatusCodes.Status201Created);
    }

    private static Dictionary<string, string[]> ValidateLogin(LoginRequest body)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (body.AdminToken is not null)
        {
            if (body.Email is not null || body.Password is not null)
            {
                errors["admin_token"] = ["send either admin_token or email and password"];
            }

            return errors;
        }

        if (string.IsNullOrEmpty(body.Email) || body.Email.Length > 256)
        {
            errors["email"] = ["is required (at most 256 characters)"];
        }

        if (string.IsNullOrEmpty(body.Password) || body.Password.Length > AccountValidator.MaxPasswordLength)
        {
            errors["password"] = [$"is required (at most {AccountValidator.MaxPasswordLength} characters)"];
        }

        return errors;
    }

    private static async Task<IResult> LogoutAsync(HttpContext http, CredentialStore store, AuditLog audit, CancellationToken ct)
    {
        if (http.User.CredentialKind() != AccessClaims.SessionCredential || http.User.FindFirstValue(AccessClaims.CredentialId) is not { } id)
        {
            return Problems.Forbidden("only a session can be ended; revoke API keys with DELETE /v1/me/api-keys/{id}");
        }

        await store.EndSessionAsync(id, ct);
        await audit.WriteAsync(http, "session.delete", "session:" + id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> SignupAsync(HttpContext http, UserManager<DgonUser> users, AuditLog audit, DgonApiOptions options, TimeProvider clock, CancellationToken ct)
    {
        if (!options.Accounts.Signup)
        {
            return Problems.NotFound("self sign-up is off on this network (DGON_SIGNUP); ask an admin for an account");
        }

        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.UserCreateRequest, b => AccountValidator.Validate(b, roleRequired: false), ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var (user, error) = await CreateUserAsync(users, parsed.Value!, options.Accounts.SignupRole, clock);
        if (error is not null)
        {
            return error;
        }

        await audit.WriteAsync(http, "user.signup", "user:" + user!.Id, details: new Dictionary<string, string?> { ["role"] = options.Accounts.SignupRole }, actorId: user.Id, actorName: user.Email);
        return TypedResults.Json(await ViewAsync(users, user), AccountJsonContext.Default.UserView, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>
    /// Creates a local account with a password and one role through ASP.NET Core Identity (password hashed with its
    /// PBKDF2 hasher; unique e-mail). Returns the user, or a problem: 409 e-mail taken, 422 a password Identity refuses.
    /// </summary>
    internal static async Task<(DgonUser? User, IResult? Error)> CreateUserAsync(UserManager<DgonUser> users, UserCreateRequest body, string role, TimeProvider clock)
    {
        var email = body.Email!.Trim();
        if (await users.FindByEmailAsync(email) is not null)
        {
            return (null, Problems.Conflict("email-taken", "E-mail taken", "an account with this e-mail exists already"));
        }

        var user = new DgonUser { UserName = email, Email = email, DisplayName = string.IsNullOrWhiteSpace(body.Name) ? null : body.Name.Trim(), CreatedAt = clock.GetUtcNow().UtcDateTime };
        var created = await users.CreateAsync(user, body.Password!);
        if (!created.Succeeded)
        {
            return (null, IdentityProblem(created));
        }

        var added = await users.AddToRoleAsync(user, role);
        return added.Succeeded ? (user, null) : (null, IdentityProblem(added));
    }

    /// <summary>A refused Identity operation as a problem: 409 for a duplicate e-mail or user name, else 422 keyed by field.</summary>
    internal static IResult IdentityProblem(IdentityResult result)
    {
        if (result.Errors.Any(e => e.Code is "DuplicateEmail" or "DuplicateUserName"))
        {
            return Problems.Conflict("email-taken", "E-mail taken", "an account with this e-mail exists already");
        }

        var field = result.Errors.Any(e => e.Code.StartsWith("Password", StringComparison.Ordinal)) ? "password" : "email";
        return Problems.Validation(new Dictionary<string, string[]>(StringComparer.Ordinal) { [field] = [.. result.Errors.Select(e => e.Description)] });
    }

    private static IResult Me(HttpContext http)
    {
        var user = http.User;
        var kind = user.CredentialKind() ?? AccessClaims.SessionCredential;
        return TypedResults.Json(
            new MeResponse
            {
                Id = user.ActorId()!,
                Email = user.UserId() is null ? null : user.FindFirstValue(ClaimTypes.Name),
                Name = user.FindFirstValue(ClaimTypes.Name),
                Role = user.RoleName()!,
                Scopes = [.. user.FindAll(AccessClaims.Scope).Select(c => c.Value)],
                Credential = kind,
                ApiKeyId = kind == AccessClaims.ApiKeyCredential ? user.FindFirstValue(AccessClaims.CredentialId) : null,
            },
            AccountJsonContext.Default.MeResponse);
    }

    private static async Task<IResult> ProviderSummaryAsync(HttpContext http, INodeQueries nodes, IReceiptStore receipts, CancellationToken ct)
    {
        // The admin token owns no nodes: "" matches none.
        var owner = http.User.UserId() ?? "";
        var counts = await nodes.CountOwnedByPhaseAsync(owner, ct);
        var usage = await receipts.UsageAsync(byKey: false, owner, since: null, ct);
        return TypedResults.Json(
            new ProviderSummary
            {
                NodesTotal = counts.Values.Sum(),
                NodesOnline = counts.GetValueOrDefault(Domain.Nodes.NodePhase.Active),
                Receipts = usage.Sum(u => u.Requests),
                TokensInput = usage.Sum(u => u.TokensInput),
                TokensOutput = usage.Sum(u => u.TokensOutput),
                EarningsComputeUnits = null,
            },
            AccountJsonContext.Default.ProviderSummary);
    }

    /// <summary>Lists API keys: the caller's own, or every key when <paramref name="all"/> (admin).</summary>
    internal static async Task<IResult> ListKeysAsync(HttpContext http, CredentialStore store, TimeProvider clock, bool all, CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var keys = await store.ListApiKeysAsync(!all, http.User.UserId(), ct);
        return TypedResults.Json(keys.Select(k => KeyView(k.Key, k.OwnerEmail, now)).ToList(), AccountJsonContext.Default.ListApiKeyView);
    }

    /// <summary>Creates an API key owned by the caller, with scopes within the caller's role (403 beyond it).</summary>
    internal static async Task<IResult> CreateKeyAsync(HttpContext http, CredentialStore store, AuditLog audit, TimeProvider clock, CancellationToken ct)
    {
        var parsed = await JsonBody.ReadValidAsync(http.Request, AccountJsonContext.Default.ApiKeyCreateRequest, b => AccountValidator.Validate(b, clock.GetUtcNow()), ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var body = parsed.Value!;
        var allowed = Scopes.OfRole(http.User.RoleName());
        if (body.Scopes!.FirstOrDefault(s => !allowed.Contains(s)) is { } beyond)
        {
            return Problems.Forbidden($"scope '{beyond}' is beyond your role ({http.User.RoleName()}); a key never has more than its owner's role");
        }

        var expires = body.ExpiresAt is { } e ? new DateTimeOffset(DateTime.SpecifyKind(e, DateTimeKind.Utc)) : (DateTimeOffset?)null;
        var (key, secret) = await store.CreateApiKeyAsync(http.User.UserId(), body.Name!.Trim(), body.Scopes!, expires, ct);
        await audit.WriteAsync(http, "api_key.create", "api_key:" + key.Id, details: new Dictionary<string, string?> { ["name"] = key.Name, ["scopes"] = string.Join(' ', key.Scopes) });
        var ownerEmail = http.User.UserId() is null ? null : http.User.FindFirstValue(ClaimTypes.Name);
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(KeyView(key, ownerEmail, clock.GetUtcNow().UtcDateTime) with { Key = secret }, AccountJsonContext.Default.ApiKeyView, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>Revokes an API key: the caller's own, or any key when <paramref name="all"/> (admin). 404 when there is no such key (of theirs).</summary>
    internal static async Task<IResult> RevokeKeyAsync(string id, HttpContext http, CredentialStore store, AuditLog audit, bool all, CancellationToken ct)
    {
        if (!await store.RevokeApiKeyAsync(id, !all, http.User.UserId(), ct))
        {
            return Problems.NotFound($"no API key with id '{Problems.Clip(id)}'");
        }

        await audit.WriteAsync(http, "api_key.revoke", "api_key:" + id);
        return TypedResults.NoContent();
    }

    /// <summary>The wire form of an API key at <paramref name="now"/>.</summary>
    internal static ApiKeyView KeyView(ApiKeyEntity key, string? ownerEmail, DateTime now) => new()
    {
        Id = key.Id,
        Name = key.Name,
        Prefix = Credentials.ApiKeyPrefix + key.Id,
        Scopes = key.Scopes,
        Owner = new OwnerView(key.UserId ?? AccessClaims.AdminTokenActor, ownerEmail),
        CreatedAt = Utc(key.CreatedAt),
        ExpiresAt = key.ExpiresAt is { } x ? Utc(x) : null,
        LastUsedAt = key.LastUsedAt is { } l ? Utc(l) : null,
        RevokedAt = key.RevokedAt is { } r ? Utc(r) : null,
        State = key.RevokedAt is not null ? "revoked" : key.ExpiresAt is { } exp && exp <= now ? "expired" : "active",
    };

    /// <summary>The wire form of a user.</summary>
    internal static async Task<UserView> ViewAsync(UserManager<DgonUser> users, DgonUser user)
    {
        var roles = await users.GetRolesAsync(user);
        var logins = await users.GetLoginsAsync(user);
        return new UserView
        {
            Id = user.Id,
            Email = user.Email,
            Name = user.DisplayName,
            Role = roles.FirstOrDefault() ?? Roles.Viewer,
            ExternalLogin = logins.Count > 0 ? "oidc" : null,
            LockedUntil = user.LockoutEnd is { } end && end > DateTimeOffset.UtcNow ? end.UtcDateTime : null,
            CreatedAt = Utc(user.CreatedAt),
        };
    }

    /// <summary>The admin token as a user.</summary>
    internal static UserView AdminView { get; } = new() { Id = AccessClaims.AdminTokenActor, Email = null, Name = "admin (token)", Role = Roles.Admin };

    private static TimeSpan LockoutLeft(DgonUser user) =>
        user.LockoutEnd is { } end ? end - DateTimeOffset.UtcNow : TimeSpan.FromMinutes(30);

    private static string DummyHash(UserManager<DgonUser> users) =>
        s_dummyHash ??= users.PasswordHasher.HashPassword(new DgonUser(), "dgon-dummy-password-for-timing");

    private static string? s_dummyHash;

    private static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);
}
