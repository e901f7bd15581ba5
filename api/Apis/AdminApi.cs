using Dgon.Api.Auth;
using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Domain.Validation;

namespace Dgon.Api.Apis;

/// <summary>
/// Admin endpoints (issue 9), all behind <c>Authorization: Bearer &lt;admin token&gt;</c>
/// (<see cref="BearerAuthenticationHandler.AdminPolicy"/>): join tokens (create, list without secrets, revoke) and
/// the reset of a lost node's key.
/// </summary>
public static partial class AdminApi
{
    /// <summary>Maps the admin endpoints.</summary>
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin")
            .WithTags("Admin")
            .RequireAuthorization(BearerAuthenticationHandler.AdminPolicy)
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
        return app;
    }

    private static async Task<IResult> CreateJoinTokenAsync(HttpRequest request, IJoinTokenStore store, TimeProvider clock, ILoggerFactory loggers, CancellationToken ct)
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
            body.Region);
        var (record, token) = await store.CreateAsync(spec, ct);
        LogCreated(loggers.CreateLogger(typeof(AdminApi)), record.Id, record.ExpiresAt, record.MaxUses, record.Region);
        request.HttpContext.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(View(record, clock.GetUtcNow()) with { Token = token.ToString() }, DgonJsonContext.Default.JoinTokenView, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> ListJoinTokensAsync(IJoinTokenStore store, TimeProvider clock, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var tokens = await store.ListAsync(ct);
        return TypedResults.Json(tokens.Select(t => View(t, now)).ToList(), DgonJsonContext.Default.ListJoinTokenView);
    }

    private static async Task<IResult> RevokeJoinTokenAsync(string id, IJoinTokenStore store, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!JoinTokens.IsValidId(id) || !await store.RevokeAsync(id, ct))
        {
            return Problems.NotFound($"no join token with id '{Problems.Clip(id)}'");
        }

        LogRevoked(loggers.CreateLogger(typeof(AdminApi)), id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> ResetNodeKeyAsync(string id, INodeRegistry registry, AuthFailureWindow failures, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!ContractValidator.IsValidNodeId(id) || !await registry.ResetIdentityAsync(id, ct))
        {
            return Problems.NotFound($"no node with id '{Problems.Clip(id)}'");
        }

        failures.Reset(id);
        LogReset(loggers.CreateLogger(typeof(AdminApi)), id);
        return TypedResults.NoContent();
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
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Admin created join token {Id} (expires {ExpiresAt:o}, max uses {MaxUses}, region {Region})")]
    private static partial void LogCreated(ILogger logger, string id, DateTimeOffset expiresAt, int? maxUses, string? region);

    [LoggerMessage(Level = LogLevel.Information, Message = "Admin revoked join token {Id}")]
    private static partial void LogRevoked(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Admin reset node {NodeId}: its key and tokens are forgotten; it must enroll again with a join token")]
    private static partial void LogReset(ILogger logger, string nodeId);
}
