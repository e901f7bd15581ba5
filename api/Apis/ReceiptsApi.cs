using System.Globalization;
using System.Text.Json;
using Dgon.Api.Accounts;
using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Api.Observability;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Domain.Validation;

namespace Dgon.Api.Apis;

/// <summary>
/// Receipts. <c>POST /v1/receipts</c> (seed 000, HMAC): stores a work receipt with its full payload (jsonb), after
/// checking an <c>ed25519:</c> <c>payload.signature</c> against the node's key (<see cref="Receipts.ReceiptVerifier"/>;
/// the answer says <c>signature_status</c>). Idempotent by id: the same content again → 200; different content → 409;
/// node_id must equal X-Node-Id (else 403). Issue 13: <c>GET /v1/receipts</c> (scope <c>receipts:read</c>; filters
/// <c>node</c>, <c>model</c>, <c>key</c>, <c>since</c>, <c>until</c>; keyset paging newest first; operators see their
/// nodes' receipts), <c>POST /v1/receipts/verify</c> and <c>GET /v1/usage?by=key|node</c>.
/// </summary>
public static partial class ReceiptsApi
{
    /// <summary>Maps the receipt endpoints.</summary>
    public static IEndpointRouteBuilder MapReceiptsApi(this IEndpointRouteBuilder app)
    {
        ApiMetrics.CountOutcomes(app.MapPost("/v1/receipts", IngestAsync), (m, result) => m.Receipt(result), ServiceCollectionExtensions.StatusForException)
            .WithTags("Receipts")
            .WithName("IngestReceipt")
            .WithSummary("Signed work receipt; stored durably before 200")
            .Accepts<ReceiptRequest>("application/json")
            .Produces<ReceiptResponse>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesValidationProblem(StatusCodes.Status422UnprocessableEntity);

        var list = app.MapGet("/v1/receipts", ListAsync)
            .WithTags("Receipts")
            .WithName("ListReceipts")
            .WithSummary("Receipts newest first; ?node=, ?model=, ?key= (API key id), ?since=, ?until= (RFC 3339), ?limit= (1-1000, default 100), ?cursor=; next page in the Link header")
            .Produces<List<ReceiptView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);
        var verify = app.MapPost("/v1/receipts/verify", VerifyAsync)
            .WithTags("Receipts")
            .WithName("VerifyReceipt")
            .WithSummary("Check a receipt (as GET /v1/receipts returns it) against its node's enrolled key: {valid, reason}")
            .Accepts<ReceiptView>("application/json")
            .Produces<ReceiptVerifyResponse>();
        var usage = app.MapGet("/v1/usage", UsageAsync)
            .WithTags("Receipts")
            .WithName("GetUsage")
            .WithSummary("Requests and tokens per API key (?by=key, default) or per node (?by=node), from receipts; ?since=; admins see all, others their own keys and nodes")
            .Produces<List<UsageView>>();
        foreach (var endpoint in new[] { list, verify, usage })
        {
            RequireReceiptScope(app, endpoint);
        }

        return app;
    }

    private static void RequireReceiptScope(IEndpointRouteBuilder app, IEndpointConventionBuilder endpoint)
    {
        endpoint.ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        if (!app.ServiceProvider.GetRequiredService<DgonApiOptions>().Accounts.OpenReads)
        {
            endpoint.RequireAuthorization(AccessClaims.ReceiptsReadPolicy);
        }
    }

    private static async Task<IResult> ListAsync(HttpRequest request, IReceiptStore store, CancellationToken ct)
    {
        var q = request.Query;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var limit = 100;
        if (q["limit"].ToString() is { Length: > 0 } l && !(int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= 1000))
        {
            errors["limit"] = ["must be an integer from 1 to 1000"];
        }

        DateTimeOffset? Time(string name)
        {
            if (q[name].ToString() is not { Length: > 0 } text)
            {
                return null;
            }

            if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            {
                return t;
            }

            errors[name] = ["must be an RFC 3339 time"];
            return null;
        }

        var since = Time("since");
        var until = Time("until");
        (DateTimeOffset, string)? before = null;
        if (q["cursor"].ToString() is { Length: > 0 } cursor)
        {
            before = DecodeCursor(cursor);
            if (before is null)
            {
                errors["cursor"] = ["is not a cursor returned by this API"];
            }
        }

        string? Text(string name) => q[name].ToString() is { Length: > 0 and <= 256 } v ? v : null;
        if (errors.Count > 0)
        {
            return Problems.InvalidQuery(errors);
        }

        var user = request.HttpContext.User;
        var query = new ReceiptQuery(limit)
        {
            NodeId = Text("node"),
            ModelId = Text("model"),
            ApiKeyId = Text("key"),
            Since = since,
            Until = until,
            Before = before,
            OwnerId = user.RestrictedToOwner(),
        };
        var page = await store.ListAsync(query, ct);
        if (page.Count == limit)
        {
            var last = page[^1];
            var next = new List<string> { $"limit={limit}", "cursor=" + EncodeCursor(last.CreatedAt, last.Receipt.Id) };
            foreach (var name in new[] { "node", "model", "key", "since", "until" })
            {
                if (q[name].ToString() is { Length: > 0 } v)
                {
                    next.Add(name + "=" + Uri.EscapeDataString(v));
                }
            }

            request.HttpContext.Response.Headers.Link = $"</v1/receipts?{string.Join('&', next)}>; rel=\"next\"";
        }

        var admin = user.SeesEverything();
        return TypedResults.Json(page.Select(r => View(r, admin)).ToList(), ReceiptJsonContext.Default.ListReceiptView);
    }

    /// <summary>The wire form of a stored receipt; the API key id only for <paramref name="showKey"/> (admins).</summary>
    public static ReceiptView View(StoredReceipt stored, bool showKey)
    {
        ArgumentNullException.ThrowIfNull(stored);
        var r = stored.Receipt;
        return new ReceiptView
        {
            Id = r.Id,
            NodeId = r.NodeId,
            Region = r.Region,
            ModelId = r.ModelId,
            Payload = r.Payload,
            ApiKeyId = showKey ? r.ApiKeyId : null,
            SignatureStatus = r.SignatureStatus,
            CreatedAt = stored.CreatedAt.UtcDateTime,
        };
    }

    private static async Task<IResult> VerifyAsync(HttpRequest request, INodeRegistry registry, CancellationToken ct)
    {
        var parsed = await JsonBody.ReadValidAsync(request, DgonJsonContext.Default.JsonElement, _ => [], ct);
        if (parsed.Error is not null)
        {
            return parsed.Error;
        }

        var receipt = parsed.Value;
        if (receipt.ValueKind != JsonValueKind.Object || !receipt.TryGetProperty("node_id", out var nodeElement) || nodeElement.ValueKind != JsonValueKind.String)
        {
            return TypedResults.Json(new ReceiptVerifyResponse(false, "malformed_receipt"), ReceiptJsonContext.Default.ReceiptVerifyResponse);
        }

        var nodeId = nodeElement.GetString()!;
        var credentials = ContractValidator.IsValidNodeId(nodeId) ? await registry.GetCredentialsAsync(nodeId, ct) : null;
        if (credentials is null)
        {
            return TypedResults.Json(new ReceiptVerifyResponse(false, "unknown_node"), ReceiptJsonContext.Default.ReceiptVerifyResponse);
        }

        if (credentials.PublicKey is not { } key)
        {
            return TypedResults.Json(new ReceiptVerifyResponse(false, "no_key"), ReceiptJsonContext.Default.ReceiptVerifyResponse);
        }

        var verification = Dgon.Domain.Receipts.ExecutionReceipts.Verify(key, receipt);
        return TypedResults.Json(new ReceiptVerifyResponse(verification.Valid, verification.Reason), ReceiptJsonContext.Default.ReceiptVerifyResponse);
    }

    private static async Task<IResult> UsageAsync(HttpRequest request, IReceiptStore store, CancellationToken ct)
    {
        var by = request.Query["by"].ToString();
        if (by is not ("" or "key" or "node"))
        {
            return Problems.InvalidQuery(new Dictionary<string, string[]>(StringComparer.Ordinal) { ["by"] = ["must be key or node"] });
        }

        DateTimeOffset? since = null;
        if (request.Query["since"].ToString() is { Length: > 0 } text)
        {
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            {
                return Problems.InvalidQuery(new Dictionary<string, string[]>(StringComparer.Ordinal) { ["since"] = ["must be an RFC 3339 time"] });
            }

            since = t;
        }

        var user = request.HttpContext.User;
        var owner = user.SeesEverything() ? null : user.UserId() ?? "";
        var rows = await store.UsageAsync(by != "node", owner, since, ct);
        return TypedResults.Json(rows.Select(r => new UsageView(r.Key, r.Requests, r.TokensInput, r.TokensOutput)).ToList(), ReceiptJsonContext.Default.ListUsageView);
    }

    private static string EncodeCursor(DateTimeOffset createdAt, string id) =>
        System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(createdAt.UtcTicks.ToString(CultureInfo.InvariantCulture) + ":" + id));

    private static (DateTimeOffset, string)? DecodeCursor(string cursor)
    {
        try
        {
            var text = System.Text.Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(cursor));
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            return colon > 0 && long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) && ticks is > 0 and < 3155378975999999999
                ? (new DateTimeOffset(ticks, TimeSpan.Zero), text[(colon + 1)..])
                : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static async Task<IResult> IngestAsync(HttpRequest request, SignedRequestReader reader, IReceiptStore store, Receipts.ReceiptVerifier verifier, ILoggerFactory loggers, CancellationToken ct)
    {
        var signed = await reader.ReadAsync(request, DgonJsonContext.Default.ReceiptRequest, ContractValidator.Validate, ReplayRule.Idempotent, ct);
        if (signed.Error is not null)
        {
            return signed.Error;
        }

        var (nodeId, body) = signed.Value!;
        if (!string.Equals(body.NodeId, nodeId, StringComparison.Ordinal))
        {
            return Problems.NodeMismatch(nodeId, body.NodeId!);
        }

        var receipt = new WorkReceipt(body.Id!, body.NodeId!, body.Region!, body.ModelId!, body.Payload!.Value);
        receipt = receipt with { SignatureStatus = await verifier.CheckAsync(receipt, ct) };
        var result = await store.AppendAsync(receipt, ct);
        if (result == ReceiptAppendResult.Conflict)
        {
            return Problems.ReceiptConflict(receipt.Id);
        }

        if (result == ReceiptAppendResult.Duplicate)
        {
            ApiMetrics.SetOutcome(request.HttpContext, ApiMetrics.Duplicate);
        }

        LogReceipt(loggers.CreateLogger(typeof(ReceiptsApi)), receipt.Id, nodeId, result);
        return TypedResults.Json(new ReceiptResponse(true, receipt.SignatureStatus), DgonJsonContext.Default.ReceiptResponse);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Receipt {ReceiptId} from {NodeId}: {Result}")]
    private static partial void LogReceipt(ILogger logger, string receiptId, string nodeId, ReceiptAppendResult result);
}
