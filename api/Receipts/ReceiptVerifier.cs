using System.Text.Json;
using Dgon.Domain.Ports;
using Dgon.Domain.Receipts;

namespace Dgon.Api.Receipts;

/// <summary>
/// Checks a receipt's <c>payload.signature</c> against the node's enrolled Ed25519 key before it is stored (issue 13),
/// for the receipts nodes post (<c>POST /v1/receipts</c>) and those the gateway writes. Outcomes
/// (<see cref="WorkReceipt.SignatureStatus"/>): <see cref="Valid"/>; <see cref="Invalid"/> — a well-formed
/// <c>ed25519:</c> signature that does not verify under the node's key, which only the node itself can have sent over
/// its authenticated channel, so it is recorded as evidence (<see cref="INodeRegistry.RecordAuthFailuresAsync"/>: in
/// Kubernetes mode the operator quarantines the node; standalone logs it); <see cref="Unsigned"/> — no signature, a
/// placeholder that is not one (seed 000's sample <c>"ed25519:base64..."</c>), or a node without an enrolled key.
/// </summary>
public sealed partial class ReceiptVerifier(INodeRegistry registry, TimeProvider clock, ILogger<ReceiptVerifier> logger)
{
    /// <summary>The signature verifies under the node's key.</summary>
    public const string Valid = "valid";

    /// <summary>A well-formed signature that does not verify: evidence against the node.</summary>
    public const string Invalid = "invalid";

    /// <summary>No usable signature, or no key to check it with.</summary>
    public const string Unsigned = "unsigned";

    /// <summary>Why the last <see cref="Invalid"/> was invalid, as the failure record's reason.</summary>
    public const string EvidenceReason = "InvalidReceiptSignature";

    /// <summary>The signature status of <paramref name="receipt"/>; records evidence when it is <see cref="Invalid"/>.</summary>
    public async Task<string> CheckAsync(WorkReceipt receipt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        var publicKey = (await registry.GetCredentialsAsync(receipt.NodeId, cancellationToken))?.PublicKey;
        var status = Status(publicKey, receipt);
        if (status == Invalid)
        {
            var now = clock.GetUtcNow();
            LogInvalid(receipt.Id, receipt.NodeId);
            await registry.RecordAuthFailuresAsync(receipt.NodeId, new AuthFailureRecord(1, now, now, EvidenceReason), cancellationToken);
        }

        return status;
    }

    /// <summary>The status without side effects (for <c>POST /v1/receipts/verify</c> and tests).</summary>
    public static string Status(string? publicKey, WorkReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        if (publicKey is null)
        {
            return Unsigned;
        }

        var verification = ExecutionReceipts.Verify(publicKey, Document(receipt));
        return verification switch
        {
            { Valid: true } => Valid,
            { Reason: "bad_signature" } => Invalid,
            _ => Unsigned,
        };
    }

    /// <summary>The receipt in wire form (<c>{id, node_id, region, model_id, payload}</c>), as nodes sign it.</summary>
    public static JsonElement Document(WorkReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        var json = new System.Text.Json.Nodes.JsonObject
        {
            ["id"] = receipt.Id,
            ["node_id"] = receipt.NodeId,
            ["region"] = receipt.Region,
            ["model_id"] = receipt.ModelId,
            ["payload"] = System.Text.Json.Nodes.JsonNode.Parse(receipt.Payload.GetRawText()),
        };
        using var document = JsonDocument.Parse(json.ToJsonString());
        return document.RootElement.Clone();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Receipt {ReceiptId} of node {NodeId}: its ed25519 signature does not verify under the node's key; stored as evidence")]
    private partial void LogInvalid(string receiptId, string nodeId);
}
