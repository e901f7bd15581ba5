using Dgon.Api.Accounts;
using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Domain.Validation;

namespace Dgon.Api.Apis;

/// <summary>
/// Join tokens and node actions (issues 9 and 12), under <see cref="AccessClaims.NodeManagementPolicy"/>: an admin
/// (scope <c>admin</c>) acts on every token and node; an operator signed in as a person acts on their own — the
/// tokens they created, and the nodes those enrolled — and gets 404 for anyone else's. Every action is audited.
/// </summary>
public static partial class AdminApi
{
    /// <summary>Maps the admin endpoints.</summary>
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin")
            .WithTags("Admin")
            .RequireAuthorization(AccessClaims.NodeManagementPolicy)
            .RequireRateLimiting(ServiceCollectionExtensions.AdminRateLimit)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);

        group.MapPost("/join-tokens", CreateJoinTokenAsync)
            .WithName("CreateJoinToken")
            .WithSummary("Create a join token ({} or ttl_seconds, max_uses, description, region); the token is shown once")
            .Accepts<JoinTokenCreateRequest>("application/json")
            .Produces<JoinTokenView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapGet("/join-tokens", ListJoinTokensAsync)
            .WithName("ListJoinTokens")
            .WithSummary("Every join token, newest first, without secrets")
            .Produces<List<JoinTokenView>>();
        group.MapDelete("/join-tokens/{id}", RevokeJoinTokenAsync)
            .WithName("RevokeJoinToken")
            .WithSummary("Revoke a join token at once")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/nodes/{id}/reset-key", ResetNodeKeyAsync)
            .WithName("ResetNodeKey")
            .WithSummary("Forget a node's key and tokens (lost machine); it enrolls again with a join token")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/nodes/{id}/quarantine", (string id, HttpContext http, INodeAdministration nodes, INodeQueries queries, AuditLog audit, CancellationToken ct) => QuarantineAsync(id, true, http, nodes, queries, audit, ct))
            .WithName("QuarantineNode")
            .WithSummary("Hold a node out of the network (Kubernetes: spec.quarantine=true)")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/nodes/{id}/release", (string id, HttpContext http, INodeAdministration nodes, INodeQueries queries, AuditLog audit, CancellationToken ct) => QuarantineAsync(id, false, http, nodes, queries, audit, ct))
            .WithName("ReleaseNode")
            .WithSummary("Release a quarantined node; its next heartbeat decides its phase")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/nodes/{id}", DeleteNodeAsync)
            .WithName("DeleteNode")
            .WithSummary("Delete a node and its secrets; it must enroll again with a join token")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> CreateJoinTokenAsync(HttpRequest request, IJoinTokenStore store, TimeProvider clock, AuditLog audit, ILoggerFactory loggers, CancellationToken ct)
    {
        var parsed = await JsonBody.ReadValidAsync(request, DgonJsonContext.Default.JoinTokenCreateRequest, ContractValidator.Validate, ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var body = parsed.Value!;
        var spec = new JoinTokenSpec(
            body.TtlSeconds is { } ttl ? TimeSpan.FromSeconds(ttl) : JoinTokens.DefaultTtl,
            body.MaxUses,
            string.IsNullOrEmpty(body.Description) ? null : body.Description,
            body.Region,
            request.HttpContext.User.UserId());
        var (record, token) = await store.CreateAsync(spec, ct);
        LogCreated(loggers.CreateLogger(typeof(AdminApi)), record.Id, record.ExpiresAt, record.MaxUses, record.Region);
        await audit.WriteAsync(request.HttpContext, "join_token.create", "join_token:" + record.Id, details: new Dictionary<string, string?>
        {
            ["expires_at"] = record.ExpiresAt.ToString("o", System.Globalization.CultureInfo.InvariantCulture),
            ["max_uses"] = record.MaxUses?.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["region"] = record.Region,
        });
        request.HttpContext.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(View(record, clock.GetUtcNow()) with { Token = token.ToString() }, DgonJsonContext.Default.JoinTokenView, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> ListJoinTokensAsync(HttpContext http, IJoinTokenStore store, TimeProvider clock, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var everything = http.User.SeesEverything();
        var me = http.User.UserId();
        var tokens = await store.ListAsync(ct);
        return TypedResults.Json(tokens.Where(t => everything || (me is not null && t.OwnerId == me)).Select(t => View(t, now)).ToList(), DgonJsonContext.Default.ListJoinTokenView);
    }

    private static async Task<IResult> RevokeJoinTokenAsync(string id, HttpContext http, IJoinTokenStore store, AuditLog audit, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!JoinTokens.IsValidId(id) || !await OwnsTokenAsync(id, http, store, ct) || !await store.RevokeAsync(id, ct))
        {
            return Problems.NotFound($"no join token with id '{Problems.Clip(id)}'");
        }

        LogRevoked(loggers.CreateLogger(typeof(AdminApi)), id);
        await audit.WriteAsync(http, "join_token.revoke", "join_token:" + id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> ResetNodeKeyAsync(string id, HttpContext http, INodeRegistry registry, INodeQueries queries, AuthFailureWindow failures, AuditLog audit, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!await MayActOnAsync(id, http, queries, ct) || !await registry.ResetIdentityAsync(id, ct))
        {
            return Problems.NotFound($"no node with id '{Problems.Clip(id)}'");
        }

        failures.Reset(id);
        LogReset(loggers.CreateLogger(typeof(AdminApi)), id);
        await audit.WriteAsync(http, "node.reset_key", "node:" + id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> QuarantineAsync(string id, bool quarantine, HttpContext http, INodeAdministration nodes, INodeQueries queries, AuditLog audit, CancellationToken ct)
    {
        if (!await MayActOnAsync(id, http, queries, ct) || !await nodes.SetQuarantineAsync(id, quarantine, ct))
        {
            return Problems.NotFound($"no node with id '{Problems.Clip(id)}'");
        }

        await audit.WriteAsync(http, quarantine ? "node.quarantine" : "node.release", "node:" + id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> DeleteNodeAsync(string id, HttpContext http, INodeAdministration nodes, INodeQueries queries, AuthFailureWindow failures, AuditLog audit, CancellationToken ct)
    {
        if (!await MayActOnAsync(id, http, queries, ct) || !await nodes.DeleteAsync(id, ct))
        {
            return Problems.NotFound($"no node with id '{Problems.Clip(id)}'");
        }

        failures.Reset(id);
        await audit.WriteAsync(http, "node.delete", "node:" + id);
        return TypedResults.NoContent();
    }

    private static async Task<bool> OwnsTokenAsync(string id, HttpContext http, IJoinTokenStore store, CancellationToken ct)
    {
        if (http.User.SeesEverything())
        {
            return true;
        }

        var owner = (await store.GetAsync(id, ct))?.OwnerId;
        return owner is not null && owner == http.User.UserId();
    }

    /// <summary>Whether the caller may act on node <paramref name="id"/>: a valid id, and admin scope or ownership (else the node is "not found" to them).</summary>
    private static async Task<bool> MayActOnAsync(string id, HttpContext http, INodeQueries queries, CancellationToken ct)
    {
        if (!ContractValidator.IsValidNodeId(id))
        {
            return false;
        }

        if (http.User.SeesEverything())
        {
            return true;
        }

        var owner = http.User.UserId();
        if (owner is null)
        {
            return false;
        }

        var page = await queries.ListAsync(new NodeListQuery(null, null, 1, null, id) { OwnerId = owner }, ct);
        return page.Items is [var node] && node.Id == id;
    }

    /// <summary>The wire form of a join token, with its state at <paramref name="now"/> (never the secret).</summary>
    public static JoinTokenView View(JoinTokenRecord token, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(token);
        var state = token.RevokedAt is not null ? "revoked"
            : now >= token.ExpiresAt ? "expired"
            : token.MaxUses is { } max && token.Uses >= max ? "used_up"
            : "valid";
        return new JoinTokenView
        {
            Id = token.Id,
            Description = token.Description,
            ExpiresAt = token.ExpiresAt.UtcDateTime,
            MaxUses = token.MaxUses,
            Uses = token.Uses,
            Region = token.Region,
            RevokedAt = token.RevokedAt?.UtcDateTime,
            State = state,
            CreatedAt = token.CreatedAt.UtcDateTime,
            OwnerId = token.OwnerId,
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Admin created join token {Id} (expires {ExpiresAt:o}, max uses {MaxUses}, region {Region})")]
    private static partial void LogCreated(ILogger logger, string id, DateTimeOffset expiresAt, int? maxUses, string? region);

    [LoggerMessage(Level = LogLevel.Information, Message = "Admin revoked join token {Id}")]
    private static partial void LogRevoked(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Admin reset node {NodeId}: its key and tokens are forgotten; it must enroll again with a join token")]
    private static partial void LogReset(ILogger logger, string nodeId);
}
