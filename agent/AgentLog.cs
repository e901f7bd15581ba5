using Microsoft.Extensions.Logging;

namespace Dgon.Agent;

/// <summary>
/// The agent's log lines (source-generated). One line per state change, never one per heartbeat. No secret appears,
/// not even in part: neither the node token nor the join token; the node key shows as its public fingerprint.
/// Server-provided text reaches these lines only through <see cref="LogText.Clean"/> (problems are cleaned when
/// parsed, <see cref="ApiProblem"/>).
/// </summary>
internal static partial class AgentLog
{
    [LoggerMessage(1, LogLevel.Information, "Agent starting: node {NodeId}, region {Region}, runtime {Runtime}, API {Api}, Ollama {OllamaUrl}, interval {IntervalSeconds} s, config {ConfigDir}, join token {JoinToken}, token rotation {Rotation}")]
    public static partial void Starting(ILogger logger, string nodeId, string region, string runtime, string api, string ollamaUrl, double intervalSeconds, string configDir, string joinToken, string rotation);

    [LoggerMessage(2, LogLevel.Information, "Registered node {NodeId} with key {KeyFingerprint}: token stored in {Path}")]
    public static partial void Registered(ILogger logger, string nodeId, string keyFingerprint, string path);

    [LoggerMessage(3, LogLevel.Information, "Token reused for node {NodeId} from {Path} (registered {RegisteredAt:O}, issued {IssuedAt:O})")]
    public static partial void TokenReused(ILogger logger, string nodeId, string path, DateTimeOffset registeredAt, DateTimeOffset issuedAt);

    [LoggerMessage(4, LogLevel.Warning, "Stored token not reused: {Reason}")]
    public static partial void StoredTokenIgnored(ILogger logger, string reason);

    [LoggerMessage(5, LogLevel.Warning, "API rejected the node token ({Problem}); re-registering, signed with node key {KeyFingerprint}")]
    public static partial void TokenRejected(ILogger logger, string problem, string keyFingerprint);

    [LoggerMessage(6, LogLevel.Information, "Re-registered node {NodeId} with key {KeyFingerprint}: new token stored in {Path}")]
    public static partial void ReRegistered(ILogger logger, string nodeId, string keyFingerprint, string path);

    [LoggerMessage(7, LogLevel.Information, "Runtime ready: {ModelCount} model(s), first {FirstModel}")]
    public static partial void RuntimeReady(ILogger logger, int modelCount, string firstModel);

    [LoggerMessage(8, LogLevel.Warning, "Runtime not ready: {Reason}")]
    public static partial void RuntimeNotReady(ILogger logger, string reason);

    [LoggerMessage(9, LogLevel.Warning, "API unreachable: {Reason}; retrying with backoff")]
    public static partial void ApiUnreachable(ILogger logger, string reason);

    [LoggerMessage(10, LogLevel.Information, "API reachable again")]
    public static partial void ApiReachableAgain(ILogger logger);

    [LoggerMessage(11, LogLevel.Information, "Phase changed to {Phase}")]
    public static partial void PhaseChanged(ILogger logger, string phase);

    [LoggerMessage(12, LogLevel.Error, "Clock skew: the API rejected the heartbeat timestamp as stale ({Problem}). Signed requests must be within 120 s of the server's time: fix this machine's clock (e.g. enable NTP). Retrying with backoff.")]
    public static partial void ClockSkew(ILogger logger, string problem);

    [LoggerMessage(13, LogLevel.Error, "API rejected the {Operation}: HTTP {Status} {Problem}; retrying with backoff")]
    public static partial void RequestRejected(ILogger logger, string operation, int status, string problem);

    [LoggerMessage(14, LogLevel.Critical, "Registration rejected by the API (HTTP {Status}): {Problem}. {Hint}")]
    public static partial void RegisterRejected(ILogger logger, int status, string problem, string hint);

    [LoggerMessage(15, LogLevel.Information, "Sample receipt {ReceiptId} posted for model {ModelId}: ok={Ok}")]
    public static partial void ReceiptPosted(ILogger logger, string receiptId, string modelId, bool ok);

    [LoggerMessage(16, LogLevel.Error, "Sample receipt {ReceiptId} not accepted: {Reason}")]
    public static partial void ReceiptFailed(ILogger logger, string receiptId, string reason);

    [LoggerMessage(17, LogLevel.Warning, "Sample receipt skipped: no model is listed by the runtime")]
    public static partial void ReceiptSkipped(ILogger logger);

    [LoggerMessage(31, LogLevel.Information, "Heartbeat interval {From} s -> {To} s: the API asks for {Asked} s (it stretches the interval as the fleet grows; never below --interval)")]
    public static partial void IntervalChanged(ILogger logger, double from, double to, int asked);

    [LoggerMessage(18, LogLevel.Information, "Stopping: signal received; exiting cleanly")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(19, LogLevel.Debug, "Retry {Attempt} in {DelayMs:0} ms after: {Reason}")]
    public static partial void RetryScheduled(ILogger logger, int attempt, double delayMs, string reason);

    [LoggerMessage(20, LogLevel.Warning, "No readiness probe exists for runtime {Runtime} yet: heartbeats report ready=false")]
    public static partial void NoProbeForRuntime(ILogger logger, string runtime);

    [LoggerMessage(21, LogLevel.Error, "Could not store the token in {Path}: {Reason}. Continuing with the token in memory; after a restart the agent re-registers with its key.")]
    public static partial void TokenSaveFailed(ILogger logger, string path, string reason);

    [LoggerMessage(22, LogLevel.Error, "Could not read the token file {Path}: {Reason}; registering instead")]
    public static partial void TokenLoadFailed(ILogger logger, string path, string reason);

    [LoggerMessage(23, LogLevel.Information, "API accepts requests again")]
    public static partial void RequestsAcceptedAgain(ILogger logger);

    [LoggerMessage(24, LogLevel.Information, "Node key {KeyFingerprint} generated and stored in {Path} (mode 0600)")]
    public static partial void KeyCreated(ILogger logger, string keyFingerprint, string path);

    [LoggerMessage(25, LogLevel.Information, "Node key {KeyFingerprint} loaded from {Path}")]
    public static partial void KeyLoaded(ILogger logger, string keyFingerprint, string path);

    [LoggerMessage(26, LogLevel.Critical, "Node key unusable: {Reason}")]
    public static partial void KeyUnusable(ILogger logger, string reason);

    [LoggerMessage(27, LogLevel.Warning, "The API does not know this node's key ({Problem}); enrolling again with the configured join token")]
    public static partial void EnrollingWithJoinToken(ILogger logger, string problem);

    [LoggerMessage(28, LogLevel.Information, "Rotated the node token of {NodeId}: new token stored in {Path}; the previous one stays valid until {PreviousValidUntil:O}")]
    public static partial void TokenRotated(ILogger logger, string nodeId, string path, DateTimeOffset previousValidUntil);

    [LoggerMessage(29, LogLevel.Warning, "Token rotation failed: {Reason}. {Hint} Keeping the current token; next attempt in {RetrySeconds:0} s.")]
    public static partial void TokenRotationFailed(ILogger logger, string reason, string hint, double retrySeconds);

    [LoggerMessage(32, LogLevel.Error, "The coordinator link stopped with an error: {Reason}")]
    public static partial void CompanionFailed(ILogger logger, string reason);

    [LoggerMessage(30, LogLevel.Warning, "The API refused the heartbeat timestamp as replayed ({Problem}); the next tick sends a later one")]
    public static partial void HeartbeatReplayed(ILogger logger, string problem);
}
