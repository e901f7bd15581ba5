using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Domain.Contracts;
using Dgon.Domain.Receipts;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Dgon.Agent.Link;

/// <summary>
/// Runs dispatched chat completions on the local runtime (issue 13): <c>POST {runtime}/v1/chat/completions</c> with the
/// dispatch's request, <c>model</c> set to the dispatched model, <c>stream: true</c> and
/// <c>stream_options: {include_usage: true}</c>; every SSE <c>data:</c> object is forwarded as a <c>chunk</c> frame and
/// <c>data: [DONE]</c> ends the task with a <c>result</c> frame carrying the receipt signed with the node key
/// (<see cref="ExecutionReceipts"/>). At most <c>max_parallel</c> tasks run at once; a dispatch beyond that, a
/// duplicate task id or any dispatch while draining is answered <c>failure busy</c> (before_first_chunk true).
/// Failure codes: <c>unknown_model</c> (runtime 404), <c>runtime_unavailable</c> (no connection), <c>runtime_error</c>
/// (another status, a stream error object, a stream cut before <c>[DONE]</c>, a malformed dispatch), <c>cancelled</c>
/// (a <c>cancel</c> frame: the HTTP call to the runtime is aborted), <c>timeout</c> (<c>timeout_seconds</c> passed).
/// </summary>
public sealed class WorkExecutor
{
    /// <summary>Timeout when a dispatch carries none (≤ 0): 120 s, the gateway's default.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Largest error body read from the runtime: 4 KiB.</summary>
    private const int MaxErrorBytes = 4096;

    private readonly HttpClient _http;
    private readonly Uri _completions;
    private readonly string _nodeId;
    private readonly string _region;
    private readonly Key _key;
    private readonly int _maxParallel;
    private readonly AgentStatus _status;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Running> _running = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private int _inFlight;
    private volatile bool _draining;

    /// <summary>Creates the executor.</summary>
    /// <param name="http">HTTP client for the runtime; its own timeout should be infinite (each task has its own).</param>
    /// <param name="runtimeUrl">Runtime base URL (<c>--ollama-url</c>); the endpoint is <c>{runtimeUrl}/v1/chat/completions</c>.</param>
    /// <param name="nodeId">Node id (receipt <c>node_id</c>, proof).</param>
    /// <param name="region">Region (receipt <c>region</c>).</param>
    /// <param name="key">The node key that signs receipts.</param>
    /// <param name="maxParallel">Concurrency limit, ≥ 1.</param>
    /// <param name="status">The live state.</param>
    /// <param name="time">Clock for receipts and latencies.</param>
    /// <param name="logger">Logger.</param>
    public WorkExecutor(HttpClient http, Uri runtimeUrl, string nodeId, string region, Key key, int maxParallel, AgentStatus status, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(runtimeUrl);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxParallel, 1);
        (_http, _nodeId, _region, _key, _maxParallel, _status, _time, _logger) = (http, nodeId, region, key, maxParallel, status, time, logger);
        _completions = new Uri(runtimeUrl.AbsoluteUri.TrimEnd('/') + "/v1/chat/completions");
    }

    /// <summary>Tasks running now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Refuses every later dispatch with <c>busy</c> (draining).</summary>
    public void StopAccepting() => _draining = true;

    /// <summary>
    /// Starts a dispatched task, or answers <c>busy</c> at once. Never throws. Frames go through <paramref name="send"/>
    /// (which returns false when the link is gone); <paramref name="session"/> aborts the task when the link drops.
    /// </summary>
    public void Start(DispatchMessage dispatch, Func<LinkMessage, bool> send, CancellationToken session)
    {
        ArgumentNullException.ThrowIfNull(dispatch);
        ArgumentNullException.ThrowIfNull(send);
        string? refusal = null;
        lock (_gate)
        {
            if (_draining)
            {
                refusal = "the node is draining (stopping)";
            }
            else if (_inFlight >= _maxParallel)
            {
                refusal = $"the node runs {_inFlight} task(s), its limit (max_parallel {_maxParallel})";
            }
            else if (_running.ContainsKey(dispatch.TaskId))
            {
                refusal = $"task {dispatch.TaskId} is already running";
            }
            else
            {
                _inFlight++;
            }
        }

        if (refusal is not null)
        {
            send(new FailureMessage(dispatch.TaskId, "busy", refusal, BeforeFirstChunk: true));
            LinkLog.TaskFailed(_logger, LogText.Clean(dispatch.TaskId, 100)!, "busy", refusal, true);
            _status.TaskRefused();
            return;
        }

        var cancel = CancellationTokenSource.CreateLinkedTokenSource(session);
        var running = new Running(cancel);
        _running[dispatch.TaskId] = running;
        _status.TaskStarted(dispatch.TaskId, dispatch.Model);
        _ = Task.Run(() => RunAsync(dispatch, running, send, session), CancellationToken.None);
    }

    /// <summary>Cancels a running task (a <c>cancel</c> frame): its runtime call is aborted and it answers <c>failure cancelled</c>.</summary>
    /// <returns>Whether the task was running.</returns>
    public bool Cancel(string taskId)
    {
        if (_running.TryGetValue(taskId, out var running))
        {
            running.Cancelled = true;
            try
            {
                running.Cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // it just ended
            }

            return true;
        }

        return false;
    }

    /// <summary>Cancels every running task (end of the drain period).</summary>
    public void CancelAll()
    {
        foreach (var id in _running.Keys)
        {
            Cancel(id);
        }
    }

    /// <summary>Waits until no task runs, at most <paramref name="limit"/>.</summary>
    /// <returns>Whether none runs.</returns>
    public async Task<bool> WaitIdleAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + limit;
        while (InFlight > 0 && _time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken);
        }

        return InFlight == 0;
    }

    /// <summary>Nearest-rank 95th percentile of <paramref name="values"/> (ms), 0 when empty.</summary>
    public static long P95(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(0.95 * sorted.Length) - 1;
        return (long)Math.Round(sorted[Math.Clamp(rank, 0, sorted.Length - 1)]);
    }

    /// <summary>
    /// The body sent to the runtime: the dispatch's request with <c>model</c>, <c>stream: true</c> and
    /// <c>stream_options.include_usage: true</c> set (other members as given).
    /// </summary>
    /// <exception cref="FormatException">The request is not a JSON object or has no <c>messages</c> array.</exception>
    public static JsonObject RuntimeRequest(DispatchMessage dispatch)
    {
        ArgumentNullException.ThrowIfNull(dispatch);
        if (dispatch.Request.ValueKind != JsonValueKind.Object || JsonNode.Parse(dispatch.Request.GetRawText()) is not JsonObject body)
        {
            throw new FormatException("the dispatched request is not a JSON object");
        }

        if (body["messages"] is not JsonArray)
        {
            throw new FormatException("the dispatched request has no messages array");
        }

        body["model"] = dispatch.Model;
        body["stream"] = true;
        var options = body["stream_options"] as JsonObject ?? [];
        options["include_usage"] = true;
        body["stream_options"] = options;
        return body;
    }

    private async Task RunAsync(DispatchMessage dispatch, Running running, Func<LinkMessage, bool> send, CancellationToken session)
    {
        var taskId = dispatch.TaskId;
        var logId = LogText.Clean(taskId, 100)!;
        var timeoutSpan = dispatch.TimeoutSeconds > 0 ? TimeSpan.FromSeconds(dispatch.TimeoutSeconds) : DefaultTimeout;
        using var timeout = new CancellationTokenSource(timeoutSpan, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(running.Cancel.Token, timeout.Token);
        var ct = linked.Token;
        var chunks = 0;
        var succeeded = false;
        long tokensIn = 0, tokensOut = 0;

        bool Fail(string code, string message)
        {
            LinkLog.TaskFailed(_logger, logId, code, LogText.Clean(message, 500)!, chunks == 0);
            return send(new FailureMessage(taskId, code, message, chunks == 0));
        }

        try
        {
            LinkLog.TaskStarted(_logger, logId, LogText.Clean(dispatch.Model, 200)!, (int)timeoutSpan.TotalSeconds);
            JsonObject body;
            string promptHash;
            try
            {
                body = RuntimeRequest(dispatch);
                using var messages = JsonDocument.Parse(body["messages"]!.ToJsonString());
                promptHash = ExecutionReceipts.PromptHash(messages.RootElement);
            }
            catch (FormatException e)
            {
                Fail("runtime_error", e.Message);
                return;
            }

            var tsStart = _time.GetUtcNow().ToUnixTimeSeconds();
            var started = _time.GetTimestamp();
            using var request = new HttpRequestMessage(HttpMethod.Post, _completions)
            {
                Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
            };
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
            {
                var error = await ErrorTextAsync(response, ct);
                Fail(response.StatusCode == HttpStatusCode.NotFound ? "unknown_model" : "runtime_error",
                    $"the runtime answered HTTP {(int)response.StatusCode}{(error is null ? "" : ": " + error)}");
                return;
            }

            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var content = new StringBuilder();
            var gaps = new List<double>();
            double ttft = 0, last = 0;
            string? finish = null;
            int? usageIn = null, usageOut = null;
            var contentChunks = 0;
            var done = false;
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (!line.StartsWith("data:", StringComparison.Ordinal))
                {
                    continue;
                }

                var data = line[5..].Trim();
                if (data == "[DONE]")
                {
                    done = true;
                    break;
                }

                JsonElement chunk;
                try
                {
                    using var doc = JsonDocument.Parse(data);
                    chunk = doc.RootElement.Clone();
                }
                catch (JsonException e)
                {
                    Fail("runtime_error", $"the runtime sent a chunk that is not JSON ({LogText.Clean(e.Message, 200)})");
                    return;
                }

                if (chunk.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                if (chunk.TryGetProperty("error", out var streamError))
                {
                    Fail("runtime_error", "the runtime reported an error mid-stream: " + ErrorMessage(streamError));
                    return;
                }

                var at = _time.GetElapsedTime(started).TotalMilliseconds;
                if (chunks == 0)
                {
                    ttft = at;
                }
                else
                {
                    gaps.Add(at - last);
                }

                last = at;
                chunks++;
                if (chunk.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array)
                {
                    foreach (var choice in choices.EnumerateArray())
                    {
                        if (choice.ValueKind != JsonValueKind.Object)
                        {
                            continue;
                        }

                        if (choice.TryGetProperty("delta", out var delta) && delta.ValueKind == JsonValueKind.Object
                            && delta.TryGetProperty("content", out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } piece)
                        {
                            content.Append(piece);
                            contentChunks++;
                        }

                        if (choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String)
                        {
                            finish = reason.GetString();
                        }
                    }
                }

                if (chunk.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                {
                    usageIn = Int(usage, "prompt_tokens") ?? usageIn;
                    usageOut = Int(usage, "completion_tokens") ?? usageOut;
                }

                if (!send(new ChunkMessage(taskId, chunk)))
                {
                    return; // the link is gone: nobody can receive the rest
                }
            }

            if (!done)
            {
                Fail("runtime_error", $"the runtime's stream ended after {chunks} chunk(s) without data: [DONE]");
                return;
            }

            var promptTokens = usageIn ?? 0;
            var completionTokens = usageOut ?? contentChunks;
            var p95 = P95(gaps);
            var ttftMs = (long)Math.Round(ttft);
            var receipt = BuildReceipt(taskId, dispatch.Model, tsStart, _time.GetUtcNow().ToUnixTimeSeconds(), promptTokens, completionTokens, p95, ttftMs, promptHash,
                ExecutionReceipts.Proof(taskId, content.ToString(), _nodeId));
            (succeeded, tokensIn, tokensOut) = (true, promptTokens, completionTokens);
            send(new ResultMessage(taskId, finish ?? "stop", promptTokens, completionTokens, receipt));
            LinkLog.TaskDone(_logger, logId, chunks, promptTokens, completionTokens, ttftMs, p95);
        }
        catch (OperationCanceledException) when (running.Cancelled)
        {
            Fail("cancelled", "cancelled by the API; the runtime call was aborted");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Fail("timeout", $"no complete answer within {timeoutSpan.TotalSeconds:0} s; the runtime call was aborted");
        }
        catch (OperationCanceledException) when (session.IsCancellationRequested)
        {
            LinkLog.TaskFailed(_logger, logId, "link_lost", "the link dropped; the runtime call was aborted", chunks == 0);
        }
        catch (HttpRequestException e) when (chunks == 0 && e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            Fail("runtime_unavailable", $"the runtime at {_completions} is unreachable ({LogText.Clean(e.Message, 300)})");
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            Fail("runtime_error", $"the runtime's answer broke off ({LogText.Clean(e.Message, 300)})");
        }
        finally
        {
            _running.TryRemove(taskId, out _);
            running.Cancel.Dispose();
            lock (_gate)
            {
                _inFlight--;
            }

            _status.TaskEnded(taskId, succeeded, tokensIn, tokensOut);
        }
    }

    /// <summary>The receipt in seed 000's shape, signed (<see cref="ExecutionReceipts.Sign"/>) with the node key.</summary>
    private JsonElement BuildReceipt(string taskId, string model, long tsStart, long tsEnd, int tokensIn, int tokensOut, long p95, long ttft, string promptHash, string proof)
    {
        var payload = new JsonObject
        {
            ["version"] = "1.0",
            ["ts_start"] = tsStart,
            ["ts_end"] = tsEnd,
            ["tokens_input"] = tokensIn,
            ["tokens_output"] = tokensOut,
            ["p95_ms"] = p95,
            ["ttft_ms"] = ttft,
            ["prompt_hash"] = promptHash,
            ["proof"] = proof,
        };
        var receipt = new JsonObject
        {
            ["id"] = taskId,
            ["node_id"] = _nodeId,
            ["region"] = _region,
            ["model_id"] = model,
            ["payload"] = payload,
        };
        using (var unsigned = JsonDocument.Parse(receipt.ToJsonString()))
        {
            payload["signature"] = ExecutionReceipts.Sign(_key, unsigned.RootElement);
        }

        using var signed = JsonDocument.Parse(receipt.ToJsonString());
        return signed.RootElement.Clone();
    }

    private static int? Int(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n >= 0 ? n : null;

    private static string ErrorMessage(JsonElement error) =>
        LogText.Clean(error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String
            ? m.GetString()
            : error.ValueKind == JsonValueKind.String ? error.GetString() : error.GetRawText(), 500)!;

    private static async Task<string?> ErrorTextAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[MaxErrorBytes];
            var filled = 0;
            int read;
            while (filled < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(filled), ct)) > 0)
            {
                filled += read;
            }

            var text = Encoding.UTF8.GetString(buffer, 0, filled);
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error))
                {
                    return ErrorMessage(error);
                }
            }
            catch (JsonException)
            {
                // plain text
            }

            return text.Length == 0 ? null : LogText.Clean(text, 500);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return null;
        }
    }

    private sealed class Running(CancellationTokenSource cancel)
    {
        public CancellationTokenSource Cancel { get; } = cancel;

        public bool Cancelled { get; set; }
    }
}
