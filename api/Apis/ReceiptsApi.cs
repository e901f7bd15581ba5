using Dgon.Api.Configuration;
using Dgon.Api.Http;
using Dgon.Api.Observability;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Domain.Validation;

namespace Dgon.Api.Apis;

/// <summary>
/// <c>POST /v1/receipts</c> (seed 000, HMAC): stores a work receipt with its full payload (jsonb).
/// Idempotent by id: the same content again → 200; different content → 409. node_id must equal X-Node-Id (else 403).
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
        return app;
    }

    private static async Task<IResult> IngestAsync(HttpRequest request, SignedRequestReader reader, IReceiptStore store, ILoggerFactory loggers, CancellationToken ct)
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
        return TypedResults.Json(new ReceiptResponse(true), DgonJsonContext.Default.ReceiptResponse);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Receipt {ReceiptId} from {NodeId}: {Result}")]
    private static partial void LogReceipt(ILogger logger, string receiptId, string nodeId, ReceiptAppendResult result);
}
