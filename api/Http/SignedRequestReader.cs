using System.Text.Json.Serialization.Metadata;
using Dgon.Api.Observability;
using Dgon.Domain.Auth;
using Dgon.Domain.Ports;

namespace Dgon.Api.Http;

/// <summary>A node request whose HMAC verified, with its parsed body.</summary>
/// <typeparam name="T">Body type.</typeparam>
/// <param name="NodeId">The authenticated X-Node-Id.</param>
/// <param name="Body">The parsed body.</param>
public sealed record SignedRequest<T>(string NodeId, T Body);

/// <summary>
/// Reads a node request: Content-Type and size checks, then seed 000 authentication (headers present, |now − ts| ≤
/// 120 s, node known, constant-time HMAC over raw body ‖ ts), then JSON parsing. Authentication comes before parsing
/// so an unauthenticated caller learns nothing about body rules.
/// Failures for an existing node (bad signature, stale timestamp) are counted in <see cref="AuthFailureWindow"/>; when
/// a node crosses the threshold (issue 3: default 5 in 10 minutes) the registry records it so an operator can quarantine it.
/// Every refusal is counted in <c>dgon_hmac_failures_total{reason}</c> (<see cref="ApiMetrics"/>).
/// </summary>
public sealed partial class SignedRequestReader(INodeRegistry registry, AuthFailureWindow failures, ApiMetrics metrics, TimeProvider clock, ILogger<SignedRequestReader> logger)
{
    /// <summary>Reads, authenticates, parses and validates the request.</summary>
    /// <param name="request">The HTTP request.</param>
    /// <param name="typeInfo">Body type metadata.</param>
    /// <param name="validate">Field rules; a non-empty error map becomes a 422 problem.</param>
    /// <param name="cancellationToken">Request abort.</param>
    /// <returns>The request, or the problem response (401, 413, 415, 400 or 422).</returns>
    public async Task<BodyResult<SignedRequest<T>>> ReadAsync<T>(
        HttpRequest request, JsonTypeInfo<T> typeInfo, Func<T, Dictionary<string, string[]>> validate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var nodeId = request.Headers[NodeAuth.NodeIdHeader].ToString();
        var ts = request.Headers[NodeAuth.TimestampHeader].ToString();
        var signature = request.Headers[NodeAuth.SignatureHeader].ToString();

        var headerCheck = NodeAuth.CheckHeaders(nodeId, ts, signature, clock.GetUtcNow());
        if (headerCheck != NodeAuthResult.Ok)
        {
            if (headerCheck == NodeAuthResult.StaleTimestamp && Domain.Validation.ContractValidator.IsValidNodeId(nodeId)
                && await registry.GetTokenAsync(nodeId, cancellationToken) is not null)
            {
                await CountFailureAsync(nodeId, headerCheck, cancellationToken);
            }

            return Reject<T>(nodeId, headerCheck);
        }

        var raw = await JsonBody.ReadAsync(request, cancellationToken);
        if (raw.Error is not null)
        {
            return BodyResult<SignedRequest<T>>.Fail(raw.Error);
        }

        var token = Domain.Validation.ContractValidator.IsValidNodeId(nodeId)
            ? await registry.GetTokenAsync(nodeId, cancellationToken)
            : null;
        if (token is null)
        {
            return Reject<T>(nodeId, NodeAuthResult.UnknownNode);
        }

        var verified = NodeAuth.VerifySignature(token, raw.Value, ts, signature);
        if (verified != NodeAuthResult.Ok)
        {
            await CountFailureAsync(nodeId, verified, cancellationToken);
            return Reject<T>(nodeId, verified);
        }

        var parsed = JsonBody.ParseValid(raw.Value, typeInfo, validate);
        return parsed.Error is not null
            ? BodyResult<SignedRequest<T>>.Fail(parsed.Error)
            : BodyResult<SignedRequest<T>>.Ok(new SignedRequest<T>(nodeId, parsed.Value!));
    }

    private async Task CountFailureAsync(string nodeId, NodeAuthResult reason, CancellationToken ct)
    {
        if (failures.RecordFailure(nodeId, reason, clock.GetUtcNow()) is { } record)
        {
            LogThresholdCrossed(nodeId, record.Count, record.FirstFailureTime);
            await registry.RecordAuthFailuresAsync(nodeId, record, ct);
        }
    }

    private BodyResult<SignedRequest<T>> Reject<T>(string nodeId, NodeAuthResult reason)
    {
        // The id is attacker-controlled here: clip it and neutralise control characters before logging.
        var shown = new string(nodeId.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());
        LogRejected(shown, reason);
        metrics.HmacFailure(reason);
        return BodyResult<SignedRequest<T>>.Fail(Problems.Unauthorized(reason));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} crossed the HMAC failure threshold: {Count} failures since {Since:o}")]
    private partial void LogThresholdCrossed(string nodeId, int count, DateTimeOffset since);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected node request from '{NodeId}': {Reason}")]
    private partial void LogRejected(string nodeId, NodeAuthResult reason);
}
