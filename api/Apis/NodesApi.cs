using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Dgon.Api.Accounts;
using Dgon.Api.Auth;
using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Api.Observability;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Domain.Validation;

namespace Dgon.Api.Apis;

/// <summary>
/// Node endpoints of seed 000: <c>POST /v1/nodes/register</c>, <c>POST /v1/nodes/heartbeat</c> (HMAC),
/// <c>GET /v1/nodes</c> (filters and keyset paging).
/// </summary>
public static partial class NodesApi
{
    /// <summary>Default page size of <c>GET /v1/nodes</c>.</summary>
    public const int DefaultPageSize = 500;

    /// <summary>Largest page size of <c>GET /v1/nodes</c>.</summary>
    public const int MaxPageSize = 1000;

    /// <summary>Maps the node endpoints.</summary>
    public static IEndpointRouteBuilder MapNodesApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/nodes").WithTags("Nodes");

        group.MapPost("/register", RegisterAsync)
            .RequireRateLimiting(ServiceCollectionExtensions.RegisterRateLimit)
            .WithName("RegisterNode")
            .WithSummary("Enroll a node (Authorization: Bearer <join token>) or re-register it (X-Node-Proof by its key); returns its fresh HMAC token once")
            .Accepts<RegisterRequest>("application/json")
            .Produces<RegisterResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);

        group.MapPost("/rotate-token", RotateTokenAsync)
            .RequireRateLimiting(ServiceCollectionExtensions.RegisterRateLimit)
            .WithName("RotateNodeToken")
            .WithSummary("Key-signed (X-Node-Proof): issue a fresh HMAC token; the previous one keeps working for the overlap window")
            .Accepts<object>("application/json")
            .Produces<RotateTokenResponse>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);

        ApiMetrics.CountOutcomes(group.MapPost("/heartbeat", HeartbeatAsync), (m, result) => m.Heartbeat(result), ServiceCollectionExtensions.StatusForException)
            .WithName("NodeHeartbeat")
            .WithSummary("Signed heartbeat (X-Node-Id, X-Node-Ts, X-Node-Auth v1 or v2; each X-Node-Ts later than the last); returns the node's phase")
            .Accepts<HeartbeatRequest>("application/json")
            .Produces<HeartbeatResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);

        var list = group.MapGet("", ListAsync)
            .WithName("ListNodes")
            .WithSummary("Nodes in id order; ?status=, ?region=, ?prefix= (id prefix), ?limit= (1-1000, default 500), ?cursor=; next page in the Link header. Scope nodes:read (unless DGON_OPEN_READS); operators see their own nodes")
            .Produces<List<NodeView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        RequireReadScope(app, list);

        return app;
    }

    private static async Task<IResult> RegisterAsync(
        HttpRequest request,
        INodeRegistry registry,
        IJoinTokenStore joinTokens,
        SignedRequestReader reader,
        AdminCredential admin,
        NodeRequestLimits limits,
        DgonApiOptions options,
        AuthFailureWindow failures,
        ILoggerFactory loggers,
        CancellationToken ct)
    {
        using var slot = await limits.RegistrationSlotAsync(ct);
        if (slot is null)
        {
            return Problems.RateLimited(TimeSpan.FromSeconds(1), "too many registrations are in progress");
        }

        var raw = await JsonBody.ReadAsync(request, ct);
        if (raw.Error is not null)
        {
            return raw.Error;
        }

        var parsed = JsonBody.ParseValid(raw.Value, DgonJsonContext.Default.RegisterRequest, ContractValidator.Validate);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var body = parsed.Value!;
        var nodeId = body.NodeId!;
        var bearer = BearerAuthenticationHandler.BearerToken(request);
        var address = NodeRequestLimits.ClientAddress(request.HttpContext);
        string? enrolledWith = null;
        string? ownerId = null;
        RegistrationPrecondition precondition;
        string how;
        if (options.Trust.OpenRegistration || admin.Matches(bearer))
        {
            precondition = RegistrationPrecondition.Any;
            how = options.Trust.OpenRegistration ? "open registration" : "admin";
        }
        else if ((await registry.GetCredentialsAsync(nodeId, ct))?.PublicKey is { } enrolledKey)
        {
            // Enrolled: only the key holder (or an admin) may re-register, rotate or change the wallet.
            if (body.PublicKey is { } offered && !string.Equals(offered, enrolledKey, StringComparison.Ordinal))
            {
                return Problems.KeyMismatch(nodeId);
            }

            var proof = await reader.VerifyKeyProofAsync(request, nodeId, enrolledKey, raw.Value, ct);
            switch (proof)
            {
                case KeyProofResult.Ok:
                    break;
                case KeyProofResult.Replayed:
                    return Problems.Unauthorized(NodeAuthResult.Replayed);
                case KeyProofResult.StaleTimestamp:
                    return Problems.Unauthorized(NodeAuthResult.StaleTimestamp); // the agent's clock, not its key: it can retry
                default:
                    return Problems.ProofRequired(nodeId, proof switch
                    {
                        KeyProofResult.Missing => $"the request carries no {NodeKeyProof.ProofHeader}",
                        KeyProofResult.WrongNode => $"{NodeAuth.NodeIdHeader} does not name this node",
                        _ => $"the {NodeKeyProof.ProofHeader} signature does not verify under the enrolled key",
                    });
            }

            precondition = RegistrationPrecondition.KeyIs(enrolledKey);
            how = "key proof";
        }
        else
        {
            // New (or reset) node: a join token enrolls it.
            if (bearer is null)
            {
                return Problems.JoinTokenRequired();
            }

            if (!JoinTokens.TryParse(bearer, out var joinToken))
            {
                limits.RecordFailure(address);
                return Problems.JoinTokenRefused(JoinTokenCheck.Malformed);
            }

            var check = await joinTokens.TryConsumeAsync(joinToken, body.Region!, ct);
            if (check != JoinTokenCheck.Ok)
            {
                limits.RecordFailure(address);
                return Problems.JoinTokenRefused(check, body.Region);
            }

            precondition = RegistrationPrecondition.Keyless;
            enrolledWith = joinToken.Id;
            ownerId = (await joinTokens.GetAsync(joinToken.Id, ct))?.OwnerId;
            how = $"join token {joinToken.Id}";
        }

        NodeRuntimes.TryParse(body.Runtime, out var runtime);
        var registration = new NodeRegistration(
            nodeId,
            body.Region!,
            runtime,
            NullIfEmpty(body.AsnHint),
            NullIfEmpty(body.WalletAddress),
            body.GreenEnergy ?? false,
            body.PublicKey,
            enrolledWith,
            ownerId);
        var token = NodeAuth.NewToken();
        var outcome = await registry.RegisterAsync(registration, token, precondition, ct);
        if (outcome.Node is not { } node)
        {
            return Problems.ProofRequired(nodeId, "another registration enrolled it meanwhile");
        }

        failures.Reset(node.Id); // a fresh token starts a fresh count
        LogRegistered(loggers.CreateLogger(typeof(NodesApi)), node.Id, node.Region, node.Runtime.ToWire(), node.Phase.ToWire(), how);

        request.HttpContext.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(new RegisterResponse("registered", node.Id, token), DgonJsonContext.Default.RegisterResponse);
    }

    private static async Task<IResult> RotateTokenAsync(
        HttpRequest request, INodeRegistry registry, SignedRequestReader reader, DgonApiOptions options, TimeProvider clock, ILoggerFactory loggers, CancellationToken ct)
    {
        var raw = await JsonBody.ReadAsync(request, ct);
        if (raw.Error is not null)
        {
            return raw.Error;
        }

        var nodeId = request.Headers[NodeAuth.NodeIdHeader].ToString();
        var credentials = ContractValidator.IsValidNodeId(nodeId) ? await registry.GetCredentialsAsync(nodeId, ct) : null;
        if (credentials is null)
        {
            return Problems.Unauthorized(string.IsNullOrEmpty(nodeId) ? NodeAuthResult.MissingHeaders : NodeAuthResult.UnknownNode);
        }

        if (credentials.PublicKey is not { } key)
        {
            return Problems.BadProof($"node '{nodeId}' has no enrolled key; enroll it with a join token first");
        }

        var proof = await reader.VerifyKeyProofAsync(request, nodeId, key, raw.Value, ct);
        if (proof != KeyProofResult.Ok)
        {
            return proof switch
            {
                KeyProofResult.Replayed => Problems.Unauthorized(NodeAuthResult.Replayed),
                KeyProofResult.StaleTimestamp => Problems.Unauthorized(NodeAuthResult.StaleTimestamp),
                KeyProofResult.Missing => Problems.BadProof($"{NodeAuth.NodeIdHeader}, {NodeAuth.TimestampHeader} and {NodeKeyProof.ProofHeader} are required"),
                _ => Problems.BadProof($"the {NodeKeyProof.ProofHeader} signature does not verify under the enrolled key"),
            };
        }

        var parsed = JsonBody.Parse(raw.Value, DgonJsonContext.Default.JsonElement);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var token = NodeAuth.NewToken();
        var until = clock.GetUtcNow() + options.Trust.RotationOverlap;
        if (!await registry.RotateTokenAsync(nodeId, token, until, ct))
        {
            return Problems.Unauthorized(NodeAuthResult.UnknownNode);
        }

        LogRotated(loggers.CreateLogger(typeof(NodesApi)), nodeId, until);
        request.HttpContext.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(new RotateTokenResponse(nodeId, token, until.UtcDateTime), DgonJsonContext.Default.RotateTokenResponse);
    }

    private static async Task<IResult> HeartbeatAsync(HttpRequest request, SignedRequestReader reader, INodeRegistry registry, Fleet.HeartbeatIntervals intervals, ILoggerFactory loggers, CancellationToken ct)
    {
        var signed = await reader.ReadAsync(request, DgonJsonContext.Default.HeartbeatRequest, ContractValidator.Validate, ReplayRule.Clocked, ct);
        if (signed.Error is not null)
        {
            return signed.Error;
        }

        var (nodeId, body) = signed.Value!;
        var change = await registry.RecordHeartbeatAsync(
            nodeId,
            new NodeHeartbeat(body.Ready!.Value, new NodeMetrics(body.GpuUtil, body.MemUsedGb, body.P95Ms)),
            ct);
        if (change is null)
        {
            // Deleted between authentication and the write.
            return Problems.Unauthorized(NodeAuthResult.UnknownNode);
        }

        if (change.From != change.To)
        {
            LogPhaseChanged(loggers.CreateLogger(typeof(NodesApi)), nodeId, change.From.ToWire(), change.To.ToWire(), change.Reason);
        }

        return TypedResults.Json(new HeartbeatResponse(change.To.ToWire(), intervals.CurrentSeconds), DgonJsonContext.Default.HeartbeatResponse);
    }

    /// <summary>
    /// Puts a read endpoint behind scope <c>nodes:read</c> (issue 12), unless <c>DGON_OPEN_READS=true</c> restores seed
    /// 000's dev-open reads.
    /// </summary>
    public static void RequireReadScope(IEndpointRouteBuilder app, IEndpointConventionBuilder endpoint)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (!app.ServiceProvider.GetRequiredService<DgonApiOptions>().Accounts.OpenReads)
        {
            endpoint.RequireAuthorization(AccessClaims.NodesReadPolicy);
        }
    }

    private static async Task<IResult> ListAsync(HttpRequest request, INodeQueries queries, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var q = request.Query;

        NodePhase? phase = null;
        if (q.TryGetValue("status", out var statusValue) && statusValue.ToString() is { Length: > 0 } status)
        {
            if (NodePhases.TryParse(status, out var p))
            {
                phase = p;
            }
            else
            {
                errors["status"] = [$"must be one of {string.Join(", ", NodePhases.All.Select(x => x.ToWire()))}"];
            }
        }

        string? region = null;
        if (q.TryGetValue("region", out var regionValue) && regionValue.ToString() is { Length: > 0 } r)
        {
            if (ContractValidator.IsValidRegion(r))
            {
                region = r;
            }
            else
            {
                errors["region"] = ["is not a valid region name"];
            }
        }

        var limit = DefaultPageSize;
        if (q.TryGetValue("limit", out var limitValue) && limitValue.ToString() is { Length: > 0 } l
            && !(int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= MaxPageSize))
        {
            errors["limit"] = [$"must be an integer from 1 to {MaxPageSize}"];
        }

        string? prefix = null;
        if (q.TryGetValue("prefix", out var prefixValue) && prefixValue.ToString() is { Length: > 0 } px)
        {
            if (IsValidIdPrefix(px))
            {
                prefix = px;
            }
            else
            {
                errors["prefix"] = ["must be the start of a node id: up to 63 lowercase letters, digits and '-', beginning with a letter or digit"];
            }
        }

        string? after = null;
        if (q.TryGetValue("cursor", out var cursorValue) && cursorValue.ToString() is { Length: > 0 } c)
        {
            after = DecodeCursor(c);
            if (after is null)
            {
                errors["cursor"] = ["is not a cursor returned by this API"];
            }
        }

        if (errors.Count > 0)
        {
            return Problems.InvalidQuery(errors);
        }

        var user = request.HttpContext.User;
        var page = await queries.ListAsync(new NodeListQuery(phase, region, limit, after, prefix) { OwnerId = user.RestrictedToOwner() }, ct);
        if (page.NextAfter is { } next)
        {
            var query = new List<string> { $"limit={limit}", $"cursor={EncodeCursor(next)}" };
            if (phase is { } ph)
            {
                query.Add($"status={ph.ToWire()}");
            }

            if (region is not null)
            {
                query.Add($"region={Uri.EscapeDataString(region)}");
            }

            if (prefix is not null)
            {
                query.Add($"prefix={prefix}");
            }

            request.HttpContext.Response.Headers.Link = $"</v1/nodes?{string.Join('&', query)}>; rel=\"next\"";
        }

        var views = page.Items.Select(n => ToView(n, user)).ToList();
        return TypedResults.Json(views, DgonJsonContext.Default.ListNodeView);
    }

    /// <summary>
    /// Maps a stored node to its wire form for <paramref name="viewer"/>: wallet address, ASN hint and owner only for
    /// admins and the node's owner (issue 12), null for everyone else (anonymous open reads included).
    /// </summary>
    public static NodeView ToView(NodeRecord node, System.Security.Claims.ClaimsPrincipal viewer)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(viewer);
        var privileged = viewer.SeesEverything() || (node.OwnerId is not null && node.OwnerId == viewer.UserId());
        return new NodeView
        {
            Id = node.Id,
            Region = node.Region,
            Runtime = node.Runtime.ToWire(),
            Status = node.Phase.ToWire(),
            Reputation = node.Reputation,
            GreenEnergy = node.GreenEnergy,
            LastHeartbeat = node.LastHeartbeat?.UtcDateTime,
            Ready = node.Ready,
            AsnHint = privileged ? node.AsnHint : null,
            WalletAddress = privileged ? node.WalletAddress : null,
            OwnerId = privileged ? node.OwnerId : null,
            HasKey = node.PublicKey is not null,
            GpuUtil = node.Metrics.GpuUtil,
            MemUsedGb = node.Metrics.MemUsedGb,
            P95Ms = node.Metrics.P95Ms,
            CreatedAt = node.CreatedAt.UtcDateTime,
        };
    }

    // Cursors are opaque to clients: base64url of the last id seen.
    private static string EncodeCursor(string lastId) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(lastId));

    private static string? DecodeCursor(string cursor)
    {
        try
        {
            var id = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
            return ContractValidator.IsValidNodeId(id) ? id : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    // The start of an RFC 1123 label (ContractValidator's node id rule): [a-z0-9], then [-a-z0-9]*, at most 63.
    private static bool IsValidIdPrefix(string prefix) =>
        prefix.Length <= 63 && prefix[0] is (>= 'a' and <= 'z') or (>= '0' and <= '9')
        && prefix.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} registered (region {Region}, runtime {Runtime}, phase {Phase}) by {How}")]
    private static partial void LogRegistered(ILogger logger, string nodeId, string region, string runtime, string phase, string how);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} rotated its token; the previous one works until {Until:o}")]
    private static partial void LogRotated(ILogger logger, string nodeId, DateTimeOffset until);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} phase {From} -> {To} ({Reason})")]
    private static partial void LogPhaseChanged(ILogger logger, string nodeId, string from, string to, string reason);
}
