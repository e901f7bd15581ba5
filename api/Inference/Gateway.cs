using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dgon.Api.Accounts;
using Dgon.Api.Auth;
using Dgon.Domain.Accounts;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Microsoft.AspNetCore.Http.Features;

namespace Dgon.Api.Inference;

/// <summary>
/// The OpenAI-compatible gateway (issue 13): <c>GET /v1/models</c> and <c>POST /v1/chat/completions</c> over the
/// nodes' links.
/// <para>Authentication: <c>Authorization: Bearer</c> with a credential that has the <c>inference</c> scope (an API
/// key, a session or the admin token); none or a wrong one → 401 <c>invalid_api_key</c>, one without the scope → 403.
/// A request forwarded by another replica authenticates with <see cref="ReplicaSecret"/> instead.</para>
/// <para>Routing of a chat completion: the candidates are the nodes linked to this replica that are active (not
/// pending, offline or quarantined), whose manifest lists the model and that have a free slot (in-flight below
/// <c>max_parallel</c>), ordered by in-flight/capacity, then a match of the optional <c>X-DGON-Region</c> request
/// header, then reputation. A node that fails before its first chunk (an error, <c>busy</c>, a lost link) → the next
/// candidate (<c>failover</c>); after its first chunk → a streamed error chunk (<c>data: {"error": …}</c>, then
/// <c>data: [DONE]</c>), or 502 for a plain request. No local node lists the model but a node linked at another
/// replica does → the request is forwarded there (once; a forwarded request is never forwarded again). Every serving
/// node busy → wait up to <c>DGON_GATEWAY_QUEUE_SECONDS</c> for a slot, then 429 <c>Retry-After: 1</c>. No node
/// anywhere lists the model → 404 <c>model_not_found</c>. Past <c>DGON_GATEWAY_TIMEOUT_SECONDS</c> → <c>cancel</c>
/// to the node and 504 (or an error chunk). The client going away → <c>cancel</c> to the node.</para>
/// <para>Responses: <c>stream: true</c> → <c>text/event-stream</c>, each node chunk as <c>data: {json}</c> with its
/// <c>id</c> set to <c>chatcmpl-&lt;task id&gt;</c> (the usage-only chunk only when the client asked for
/// <c>stream_options.include_usage</c>), then <c>data: [DONE]</c>; otherwise one <c>chat.completion</c> object
/// assembled from the chunks (content, finish_reason, usage from the node's result).</para>
/// </summary>
public sealed partial class Gateway(
    LinkHub hub,
    INodeDirectory directory,
    RemoteLinks remote,
    KeyConcurrency keys,
    KeyTokenBudget tokenBudget,
    ReplicaSecret secret,
    InferenceOptions options,
    GatewayMetrics metrics,
    ReceiptRecorder receipts,
    IpBanList bans,
    ILogger<Gateway> logger)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    private static readonly HttpClient Forwarding = new(new SocketsHttpHandler
    {
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(5),
        AllowAutoRedirect = false,
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    private sealed record Caller(string? KeyId, string LimiterKey, bool Forwarded);

    /// <summary><c>GET /v1/models</c>: every model a routable node lists, here or at another replica (OpenAI list shape).</summary>
    public async Task ModelsAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (caller, refused) = await AuthenticateAsync(context);
        if (refused is not null)
        {
            await refused.ExecuteAsync(context);
            return;
        }

        var models = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void Add(CapabilityManifest manifest)
        {
            foreach (var model in manifest.Runtime.Models)
            {
                models[model.Id] = models.TryGetValue(model.Id, out var created) ? Math.Min(created, manifest.IssuedAt) : manifest.IssuedAt;
            }
        }

        foreach (var link in hub.Links.Where(l => Routable(l.NodeId)))
        {
            Add(link.Manifest);
        }

        if (!caller!.Forwarded)
        {
            foreach (var node in await remote.GetAsync(context.RequestAborted))
            {
                if (node.Manifest is { } manifest && Routable(node.NodeId))
                {
                    Add(manifest);
                }
            }
        }

        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body);
        writer.WriteStartObject();
        writer.WriteString("object", "list");
        writer.WriteStartArray("data");
        foreach (var (id, created) in models)
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            writer.WriteString("object", "model");
            writer.WriteNumber("created", created);
            writer.WriteString("owned_by", "dgon");
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary><c>POST /v1/chat/completions</c> (see the type's remarks).</summary>
    public async Task ChatCompletionsAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var started = Stopwatch.GetTimestamp();
        var result = await ChatAsync(context, started);
        metrics.Request(result, Stopwatch.GetElapsedTime(started));
    }

    private async Task<string> ChatAsync(HttpContext context, long started)
    {
        var (caller, refused) = await AuthenticateAsync(context);
        if (refused is not null)
        {
            await refused.ExecuteAsync(context);
            return "client_error";
        }

        var (body, document, bad) = await ReadBodyAsync(context);
        if (bad is not null)
        {
            await bad.ExecuteAsync(context);
            return "client_error";
        }

        using var _ = document;
        var request = document!.RootElement;
        var model = request.GetProperty("model").GetString()!;
        var stream = request.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        var includeUsage = request.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
            && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
        var region = context.Request.Headers[InferenceOptions.RegionHeader].ToString();

        using var slot = caller!.Forwarded ? null : keys.TryEnter(caller.LimiterKey);
        if (!caller.Forwarded && slot is null)
        {
            await OpenAiErrors.RateLimited($"this credential has {options.KeyConcurrency} chat completions in flight already (DGON_GATEWAY_KEY_CONCURRENCY)").ExecuteAsync(context);
            return "no_capacity";
        }

        // Tokens are charged where the request is served, so a forwarded request is checked at the serving replica.
        if (!tokenBudget.TryAdmit(caller.LimiterKey, out var tokenWait))
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(tokenWait.TotalSeconds));
            await OpenAiErrors.RateLimited($"this credential used its {options.KeyTokensPerMinute} tokens per minute (DGON_GATEWAY_KEY_TOKENS_PER_MINUTE); retry in {seconds} s", seconds).ExecuteAsync(context);
            return "no_capacity";
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(options.Timeout);
        var ct = deadline.Token;
        var tried = new HashSet<string>(StringComparer.Ordinal);
        var queueUntil = Stopwatch.GetTimestamp() + (long)(options.QueueWait.TotalSeconds * Stopwatch.Frequency);
        string? lastFailure = null;
        try
        {
            while (true)
            {
                var slotFreed = hub.SlotFreedAsync();
                var candidates = Candidates(model, region, tried);
                if (candidates.Count == 0)
                {
                    if (!hub.Links.Any(l => l.Serves(model) && !tried.Contains(l.NodeId) && Routable(l.NodeId)))
                    {
                        if (!caller.Forwarded && secret.Value is not null)
                        {
                            var remotes = (await remote.GetAsync(ct))
                                .Where(r => r.Manifest is { } m && m.Runtime.Models.Any(x => x.Id == model) && !tried.Contains(r.NodeId) && hub.Get(r.NodeId) is null && Routable(r.NodeId))
                                .ToList();
                            if (remotes.Count > 0)
                            {
                                metrics.Routing("forwarded");
                                return await ForwardAsync(context, remotes[Random.Shared.Next(remotes.Count)].Address, body!, caller.KeyId, region, ct);
                            }
                        }

                        if (tried.Count > 0)
                        {
                            await OpenAiErrors.Error(StatusCodes.Status502BadGateway, $"every node serving '{model}' failed before answering (last: {lastFailure})", "api_error", null, "upstream_error").ExecuteAsync(context);
                            return "upstream_error";
                        }

                        metrics.Routing("unknown_model");
                        await OpenAiErrors.ModelNotFound(model).ExecuteAsync(context);
                        return "client_error";
                    }

                    var wait = queueUntil - Stopwatch.GetTimestamp();
                    if (wait > 0)
                    {
                        await Task.WhenAny(slotFreed, Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), ct));
                        ct.ThrowIfCancellationRequested();
                        continue;
                    }

                    metrics.Routing("no_capacity");
                    await OpenAiErrors.RateLimited($"every node serving '{model}' is busy; retry shortly").ExecuteAsync(context);
                    return "no_capacity";
                }

                foreach (var link in candidates)
                {
                    var taskId = Guid.NewGuid().ToString("N");
                    var task = await hub.DispatchAsync(link, taskId, model, request, options.Timeout, ct);
                    if (task is null)
                    {
                        continue; // the slot went meanwhile, or the link closed
                    }

                    tried.Add(link.NodeId);
                    var outcome = await RunAsync(context, task, started, stream, includeUsage, caller.KeyId, caller.LimiterKey, ct);
                    if (outcome.Retry is { } failure)
                    {
                        metrics.Routing("failover");
                        lastFailure = failure;
                        LogFailover(link.NodeId, taskId, failure);
                        break;
                    }

                    metrics.Routing("routed");
                    return outcome.Result!;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            if (context.RequestAborted.IsCancellationRequested)
            {
                return "cancelled";
            }

            if (!context.Response.HasStarted)
            {
                await OpenAiErrors.Error(StatusCodes.Status504GatewayTimeout, $"no node answered within {options.Timeout.TotalSeconds:0} s", "api_error", null, "timeout").ExecuteAsync(context);
            }

            return "timeout";
        }
    }

    private readonly record struct Outcome(string? Result, string? Retry);

    // Runs one dispatched task to its end. Retry (a failure before the first chunk): nothing was written.
    private async Task<Outcome> RunAsync(HttpContext context, LinkTask task, long started, bool stream, bool includeUsage, string? keyId, string limiterKey, CancellationToken ct)
    {
        var reader = task.Messages.Reader;
        var text = new StringBuilder();
        string? finish = null;
        var firstSeen = false;
        var id = "chatcmpl-" + task.TaskId;
        try
        {
            while (true)
            {
                LinkMessage message;
                try
                {
                    message = await reader.ReadAsync(ct);
                }
                catch (System.Threading.Channels.ChannelClosedException)
                {
                    message = new FailureMessage(task.TaskId, "link_lost", "the task ended without a result", !firstSeen);
                }

                switch (message)
                {
                    case FailureMessage failure when !firstSeen && failure.BeforeFirstChunk:
                        hub.Finish(task);
                        return new(null, $"{failure.Code}: {failure.Message}");
                    case ChunkMessage chunk:
                        if (!firstSeen)
                        {
                            firstSeen = true;
                            metrics.FirstToken(Stopwatch.GetElapsedTime(started));
                            if (stream)
                            {
                                StartStream(context);
                            }
                        }

                        Accumulate(chunk.Chunk, text, ref finish);
                        if (stream && (includeUsage || !IsUsageOnly(chunk.Chunk)))
                        {
                            await WriteEventAsync(context, WithId(chunk.Chunk, id), ct);
                        }

                        break;
                    case ResultMessage done:
                        metrics.Tokens(done.PromptTokens, done.CompletionTokens);
                        tokenBudget.Charge(limiterKey, done.PromptTokens + done.CompletionTokens);

                        if (stream)
                        {
                            if (!firstSeen)
                            {
                                StartStream(context);
                            }

                            await context.Response.Body.WriteAsync(Done, ct);
                            await context.Response.Body.FlushAsync(ct);
                        }
                        else
                        {
                            await WriteCompletionAsync(context, id, task.Model, text.ToString(), done.FinishReason is { Length: > 0 } f ? f : finish ?? "stop", done, ct);
                        }

                        await context.Response.CompleteAsync();
                        await RecordReceiptAsync(context, task, done, text.ToString(), keyId);
                        return new("ok", null);
                    case FailureMessage late:
                        var error = OpenAiErrors.Json($"node failed mid-answer ({late.Code}): {late.Message}", "api_error", null, "upstream_error");
                        if (stream && firstSeen)
                        {
                            await WriteEventAsync(context, error, ct);
                            await context.Response.Body.WriteAsync(Done, ct);
                        }
                        else
                        {
                            await OpenAiErrors.Error(StatusCodes.Status502BadGateway, $"node failed mid-answer ({late.Code}): {late.Message}", "api_error", null, "upstream_error").ExecuteAsync(context);
                        }

                        return new("upstream_error", null);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await CancelAsync(task);
            if (!context.RequestAborted.IsCancellationRequested && stream && firstSeen)
            {
                // the deadline passed mid-stream: a clean error chunk, then the end
                using var tail = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await WriteEventAsync(context, OpenAiErrors.Json($"the request took longer than {options.Timeout.TotalSeconds:0} s", "api_error", null, "timeout"), tail.Token);
                await context.Response.Body.WriteAsync(Done, tail.Token);
                return new("timeout", null);
            }

            throw;
        }
        finally
        {
            hub.Finish(task);
        }
    }

    private async Task RecordReceiptAsync(HttpContext context, LinkTask task, ResultMessage done, string text, string? keyId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await receipts.RecordAsync(context.RequestServices, done, directory.Get(task.Link.NodeId)?.Region, task.TaskId, task.Link.NodeId, task.Model, text, keyId, timeout.Token);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or OperationCanceledException or InvalidOperationException)
        {
            LogReceiptFailed(task.TaskId, task.Link.NodeId, e.Message);
        }
    }

    private static async Task CancelAsync(LinkTask task)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await task.Link.SendAsync(new CancelMessage(task.TaskId), timeout.Token);
        }
        catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the link is gone: the node's work dies with it
        }
    }

    private List<NodeLink> Candidates(string model, string region, HashSet<string> tried)
    {
        var list = new List<(NodeLink Link, double Load, bool Region, double Reputation)>();
        foreach (var link in hub.Links)
        {
            if (link.Closed || tried.Contains(link.NodeId) || !link.Serves(model) || link.InFlight >= link.Capacity || link.State == "DRAINING")
            {
                continue;
            }

            if (directory.Get(link.NodeId) is not { Phase: NodePhase.Active } node)
            {
                continue;
            }

            list.Add((link, (double)link.InFlight / link.Capacity, region.Length > 0 && string.Equals(node.Region, region, StringComparison.Ordinal), node.Reputation));
        }

        return [.. list.OrderBy(c => c.Load).ThenByDescending(c => c.Region).ThenByDescending(c => c.Reputation).Select(c => c.Link)];
    }

    private bool Routable(string nodeId) => directory.Get(nodeId) is { Phase: NodePhase.Active };

    private async Task<(Caller? Caller, IResult? Refused)> AuthenticateAsync(HttpContext context)
    {
        var forwardedSecret = context.Request.Headers[InferenceOptions.ReplicaAuthHeader].ToString();
        if (forwardedSecret.Length > 0)
        {
            if (!secret.Matches(forwardedSecret))
            {
                await bans.RecordFailureAsync(context.Connection.RemoteIpAddress, context.RequestAborted);
                return (null, OpenAiErrors.Unauthorized(presented: true));
            }

            var forwardedKey = context.Request.Headers[InferenceOptions.ForwardedKeyHeader].ToString();
            return (new Caller(forwardedKey.Length > 0 ? forwardedKey : null, "", Forwarded: true), null);
        }

        var user = context.User;
        if (user.Identity?.IsAuthenticated != true)
        {
            var presented = BearerAuthenticationHandler.BearerToken(context.Request) is not null;
            if (presented)
            {
                await bans.RecordFailureAsync(context.Connection.RemoteIpAddress, context.RequestAborted);
            }

            return (null, OpenAiErrors.Unauthorized(presented));
        }

        if (!user.HasScope(Scopes.Inference))
        {
            return (null, OpenAiErrors.Forbidden());
        }

        var credentialId = user.FindFirst(AccessClaims.CredentialId)?.Value;
        var keyId = user.CredentialKind() == AccessClaims.ApiKeyCredential ? credentialId : null;
        return (new Caller(keyId, credentialId ?? user.ActorId() ?? "anonymous", Forwarded: false), null);
    }

    private static async Task<(byte[]? Body, JsonDocument? Document, IResult? Error)> ReadBodyAsync(HttpContext context)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = InferenceOptions.MaxRequestBodyBytes;
        }

        if (context.Request.ContentLength > InferenceOptions.MaxRequestBodyBytes)
        {
            return (null, null, OpenAiErrors.Error(StatusCodes.Status413PayloadTooLarge, $"request bodies are limited to {InferenceOptions.MaxRequestBodyBytes} bytes", "invalid_request_error"));
        }

        byte[] body;
        try
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            body = buffer.ToArray();
        }
        catch (BadHttpRequestException)
        {
            return (null, null, OpenAiErrors.Error(StatusCodes.Status413PayloadTooLarge, $"request bodies are limited to {InferenceOptions.MaxRequestBodyBytes} bytes", "invalid_request_error"));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            return (null, null, OpenAiErrors.InvalidRequest($"the body is not valid JSON: {e.Message}"));
        }

        var root = document.RootElement;
        string? problem = null;
        string? param = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            problem = "the body must be a JSON object";
        }
        else if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.String || model.GetString() is not { Length: > 0 and <= 256 })
        {
            (problem, param) = ("'model' is required: a string of 1 to 256 characters", "model");
        }
        else if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            (problem, param) = ("'messages' is required: a non-empty array", "messages");
        }
        else if (root.TryGetProperty("stream", out var stream) && stream.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
        {
            (problem, param) = ("'stream' must be a boolean", "stream");
        }

        if (problem is not null)
        {
            document.Dispose();
            return (null, null, OpenAiErrors.InvalidRequest(problem, param));
        }

        return (body, document, null);
    }

    private async Task<string> ForwardAsync(HttpContext context, string address, byte[] body, string? keyId, string region, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, address.TrimEnd('/') + "/v1/chat/completions") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation(InferenceOptions.ReplicaAuthHeader, secret.Value);
        request.Headers.TryAddWithoutValidation(InferenceOptions.ForwardedKeyHeader, keyId ?? "");
        if (region.Length > 0)
        {
            request.Headers.TryAddWithoutValidation(InferenceOptions.RegionHeader, region);
        }

        HttpResponseMessage response;
        try
        {
            response = await Forwarding.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e)
        {
            remote.Invalidate();
            LogForwardFailed(address, e.Message);
            await OpenAiErrors.Error(StatusCodes.Status502BadGateway, "the API replica holding the node's link is unreachable", "api_error", null, "upstream_error").ExecuteAsync(context);
            return "upstream_error";
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            context.Response.StatusCode = status;
            if (response.Content.Headers.ContentType is { } type)
            {
                context.Response.ContentType = type.ToString();
            }

            if (response.Headers.RetryAfter is { Delta: { } delta })
            {
                context.Response.Headers.RetryAfter = ((int)delta.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            if (response.Headers.WwwAuthenticate.Count > 0)
            {
                context.Response.Headers.WWWAuthenticate = response.Headers.WwwAuthenticate.ToString();
            }

            var streaming = response.Content.Headers.ContentType?.MediaType == "text/event-stream";
            if (streaming)
            {
                context.Response.Headers.CacheControl = "no-cache";
                context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            }

            await using var source = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await source.ReadAsync(buffer, ct)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), ct);
                if (streaming)
                {
                    await context.Response.Body.FlushAsync(ct);
                }
            }

            return status switch
            {
                < 400 => "ok",
                429 => "no_capacity",
                504 => "timeout",
                >= 500 => "upstream_error",
                _ => "client_error",
            };
        }
    }

    private static void StartStream(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    private static async Task WriteEventAsync(HttpContext context, byte[] json, CancellationToken ct)
    {
        var body = context.Response.Body;
        await body.WriteAsync(DataPrefix, ct);
        await body.WriteAsync(json, ct);
        await body.WriteAsync(EventEnd, ct);
        await body.FlushAsync(ct);
    }

    // The chunk with its id replaced (members kept in order).
    private static byte[] WithId(JsonElement chunk, string id)
    {
        if (chunk.ValueKind != JsonValueKind.Object)
        {
            return Encoding.UTF8.GetBytes(chunk.GetRawText());
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            foreach (var property in chunk.EnumerateObject())
            {
                if (property.NameEquals("id"))
                {
                    continue;
                }

                property.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static bool IsUsageOnly(JsonElement chunk) =>
        chunk.ValueKind == JsonValueKind.Object
        && chunk.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object
        && (!chunk.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0);

    private static void Accumulate(JsonElement chunk, StringBuilder text, ref string? finish)
    {
        if (chunk.ValueKind != JsonValueKind.Object || !chunk.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
        {
            return;
        }

        foreach (var choice in choices.EnumerateArray())
        {
            if (choice.ValueKind != JsonValueKind.Object || (choice.TryGetProperty("index", out var index) && index.ValueKind == JsonValueKind.Number && index.GetInt32() != 0))
            {
                continue;
            }

            if (choice.TryGetProperty("delta", out var delta) && delta.ValueKind == JsonValueKind.Object
                && delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
            {
                text.Append(content.GetString());
            }

            if (choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String)
            {
                finish = reason.GetString();
            }
        }
    }

    private static async Task WriteCompletionAsync(HttpContext context, string id, string model, string text, string finish, ResultMessage done, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            writer.WriteString("object", "chat.completion");
            writer.WriteNumber("created", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            writer.WriteString("model", model);
            writer.WriteStartArray("choices");
            writer.WriteStartObject();
            writer.WriteNumber("index", 0);
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            writer.WriteString("content", text);
            writer.WriteEndObject();
            writer.WriteNull("logprobs");
            writer.WriteString("finish_reason", finish);
            writer.WriteEndObject();
            writer.WriteEndArray();
            writer.WriteStartObject("usage");
            writer.WriteNumber("prompt_tokens", done.PromptTokens);
            writer.WriteNumber("completion_tokens", done.CompletionTokens);
            writer.WriteNumber("total_tokens", done.PromptTokens + done.CompletionTokens);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = buffer.Length;
        await context.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} failed task {TaskId} before its first chunk ({Failure}); trying the next node")]
    private partial void LogFailover(string nodeId, string taskId, string failure);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not store the receipt of task {TaskId} from node {NodeId}: {Error}")]
    private partial void LogReceiptFailed(string taskId, string nodeId, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Forwarding to the replica at {Address} failed: {Error}")]
    private partial void LogForwardFailed(string address, string error);
}
