using Microsoft.Extensions.Logging;

namespace Dgon.Agent.Link;

/// <summary>Log lines of the link, the executor and the local states (source-generated; one line per change).</summary>
internal static partial class LinkLog
{
    [LoggerMessage(EventId = 100, EventName = "state.transition", Level = LogLevel.Information, Message = "state.transition {From} -> {To} ({InFlight} in flight)")]
    public static partial void StateTransition(ILogger logger, string from, string to, int inFlight);

    [LoggerMessage(EventId = 101, EventName = "link.up", Level = LogLevel.Information, Message = "Link up: {Uri} welcomed node {NodeId} (replica {Replica}); manifest with {ModelCount} model(s) sent")]
    public static partial void LinkUp(ILogger logger, string uri, string nodeId, string replica, int modelCount);

    [LoggerMessage(EventId = 102, EventName = "link.down", Level = LogLevel.Warning, Message = "Link down: {Reason}; reconnecting in {DelayMs:0} ms")]
    public static partial void LinkDown(ILogger logger, string reason, double delayMs);

    [LoggerMessage(EventId = 103, EventName = "link.closed", Level = LogLevel.Information, Message = "Link closed: {Reason}")]
    public static partial void LinkClosed(ILogger logger, string reason);

    [LoggerMessage(EventId = 104, EventName = "link.manifest", Level = LogLevel.Information, Message = "Manifest re-sent: {ModelCount} model(s) ({Models})")]
    public static partial void ManifestSent(ILogger logger, int modelCount, string models);

    [LoggerMessage(EventId = 105, EventName = "link.waiting", Level = LogLevel.Debug, Message = "Link waits for the node's credentials (registration)")]
    public static partial void WaitingForCredentials(ILogger logger);

    [LoggerMessage(EventId = 110, EventName = "task.start", Level = LogLevel.Information, Message = "Task {TaskId} started: model {Model}, timeout {TimeoutSeconds} s")]
    public static partial void TaskStarted(ILogger logger, string taskId, string model, int timeoutSeconds);

    [LoggerMessage(EventId = 111, EventName = "task.result", Level = LogLevel.Information, Message = "Task {TaskId} done: {Chunks} chunk(s), tokens {TokensInput} in / {TokensOutput} out, ttft {TtftMs} ms, p95 gap {P95Ms} ms")]
    public static partial void TaskDone(ILogger logger, string taskId, int chunks, int tokensInput, int tokensOutput, long ttftMs, long p95Ms);

    [LoggerMessage(EventId = 112, EventName = "task.failure", Level = LogLevel.Warning, Message = "Task {TaskId} failed: {Code}: {Message} (before first chunk: {BeforeFirstChunk})")]
    public static partial void TaskFailed(ILogger logger, string taskId, string code, string message, bool beforeFirstChunk);

    [LoggerMessage(EventId = 113, EventName = "link.drain", Level = LogLevel.Information, Message = "Draining: no new work; waiting up to {Seconds} s for {InFlight} task(s)")]
    public static partial void Draining(ILogger logger, double seconds, int inFlight);

    [LoggerMessage(EventId = 114, EventName = "link.disabled", Level = LogLevel.Information, Message = "Coordinator link disabled (--no-link / DGON_LINK=off): heartbeats only, no work is dispatched to this node")]
    public static partial void Disabled(ILogger logger);

    [LoggerMessage(EventId = 115, EventName = "status.write_failed", Level = LogLevel.Warning, Message = "Could not write the status file {Path}: {Reason}")]
    public static partial void StatusWriteFailed(ILogger logger, string path, string reason);
}
