using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Domain.Receipts;

namespace Dgon.Api.Inference;

/// <summary>What the gateway found in a node's receipt.</summary>
/// <param name="Status"><c>valid</c> or <c>invalid</c>.</param>
/// <param name="Reason">Why invalid (null when valid): a <see cref="ReceiptVerification.Reason"/>, or <c>wrong_id</c>,
/// <c>wrong_node</c>, <c>wrong_model</c>, <c>bad_proof</c>, <c>no_key</c>.</param>
public sealed record ReceiptCheck(string Status, string? Reason);

/// <summary>
/// The gateway's receipts (issue 13): after a node's <c>result</c>, the receipt is checked — Ed25519 signature under
/// the node's enrolled key (<see cref="ExecutionReceipts.Verify"/>), <c>id</c> = task id, <c>node_id</c> = the linked
/// node, <c>model_id</c> = the dispatched model, <c>payload.proof</c> = <see cref="ExecutionReceipts.Proof"/> of the
/// text the gateway assembled — and stored whatever the outcome (<see cref="IReceiptStore.AppendAsync"/>, with the
/// API key id and <c>signature_status</c> valid or invalid). An invalid one is evidence against the node: counted in
/// <see cref="AuthFailureWindow"/> like a replayed request and, past its threshold, recorded with
/// <see cref="INodeRegistry.RecordAuthFailuresAsync"/> (Kubernetes mode: quarantine; standalone: a log line).
/// </summary>
public sealed partial class ReceiptRecorder(AuthFailureWindow failures, GatewayMetrics metrics, TimeProvider clock, ILogger<ReceiptRecorder> logger)
{
    /// <summary>Checks <paramref name="receipt"/> against the dispatch.</summary>
    public static ReceiptCheck Check(JsonElement receipt, string? publicKey, string taskId, string nodeId, string model, string text)
    {
        if (publicKey is null)
        {
            return new("invalid", "no_key");
        }

        var verification = ExecutionReceipts.Verify(publicKey, receipt);
        if (!verification.Valid)
        {
            return new("invalid", verification.Reason);
        }

        if (Text(receipt, "id") != taskId)
        {
            return new("invalid", "wrong_id");
        }

        if (Text(receipt, "node_id") != nodeId)
        {
            return new("invalid", "wrong_node");
        }

        if (Text(receipt, "model_id") != model)
        {
            return new("invalid", "wrong_model");
        }

        var payload = receipt.GetProperty("payload");
        return Text(payload, "proof") == ExecutionReceipts.Proof(taskId, text, nodeId) ? new("valid", null) : new("invalid", "bad_proof");
    }

    /// <summary>Checks and stores the receipt of a finished task.</summary>
    /// <param name="services">Request services (the receipt store and registry are scoped).</param>
    /// <param name="result">The node's result frame.</param>
    /// <param name="nodeRegion">The node's region as known here (used when the receipt names none).</param>
    /// <param name="taskId">Task id.</param>
    /// <param name="nodeId">Node that ran it.</param>
    /// <param name="model">Model dispatched.</param>
    /// <param name="text">The completion text as assembled by the gateway.</param>
    /// <param name="apiKeyId">The API key whose request it was, or null.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The check's outcome.</returns>
    public async Task<ReceiptCheck> RecordAsync(IServiceProvider services, ResultMessage result, string? nodeRegion, string taskId, string nodeId, string model, string text, string? apiKeyId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(result);
        var registry = services.GetRequiredService<INodeRegistry>();
        var publicKey = (await registry.GetCredentialsAsync(nodeId, cancellationToken))?.PublicKey;
        var receipt = result.Receipt;
        var check = Check(receipt, publicKey, taskId, nodeId, model, text);
        var payload = receipt.ValueKind == JsonValueKind.Object && receipt.TryGetProperty("payload", out var p) && p.ValueKind == JsonValueKind.Object
            ? p.Clone()
            : JsonDocument.Parse("{}").RootElement.Clone();
        var region = Text(receipt, "region") is { Length: > 0 and <= 64 } r ? r : nodeRegion ?? "unknown";
        var stored = new WorkReceipt(taskId, nodeId, region, model, payload) { ApiKeyId = apiKeyId, SignatureStatus = check.Status };
        var outcome = await services.GetRequiredService<IReceiptStore>().AppendAsync(stored, cancellationToken);
        metrics.Receipt(check.Status);
        if (check.Status != "valid")
        {
            LogInvalid(nodeId, taskId, check.Reason ?? "-", outcome);
            if (failures.RecordFailure(nodeId, NodeAuthResult.BadSignature, clock.GetUtcNow()) is { } record)
            {
                await registry.RecordAuthFailuresAsync(nodeId, record with { LastReason = "InvalidReceipt" }, cancellationToken);
            }
        }

        return check;
    }

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} returned an invalid receipt for task {TaskId} ({Reason}); stored as evidence ({Outcome})")]
    private partial void LogInvalid(string nodeId, string taskId, string reason, ReceiptAppendResult outcome);
}
