using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Dgon.Testing;

/// <summary>
/// A model the <see cref="StubRuntime"/> serves: what <c>GET /api/tags</c> and <c>GET /v1/models</c> list about it,
/// and how chat completions for it behave. Immutable; <c>with</c> makes variants.
/// </summary>
public sealed record StubModel
{
    /// <summary>A plain echo model: 8 chunks, no delay, no failure.</summary>
    public static StubModel Echo { get; } = new();

    /// <summary>Content chunks per reply (≥ 1; default 8). A plain reply holds the same text in one message.</summary>
    public int Chunks { get; init; } = 8;

    /// <summary>
    /// Delay before each content chunk (default none). A plain (non-streamed) reply waits <see cref="Chunks"/> ×
    /// this before it answers, as a runtime generating the tokens would.
    /// </summary>
    public TimeSpan ChunkDelay { get; init; }

    /// <summary>Answer HTTP 500 with an OpenAI <c>server_error</c> before any byte of a reply (default false).</summary>
    public bool FailBeforeFirstByte { get; init; }

    /// <summary>
    /// When set (K ≥ 0): a streamed reply sends the SSE headers and K content chunks, waits
    /// <see cref="StubRuntime.DropGrace"/>, then aborts the connection (a reset; no finish chunk, no <c>[DONE]</c>); a plain reply waits K × <see cref="ChunkDelay"/> and aborts without a response.
    /// </summary>
    public int? FailAfterChunks { get; init; }

    /// <summary>Size in bytes listed by <c>/api/tags</c> (default 4,661,224,676: an 8B Q4_K_M GGUF).</summary>
    public long SizeBytes { get; init; } = 4_661_224_676L;

    /// <summary><c>details.quantization_level</c> in <c>/api/tags</c> (default <c>Q4_K_M</c>).</summary>
    public string QuantizationLevel { get; init; } = "Q4_K_M";

    /// <summary><c>details.parameter_size</c> in <c>/api/tags</c> (default <c>8.0B</c>).</summary>
    public string ParameterSize { get; init; } = "8.0B";

    /// <summary><c>details.family</c> in <c>/api/tags</c> (default <c>llama</c>).</summary>
    public string Family { get; init; } = "llama";
}

/// <summary>
/// A stand-in for a model runtime (no GPU in tests; see ../shared/PLATFORM.md): one Kestrel server on a loopback port
/// speaking Ollama's <c>GET /api/tags</c> and the OpenAI-compatible API that Ollama, vLLM, TGI and TensorRT-LLM serve:
/// <c>GET /v1/models</c> and <c>POST /v1/chat/completions</c>, plain (<c>chat.completion</c>) or <c>stream: true</c>
/// (server-sent events of <c>chat.completion.chunk</c> objects, each <c>data: {json}\n\n</c>, ending in
/// <c>data: [DONE]\n\n</c>; with <c>stream_options.include_usage</c> a last chunk with empty <c>choices</c> carries
/// <c>usage</c>, and every chunk before it has <c>"usage": null</c>, as OpenAI's API does).
/// <para>
/// Replies are deterministic (<see cref="Reply"/>): chunk i is the (i mod W)-th word of the last user message (W words;
/// "echo" when it has none), followed by a space except in the last chunk. <c>usage.prompt_tokens</c> is the number
/// of whitespace-separated words in every message's text, <c>completion_tokens</c> the number of content chunks.
/// </para>
/// <para>
/// Behaviours are chosen per model (<see cref="SetModel"/>) or per call, by words in the last user message (removed
/// from the echo): <c>stub:chunks=N</c>, <c>stub:delay-ms=N</c>, <c>stub:fail-before</c>, <c>stub:fail-after=K</c>
/// (see <see cref="StubModel"/>). A model not served → 404 <c>model_not_found</c>; a malformed request → 400
/// <c>invalid_request_error</c>; errors in OpenAI's shape <c>{"error":{"message","type","param","code"}}</c>.
/// </para>
/// A zero-delay reply costs a few microseconds of server work (no logging, no routing beyond three paths, JSON written
/// straight into Kestrel's pipe), so it can serve as the "direct" baseline of a gateway benchmark.
/// </summary>
public sealed class StubRuntime : IAsyncDisposable
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    /// <summary>How long a stream failing mid-way (<see cref="StubModel.FailAfterChunks"/>) waits after its last chunk before the connection is reset (1 s: an RST discards what the client has not read yet, so a loaded client needs time to read the chunks first).</summary>
    public static readonly TimeSpan DropGrace = TimeSpan.FromSeconds(1);

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, StubModel> _models = new(StringComparer.Ordinal);
    private long _requests;
    private long _completed;
    private long _aborted;
    private long _injected;
    private long _rejected;
    private long _tagsRequests;
    private long _modelsRequests;
    private long _ids;
    private int _inFlight;
    private int _maxInFlight;
    private volatile byte[]? _lastRequest;

    private StubRuntime(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    /// <summary>The stub's base URL, e.g. <c>http://127.0.0.1:41234/</c> (Ollama's base: <c>/api/tags</c> is below it).</summary>
    public Uri BaseAddress { get; }

    /// <summary>The OpenAI-compatible base, <c>{BaseAddress}v1/</c> (what the OpenAI SDK's <c>Endpoint</c> takes).</summary>
    public Uri OpenAIEndpoint => new(BaseAddress, "v1/");

    /// <summary>The models served, by name, in ordinal order.</summary>
    public IReadOnlyList<string> Models => [.. _models.Keys.Order(StringComparer.Ordinal)];

    /// <summary><c>POST /v1/chat/completions</c> requests received (every outcome).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Replies written to the end: a whole <c>chat.completion</c>, or a stream up to <c>data: [DONE]</c>.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Replies cut short because the client went away (<see cref="HttpContext.RequestAborted"/> fired while the stub was waiting or writing).</summary>
    public long AbortedByClient => Interlocked.Read(ref _aborted);

    /// <summary>Failures the stub injected (<see cref="StubModel.FailBeforeFirstByte"/>, <see cref="StubModel.FailAfterChunks"/>).</summary>
    public long InjectedFailures => Interlocked.Read(ref _injected);

    /// <summary>Requests answered 400 or 404 (malformed request, unknown model).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary><c>GET /api/tags</c> requests served.</summary>
    public long TagsRequests => Interlocked.Read(ref _tagsRequests);

    /// <summary><c>GET /v1/models</c> requests served.</summary>
    public long ModelsRequests => Interlocked.Read(ref _modelsRequests);

    /// <summary>Chat completions being served now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most chat completions served at once since the start (or <see cref="ResetCounters"/>).</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>The body of the last <c>POST /v1/chat/completions</c> as received (UTF-8 JSON), or null before the first.</summary>
    public string? LastRequestBody => _lastRequest is { } body ? Encoding.UTF8.GetString(body) : null;

    /// <summary>Starts the stub on 127.0.0.1:<paramref name="port"/> (a free one when null), serving <paramref name="models"/> as <see cref="StubModel.Echo"/>.</summary>
    /// <exception cref="IOException">The port could not be bound (after a few tries with free ports when <paramref name="port"/> is null).</exception>
    public static async Task<StubRuntime> StartAsync(int? port = null, params string[] models)
    {
        ArgumentNullException.ThrowIfNull(models);
        for (var attempt = 1; ; attempt++)
        {
            var p = port ?? FreePort.Next();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls($"http://127.0.0.1:{p}");
            builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
            var app = builder.Build();
            var stub = new StubRuntime(app, new Uri($"http://127.0.0.1:{p}/"));
            foreach (var name in models)
            {
                stub.SetModel(name);
            }

            app.MapGet("/api/tags", stub.TagsAsync);
            app.MapGet("/v1/models", stub.ModelListAsync);
            app.MapPost("/v1/chat/completions", stub.ChatAsync);
            try
            {
                await app.StartAsync();
                return stub;
            }
            catch (IOException) when (port is null && attempt < 5)
            {
                await app.DisposeAsync(); // another process took the free port in between
            }
        }
    }

    /// <summary>Serves <paramref name="name"/> (replacing its behaviour if served already); <paramref name="model"/> null means <see cref="StubModel.Echo"/>.</summary>
    /// <exception cref="ArgumentException">The name is empty, or <see cref="StubModel.Chunks"/> &lt; 1.</exception>
    public void SetModel(string name, StubModel? model = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        model ??= StubModel.Echo;
        if (model.Chunks < 1)
        {
            throw new ArgumentException("a reply has at least one chunk", nameof(model));
        }

        _models[name] = model;
    }

    /// <summary>Serves exactly <paramref name="names"/>, each as <see cref="StubModel.Echo"/> (none: Ollama's "no model loaded").</summary>
    public void SetModels(params string[] names)
    {
        ArgumentNullException.ThrowIfNull(names);
        _models.Clear();
        foreach (var name in names)
        {
            SetModel(name);
        }
    }

    /// <summary>Stops serving <paramref name="name"/> (later requests for it get 404 <c>model_not_found</c>).</summary>
    /// <returns>Whether it was served.</returns>
    public bool RemoveModel(string name) => _models.TryRemove(name, out _);

    /// <summary>Sets every counter, <see cref="MaxInFlight"/> and <see cref="LastRequestBody"/> back to zero / null.</summary>
    public void ResetCounters()
    {
        Interlocked.Exchange(ref _requests, 0);
        Interlocked.Exchange(ref _completed, 0);
        Interlocked.Exchange(ref _aborted, 0);
        Interlocked.Exchange(ref _injected, 0);
        Interlocked.Exchange(ref _rejected, 0);
        Interlocked.Exchange(ref _tagsRequests, 0);
        Interlocked.Exchange(ref _modelsRequests, 0);
        Volatile.Write(ref _maxInFlight, Volatile.Read(ref _inFlight));
        _lastRequest = null;
    }

    /// <summary>
    /// The content chunks the stub sends for a last user message of <paramref name="lastUserMessage"/> and
    /// <paramref name="chunks"/> chunks: chunk i = word (i mod W) + a space except in the last one. Words of the form
    /// <c>stub:…</c> are directives, not echoed.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="chunks"/> &lt; 1.</exception>
    public static IReadOnlyList<string> Reply(string lastUserMessage, int chunks)
    {
        ArgumentNullException.ThrowIfNull(lastUserMessage);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 1);
        var words = EchoWords(lastUserMessage);
        var result = new string[chunks];
        for (var i = 0; i < chunks; i++)
        {
            result[i] = i < chunks - 1 ? words[i % words.Length] + " " : words[i % words.Length];
        }

        return result;
    }

    /// <summary>The whole reply text (the chunks of <see cref="Reply"/> concatenated): what a plain reply's <c>message.content</c> holds.</summary>
    public static string ReplyText(string lastUserMessage, int chunks) => string.Concat(Reply(lastUserMessage, chunks));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static string[] EchoWords(string text)
    {
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (text.Contains("stub:", StringComparison.Ordinal))
        {
            words = [.. words.Where(w => !w.StartsWith("stub:", StringComparison.Ordinal))];
        }

        return words.Length == 0 ? ["echo"] : words;
    }

    private Task TagsAsync(HttpContext context)
    {
        Interlocked.Increment(ref _tagsRequests);
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("models");
            foreach (var name in Models)
            {
                if (!_models.TryGetValue(name, out var m))
                {
                    continue;
                }

                json.WriteStartObject();
                json.WriteString("name", name);
                json.WriteString("model", name);
                json.WriteString("modified_at", "2026-11-01T10:00:00Z");
                json.WriteNumber("size", m.SizeBytes);
                json.WriteString("digest", Digest(name));
                json.WriteStartObject("details");
                json.WriteString("parent_model", "");
                json.WriteString("format", "gguf");
                json.WriteString("family", m.Family);
                json.WriteStartArray("families");
                json.WriteStringValue(m.Family);
                json.WriteEndArray();
                json.WriteString("parameter_size", m.ParameterSize);
                json.WriteString("quantization_level", m.QuantizationLevel);
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return WriteJsonAsync(context, StatusCodes.Status200OK, buffer);
    }

    private Task ModelListAsync(HttpContext context)
    {
        Interlocked.Increment(ref _modelsRequests);
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var name in Models)
            {
                json.WriteStartObject();
                json.WriteString("id", name);
                json.WriteString("object", "model");
                json.WriteNumber("created", 1_793_527_200); // 2026-11-01T10:00:00Z, the same as /api/tags' modified_at
                json.WriteString("owned_by", "library");
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return WriteJsonAsync(context, StatusCodes.Status200OK, buffer);
    }

    private async Task ChatAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        var now = Interlocked.Increment(ref _inFlight);
        for (var max = Volatile.Read(ref _maxInFlight); now > max && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max; max = Volatile.Read(ref _maxInFlight))
        {
        }

        var aborted = context.RequestAborted;
        try
        {
            var body = await ReadBodyAsync(context.Request.BodyReader, aborted);
            _lastRequest = body;
            if (!ChatRequest.TryParse(body, out var request, out var error))
            {
                Interlocked.Increment(ref _rejected);
                await WriteErrorAsync(context, StatusCodes.Status400BadRequest, error.Message, "invalid_request_error", error.Param, null);
                return;
            }

            if (!_models.TryGetValue(request.Model, out var model))
            {
                Interlocked.Increment(ref _rejected);
                await WriteErrorAsync(
                    context, StatusCodes.Status404NotFound, $"The model `{request.Model}` does not exist or you do not have access to it.",
                    "invalid_request_error", null, "model_not_found");
                return;
            }

            if (!ApplyDirectives(model, request.LastUserMessage, out model, out var directiveError))
            {
                Interlocked.Increment(ref _rejected);
                await WriteErrorAsync(context, StatusCodes.Status400BadRequest, directiveError, "invalid_request_error", "messages", null);
                return;
            }

            if (model.FailBeforeFirstByte)
            {
                Interlocked.Increment(ref _injected);
                await WriteErrorAsync(
                    context, StatusCodes.Status500InternalServerError, "The server had an error while processing your request (stub runtime: injected failure before the first byte).",
                    "server_error", null, null);
                return;
            }

            var reply = Reply(request.LastUserMessage, model.Chunks);
            var id = "chatcmpl-stub" + Interlocked.Increment(ref _ids).ToString("x8", CultureInfo.InvariantCulture);
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var usage = new Usage(request.PromptWords, reply.Count);
            var done = request.Stream
                ? await StreamAsync(context, request, model, reply, id, created, usage)
                : await PlainAsync(context, request, model, reply, id, created, usage);
            if (done)
            {
                Interlocked.Increment(ref _completed);
            }
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException or ConnectionAbortedException)
        {
            Interlocked.Increment(ref _aborted);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task<bool> PlainAsync(HttpContext context, ChatRequest request, StubModel model, IReadOnlyList<string> reply, string id, long created, Usage usage)
    {
        var waitChunks = model.FailAfterChunks is { } k ? Math.Min(k, reply.Count) : reply.Count;
        if (model.ChunkDelay > TimeSpan.Zero && waitChunks > 0)
        {
            await Task.Delay(model.ChunkDelay * waitChunks, context.RequestAborted);
        }

        if (model.FailAfterChunks is not null)
        {
            Interlocked.Increment(ref _injected);
            context.Abort();
            return false;
        }

        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "chat.completion");
            json.WriteNumber("created", created);
            json.WriteString("model", request.Model);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", string.Concat(reply));
            json.WriteNull("refusal");
            json.WriteEndObject();
            json.WriteNull("logprobs");
            json.WriteString("finish_reason", "stop");
            json.WriteEndObject();
            json.WriteEndArray();
            usage.Write(json);
            json.WriteString("system_fingerprint", "fp_dgon_stub");
            json.WriteEndObject();
        }

        await WriteJsonAsync(context, StatusCodes.Status200OK, buffer);
        return !context.RequestAborted.IsCancellationRequested;
    }

    private async Task<bool> StreamAsync(HttpContext context, ChatRequest request, StubModel model, IReadOnlyList<string> reply, string id, long created, Usage usage)
    {
        var aborted = context.RequestAborted;
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await response.StartAsync(aborted);
        var pipe = response.BodyWriter;
        using var json = new Utf8JsonWriter(pipe);
        for (var i = 0; i < reply.Count; i++)
        {
            if (model.ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(model.ChunkDelay, aborted);
            }

            if (model.FailAfterChunks == i)
            {
                return await DropAsync(context);
            }

            WriteChunk(pipe, json, request, id, created, i == 0, reply[i], null);
            if (!await FlushAsync(pipe, aborted))
            {
                Interlocked.Increment(ref _aborted); // the client completed the pipe: it went away
                return false;
            }
        }

        if (model.FailAfterChunks >= reply.Count)
        {
            return await DropAsync(context); // every content chunk sent, but no finish_reason and no [DONE]
        }

        WriteChunk(pipe, json, request, id, created, false, null, "stop");
        if (request.IncludeUsage)
        {
            pipe.Write(DataPrefix);
            json.Reset(pipe);
            json.WriteStartObject();
            ChunkHeader(json, request, id, created);
            json.WriteStartArray("choices");
            json.WriteEndArray();
            usage.Write(json);
            json.WriteEndObject();
            json.Flush();
            pipe.Write(EventEnd);
        }

        pipe.Write(Done);
        if (!await FlushAsync(pipe, aborted))
        {
            Interlocked.Increment(ref _aborted);
            return false;
        }

        return true;
    }

    // Kestrel discards output not yet on the socket when a connection is aborted, so the chunks already flushed get a
    // moment to leave before the reset: the client must see exactly K chunks, then the broken connection.
    private async Task<bool> DropAsync(HttpContext context)
    {
        Interlocked.Increment(ref _injected);
        await Task.Delay(DropGrace, context.RequestAborted);
        context.Abort();
        return false;
    }

    private static void WriteChunk(PipeWriter pipe, Utf8JsonWriter json, ChatRequest request, string id, long created, bool first, string? content, string? finish)
    {
        pipe.Write(DataPrefix);
        json.Reset(pipe);
        json.WriteStartObject();
        ChunkHeader(json, request, id, created);
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        json.WriteStartObject("delta");
        if (first)
        {
            json.WriteString("role", "assistant");
        }

        if (content is not null)
        {
            json.WriteString("content", content);
        }

        json.WriteEndObject();
        json.WriteNull("logprobs");
        if (finish is null)
        {
            json.WriteNull("finish_reason");
        }
        else
        {
            json.WriteString("finish_reason", finish);
        }

        json.WriteEndObject();
        json.WriteEndArray();
        if (request.IncludeUsage)
        {
            json.WriteNull("usage");
        }

        json.WriteEndObject();
        json.Flush();
        pipe.Write(EventEnd);
    }

    private static void ChunkHeader(Utf8JsonWriter json, ChatRequest request, string id, long created)
    {
        json.WriteString("id", id);
        json.WriteString("object", "chat.completion.chunk");
        json.WriteNumber("created", created);
        json.WriteString("model", request.Model);
        json.WriteString("system_fingerprint", "fp_dgon_stub");
    }

    private static async ValueTask<bool> FlushAsync(PipeWriter pipe, CancellationToken aborted)
    {
        var result = await pipe.FlushAsync(aborted);
        return !result.IsCompleted && !result.IsCanceled;
    }

    private static bool ApplyDirectives(StubModel model, string text, out StubModel applied, out string error)
    {
        applied = model;
        error = "";
        if (!text.Contains("stub:", StringComparison.Ordinal))
        {
            return true;
        }

        foreach (var word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            if (!word.StartsWith("stub:", StringComparison.Ordinal))
            {
                continue;
            }

            var eq = word.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? word[5..] : word[5..eq];
            var hasNumber = int.TryParse(eq < 0 ? "" : word[(eq + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var n);
            switch (key)
            {
                case "chunks" when hasNumber && n >= 1: applied = applied with { Chunks = n }; break;
                case "delay-ms" when hasNumber: applied = applied with { ChunkDelay = TimeSpan.FromMilliseconds(n) }; break;
                case "fail-after" when hasNumber: applied = applied with { FailAfterChunks = n }; break;
                case "fail-before" when eq < 0: applied = applied with { FailBeforeFirstByte = true }; break;
                default:
                    error = $"unknown stub directive '{word}' (stub:chunks=N≥1, stub:delay-ms=N, stub:fail-before, stub:fail-after=K)";
                    return false;
            }
        }

        return true;
    }

    private static async Task<byte[]> ReadBodyAsync(PipeReader reader, CancellationToken ct)
    {
        while (true)
        {
            var read = await reader.ReadAsync(ct);
            if (read.IsCompleted || read.IsCanceled)
            {
                var bytes = read.Buffer.ToArray();
                reader.AdvanceTo(read.Buffer.End);
                return bytes;
            }

            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static Task WriteJsonAsync(HttpContext context, int status, ArrayBufferWriter<byte> body)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = body.WrittenCount;
        return response.Body.WriteAsync(body.WrittenMemory, context.RequestAborted).AsTask();
    }

    private static Task WriteErrorAsync(HttpContext context, int status, string message, string type, string? param, string? code)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", type);
            WriteStringOrNull(json, "param", param);
            WriteStringOrNull(json, "code", code);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return WriteJsonAsync(context, status, buffer);
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static string Digest(string name)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(name));
        return Convert.ToHexStringLower(hash);
    }

    private readonly record struct Usage(int Prompt, int Completion)
    {
        public void Write(Utf8JsonWriter json)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", Prompt);
            json.WriteNumber("completion_tokens", Completion);
            json.WriteNumber("total_tokens", Prompt + Completion);
            json.WriteEndObject();
        }
    }

    private readonly record struct RequestError(string Message, string? Param);

    /// <summary>The parts of an OpenAI chat completion request the stub reads.</summary>
    private sealed record ChatRequest(string Model, bool Stream, bool IncludeUsage, string LastUserMessage, int PromptWords)
    {
        public static bool TryParse(byte[] body, out ChatRequest request, out RequestError error)
        {
            request = null!;
            error = default;
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(body);
            }
            catch (JsonException e)
            {
                error = new RequestError($"We could not parse the JSON body of your request. ({e.Message})", null);
                return false;
            }

            using (document)
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                {
                    error = new RequestError("The request body must be a JSON object.", null);
                    return false;
                }

                if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.String || model.GetString() is not { Length: > 0 } name)
                {
                    error = new RequestError("you must provide a model parameter", "model");
                    return false;
                }

                var stream = false;
                if (root.TryGetProperty("stream", out var s) && s.ValueKind != JsonValueKind.Null)
                {
                    if (s.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    {
                        error = new RequestError("'stream' must be a boolean.", "stream");
                        return false;
                    }

                    stream = s.GetBoolean();
                }

                var includeUsage = stream && root.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object
                    && options.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
                if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
                {
                    error = new RequestError("'messages' must be a non-empty array.", "messages");
                    return false;
                }

                var last = "";
                var words = 0;
                foreach (var message in messages.EnumerateArray())
                {
                    if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                    {
                        error = new RequestError("Each message must be an object with a string 'role'.", "messages");
                        return false;
                    }

                    var text = Text(message);
                    words += text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
                    if (role.ValueEquals("user"u8))
                    {
                        last = text;
                    }
                }

                request = new ChatRequest(name, stream, includeUsage, last, words);
                return true;
            }
        }

        // content: a string, an array of parts ({"type":"text","text":…} count; images etc. do not), or null.
        private static string Text(JsonElement message)
        {
            if (!message.TryGetProperty("content", out var content))
            {
                return "";
            }

            if (content.ValueKind == JsonValueKind.String)
            {
                return content.GetString()!;
            }

            if (content.ValueKind != JsonValueKind.Array)
            {
                return "";
            }

            var parts = new StringBuilder();
            foreach (var part in content.EnumerateArray())
            {
                if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                {
                    parts.Append(parts.Length > 0 ? " " : "").Append(t.GetString());
                }
            }

            return parts.ToString();
        }
    }
}
