using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using Dgon.Api.Configuration;
using Dgon.Api.Observability;
using Dgon.Domain.Auth;
using Dgon.Domain.Ports;
using Dgon.Domain.Validation;

namespace Dgon.Api.Http;

/// <summary>A node request whose signature verified, with its parsed body.</summary>
/// <typeparam name="T">Body type.</typeparam>
/// <param name="NodeId">The authenticated X-Node-Id.</param>
/// <param name="Body">The parsed body.</param>
public sealed record SignedRequest<T>(string NodeId, T Body);

/// <summary>Whether a signed request takes part in the replay rule.</summary>
public enum ReplayRule
{
    /// <summary>Its <c>X-Node-Ts</c> must be later than the node's last accepted heartbeat or key-signed request (heartbeats).</summary>
    Clocked,

    /// <summary>Not clocked: idempotent by its own id (receipts).</summary>
    Idempotent,
}

/// <summary>Outcome of <see cref="SignedRequestReader.VerifyKeyProofAsync"/>.</summary>
public enum KeyProofResult
{
    /// <summary>The proof verified and the node's clock advanced.</summary>
    Ok,

    /// <summary>No <c>X-Node-Proof</c> header (or no X-Node-Id / X-Node-Ts).</summary>
    Missing,

    /// <summary>X-Node-Id is not the node the request is about.</summary>
    WrongNode,

    /// <summary>X-Node-Ts is not unix seconds or is off by more than 120 s.</summary>
    StaleTimestamp,

    /// <summary>The signature does not verify under the node's key.</summary>
    BadSignature,

    /// <summary>Valid, but its timestamp is not later than the node's clock.</summary>
    Replayed,
}

/// <summary>
/// Reads node requests (issue 9 on top of seed 000). In order, before any parsing:
/// <list type="number">
/// <item>Content-Type (JSON, else 415) and size (64 KiB, else 413);</item>
/// <item>headers present, <c>|now − ts| ≤ 120 s</c>, node known, MAC valid under one of its tokens (current, or the
/// previous one during a rotation overlap), v2 or — unless <c>DGON_ACCEPT_V1_SIGNATURES=false</c> — v1;</item>
/// <item>the node's own rate limit (only authenticated requests spend it);</item>
/// <item>for clocked requests (heartbeats) the replay rule: <c>X-Node-Ts</c> later than the node's last accepted one
/// (<see cref="INodeRequestClock"/>: in memory, claimed per node in PostgreSQL, see <see cref="Fleet.NodeRequestClock"/>).</item>
/// </list>
/// Failures a stranger can cause (missing headers, stale timestamp, unknown node, bad MAC) never touch the node: they
/// are counted per address and in <c>dgon_hmac_failures_total{reason}</c> and logged at most once a second; once an
/// address has spent its failure budget its failures are answered 429 instead of 401, while its valid requests pass. Only a
/// replay — a valid MAC, so evidence that needs the node's token — is counted against the node in
/// <see cref="AuthFailureWindow"/> and, past its threshold, recorded for quarantine.
/// </summary>
public sealed partial class SignedRequestReader(
    INodeRegistry registry,
    INodeRequestClock requestClock,
    AuthFailureWindow failures,
    NodeRequestLimits limits,
    DgonApiOptions options,
    ApiMetrics metrics,
    TimeProvider clock,
    ILogger<SignedRequestReader> logger)
{
    private static long s_lastRejectLog;
    private static long s_suppressed;

    /// <summary>Reads, authenticates, parses and validates the request.</summary>
    /// <param name="request">The HTTP request.</param>
    /// <param name="typeInfo">Body type metadata.</param>
    /// <param name="validate">Field rules; a non-empty error map becomes a 422 problem.</param>
    /// <param name="rule">Whether the replay rule applies.</param>
    /// <param name="cancellationToken">Request abort.</param>
    /// <returns>The request, or the problem response (429, 415, 413, 401, 400 or 422).</returns>
    public async Task<BodyResult<SignedRequest<T>>> ReadAsync<T>(
        HttpRequest request, JsonTypeInfo<T> typeInfo, Func<T, Dictionary<string, string[]>> validate, ReplayRule rule, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var address = NodeRequestLimits.ClientAddress(request.HttpContext);
        if (JsonBody.CheckContentType(request) is { } unsupported)
        {
            return BodyResult<SignedRequest<T>>.Fail(unsupported);
        }

        var nodeId = request.Headers[NodeAuth.NodeIdHeader].ToString();
        var ts = request.Headers[NodeAuth.TimestampHeader].ToString();
        var signature = request.Headers[NodeAuth.SignatureHeader].ToString();

        var headerCheck = NodeAuth.CheckHeaders(nodeId, ts, signature, clock.GetUtcNow());
        if (headerCheck != NodeAuthResult.Ok)
        {
            return BodyResult<SignedRequest<T>>.Fail(Reject(address, nodeId, headerCheck));
        }

        var raw = await JsonBody.ReadAsync(request, cancellationToken);
        if (raw.Error is not null)
        {
            return BodyResult<SignedRequest<T>>.Fail(raw.Error);
        }

        var authenticated = await AuthenticateAsync(request, address, nodeId, ts, signature, raw.Value, rule, cancellationToken);
        if (authenticated is not null)
        {
            return BodyResult<SignedRequest<T>>.Fail(authenticated);
        }

        var parsed = JsonBody.ParseValid(raw.Value, typeInfo, validate);
        return parsed.Error is not null
            ? BodyResult<SignedRequest<T>>.Fail(parsed.Error)
            : BodyResult<SignedRequest<T>>.Ok(new SignedRequest<T>(nodeId, parsed.Value!));
    }

    /// <summary>
    /// Authenticates a signed request without a body (issue 13: the link upgrade, <c>GET /v1/nodes/link</c>): the same
    /// checks as <see cref="ReadAsync"/> but no Content-Type rule and the MAC over an empty body.
    /// </summary>
    /// <param name="request">The HTTP request.</param>
    /// <param name="rule">Whether the replay rule applies.</param>
    /// <param name="cancellationToken">Request abort.</param>
    /// <returns>The authenticated node id, or the problem response (429 or 401).</returns>
    public async Task<BodyResult<string>> AuthenticateBodylessAsync(HttpRequest request, ReplayRule rule, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var address = NodeRequestLimits.ClientAddress(request.HttpContext);
        var nodeId = request.Headers[NodeAuth.NodeIdHeader].ToString();
        var ts = request.Headers[NodeAuth.TimestampHeader].ToString();
        var signature = request.Headers[NodeAuth.SignatureHeader].ToString();
        var headerCheck = NodeAuth.CheckHeaders(nodeId, ts, signature, clock.GetUtcNow());
        var error = headerCheck != NodeAuthResult.Ok
            ? Reject(address, nodeId, headerCheck)
            : await AuthenticateAsync(request, address, nodeId, ts, signature, ReadOnlyMemory<byte>.Empty, rule, cancellationToken);
        return error is null ? BodyResult<string>.Ok(nodeId) : BodyResult<string>.Fail(error);
    }

    // Credentials, MAC, the node's rate limit and (clocked) the replay rule; null when the request is authentic.
    private async Task<IResult?> AuthenticateAsync(HttpRequest request, string address, string nodeId, string ts, string signature, ReadOnlyMemory<byte> body, ReplayRule rule, CancellationToken cancellationToken)
    {
        var credentials = ContractValidator.IsValidNodeId(nodeId) ? await registry.GetCredentialsAsync(nodeId, cancellationToken) : null;
        if (credentials is null || (credentials.Tokens.Count == 0 && !credentials.SecretUnreadable))
        {
            return Reject(address, nodeId, NodeAuthResult.UnknownNode);
        }

        if (credentials.SecretUnreadable)
        {
            return Reject(address, nodeId, NodeAuthResult.SecretUnreadable);
        }

        var verified = NodeAuthResult.BadSignature;
        foreach (var token in credentials.Tokens)
        {
            verified = NodeAuth.Verify(token, request.Method, request.Path.Value ?? "", nodeId, body.Span, ts, signature, options.Trust.AcceptV1Signatures);
            if (verified == NodeAuthResult.Ok)
            {
                break;
            }
        }

        if (verified != NodeAuthResult.Ok)
        {
            return Reject(address, nodeId, verified);
        }

        if (limits.TryNodeRequest(nodeId) is { } nodeWait)
        {
            return Problems.RateLimited(nodeWait, $"node '{nodeId}' sends requests faster than its limit");
        }

        if (rule == ReplayRule.Clocked && !await requestClock.TryAdvanceAsync(nodeId, long.Parse(ts, CultureInfo.InvariantCulture), durable: false, cancellationToken))
        {
            await CountReplayAsync(nodeId, cancellationToken);
            return Reject(address: null, nodeId, NodeAuthResult.Replayed);
        }

        return null;
    }

    /// <summary>
    /// Verifies a key-signed request about <paramref name="nodeId"/> against its enrolled <paramref name="publicKey"/>
    /// (<see cref="NodeKeyProof"/>): headers present and naming the node, timestamp within 120 s, signature valid over
    /// the exact <paramref name="body"/>, and — last, so that only a valid proof moves it — the node's request clock
    /// advanced (a replayed proof is refused). A replay counts against the node like a replayed heartbeat.
    /// </summary>
    public async Task<KeyProofResult> VerifyKeyProofAsync(HttpRequest request, string nodeId, string publicKey, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var headerId = request.Headers[NodeAuth.NodeIdHeader].ToString();
        var ts = request.Headers[NodeAuth.TimestampHeader].ToString();
        var proof = request.Headers[NodeKeyProof.ProofHeader].ToString();
        if (NodeAuth.CheckHeaders(headerId, ts, proof, clock.GetUtcNow()) is var check && check == NodeAuthResult.MissingHeaders)
        {
            return KeyProofResult.Missing;
        }

        var address = NodeRequestLimits.ClientAddress(request.HttpContext);
        if (!string.Equals(headerId, nodeId, StringComparison.Ordinal))
        {
            limits.RecordFailure(address);
            return KeyProofResult.WrongNode;
        }

        if (check != NodeAuthResult.Ok)
        {
            limits.RecordFailure(address);
            return KeyProofResult.StaleTimestamp;
        }

        if (!NodeKeyProof.Verify(publicKey, proof, request.Method, request.Path.Value ?? "", nodeId, body.Span, ts))
        {
            limits.RecordFailure(address);
            metrics.HmacFailure(NodeAuthResult.BadSignature);
            return KeyProofResult.BadSignature;
        }

        if (!await requestClock.TryAdvanceAsync(nodeId, long.Parse(ts, CultureInfo.InvariantCulture), durable: true, cancellationToken))
        {
            metrics.HmacFailure(NodeAuthResult.Replayed);
            await CountReplayAsync(nodeId, cancellationToken);
            return KeyProofResult.Replayed;
        }

        return KeyProofResult.Ok;
    }

    private async Task CountReplayAsync(string nodeId, CancellationToken ct)
    {
        if (failures.RecordFailure(nodeId, NodeAuthResult.Replayed, clock.GetUtcNow()) is { } record)
        {
            LogThresholdCrossed(nodeId, record.Count, record.FirstFailureTime);
            await registry.RecordAuthFailuresAsync(nodeId, record, ct);
        }
    }

    private IResult Reject(string? address, string nodeId, NodeAuthResult reason)
    {
        metrics.HmacFailure(reason);
        if (address is not null)
        {
            // An address past its failure budget gets 429 for its failures, but its valid requests still pass: home
            // machines often share an address (CGNAT) with strangers, who must not be able to lock them out.
            if (limits.IsBlocked(address, out var wait))
            {
                return Problems.RateLimited(wait, "too many failed authentications from this address");
            }

            limits.RecordFailure(address);
        }

        // Throttled: a flood of bad requests must not become a flood of log lines. The id is attacker-controlled.
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        var last = Interlocked.Read(ref s_lastRejectLog);
        if (now > last && Interlocked.CompareExchange(ref s_lastRejectLog, now, last) == last)
        {
            LogRejected(Problems.Clip(nodeId), reason, address ?? "-", Interlocked.Exchange(ref s_suppressed, 0));
        }
        else
        {
            Interlocked.Increment(ref s_suppressed);
        }

        return Problems.Unauthorized(reason);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} crossed the replay threshold: {Count} replayed requests since {Since:o}")]
    private partial void LogThresholdCrossed(string nodeId, int count, DateTimeOffset since);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected node request for '{NodeId}' from {Address}: {Reason} ({Suppressed} more rejections since the last line)")]
    private partial void LogRejected(string nodeId, NodeAuthResult reason, string address, long suppressed);
}
