using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests.Support;

/// <summary>
/// A private stand-in for a model runtime on a real loopback port (Ollama <c>GET /api/tags</c> with size and
/// quantization, OpenAI <c>GET /v1/models</c>, <c>POST /v1/chat/completions</c> streaming SSE with
/// <c>stream_options.include_usage</c>). Behaviour by model name: <c>echo…</c> replies <c>echo: {last message}</c> one
/// word per chunk; <c>slow…</c> sends <see cref="SlowChunks"/> chunks <see cref="SlowDelay"/> apart; <c>fail…</c>
/// answers 500; <c>cut…</c> drops the stream after 2 chunks without [DONE]; anything else is 404 model_not_found.
/// Counts requests and aborted requests (the client went away: <see cref="HttpContext.RequestAborted"/>).
/// </summary>
public sealed class StubChatRuntime : IAsyncDisposable
{
    private readonly ConcurrentQueue<JsonObject> _bodies = new();
    private LoopbackServer _server = null!;
    private int _aborted;
    private int _completed;
    private volatile string[] _models = ["echo-1", "slow-1"];

    public Uri BaseAddress => _server.BaseAddress;

    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    public int SlowChunks { get; set; } = 300;

    public IReadOnlyList<JsonObject> Bodies => [.. _bodies];

    public int Aborted => Volatile.Read(ref _aborted);

    public int Completed => Volatile.Read(ref _completed);

    public void SetModels(params string[] models) => _models = models;

    public static async Task<StubChatRuntime> StartAsync()
    {
        var stub = new StubChatRuntime();
        stub._server = await LoopbackServer.StartAsync(app =>
        {
            app.MapGet("/api/tags", () => Results.Json(new
            {
                models = stub._models.Select(m => new { name = m, model = m, size = 4_661_224_676L, digest = new string('a', 64), details = new { format = "gguf", quantization_level = "Q4_K_M" } }).ToArray(),
            }));
            app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = stub._models.Select(m => new { id = m, @object = "model", owned_by = "stub" }).ToArray() }));
            app.MapPost("/v1/chat/completions", stub.CompleteAsync);
        });
        return stub;
    }

    /// <summary>The reply the echo model streams for a prompt, as the assembled text.</summary>
    public static string EchoReply(string lastMessage) => "echo: " + lastMessage;

    private async Task CompleteAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        var body = (JsonObject)(await JsonNode.ParseAsync(context.Request.Body, cancellationToken: ct))!;
        _bodies.Enqueue(body);
        var model = body["model"]?.GetValue<string>() ?? "";
        if (model.StartsWith("fail", StringComparison.Ordinal))
        {
            context.Response.StatusCode = 500;
            await context.Response.WriteAsJsonAsync(new { error = new { message = "the stub fails on purpose", type = "server_error" } }, ct);
            return;
        }

        if (!model.StartsWith("echo", StringComparison.Ordinal) && !model.StartsWith("slow", StringComparison.Ordinal) && !model.StartsWith("cut", StringComparison.Ordinal))
        {
            context.Response.StatusCode = 404;
            await context.Response.WriteAsJsonAsync(new { error = new { message = $"model '{model}' not found", type = "invalid_request_error", code = "model_not_found" } }, ct);
            return;
        }

        var messages = body["messages"]!.AsArray();
        var last = messages[^1]!["content"]!.GetValue<string>();
        var words = model.StartsWith("slow", StringComparison.Ordinal)
            ? Enumerable.Range(0, SlowChunks).Select(i => $"w{i} ").ToArray()
            : EchoReply(last).Split(' ').Select((w, i) => i == 0 ? w : " " + w).ToArray();
        context.Response.ContentType = "text/event-stream";
        try
        {
            var id = "chatcmpl-stub";
            for (var i = 0; i < words.Length; i++)
            {
                if (model.StartsWith("cut", StringComparison.Ordinal) && i == 2)
                {
                    await Task.Delay(500, ct); // let the client read the chunks sent (an abort can discard unread data)
                    context.Abort();
                    return;
                }

                await Send(context, new { id, @object = "chat.completion.chunk", model, choices = new[] { new { index = 0, delta = new { content = words[i] }, finish_reason = (string?)null } } }, ct);
                if (model.StartsWith("slow", StringComparison.Ordinal))
                {
                    await Task.Delay(SlowDelay, ct);
                }
            }

            await Send(context, new { id, @object = "chat.completion.chunk", model, choices = new[] { new { index = 0, delta = new { content = (string?)null }, finish_reason = (string?)"stop" } } }, ct);
            if (body["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
            {
                var promptTokens = messages.Sum(m => m!["content"]!.GetValue<string>().Split(' ').Length);
                await Send(context, new { id, @object = "chat.completion.chunk", model, choices = Array.Empty<object>(), usage = new { prompt_tokens = promptTokens, completion_tokens = words.Length, total_tokens = promptTokens + words.Length } }, ct);
            }

            await context.Response.WriteAsync("data: [DONE]\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
            Interlocked.Increment(ref _completed);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Interlocked.Increment(ref _aborted);
        }
        catch (IOException)
        {
            Interlocked.Increment(ref _aborted);
        }
    }

    private static async Task Send(HttpContext context, object chunk, CancellationToken ct)
    {
        await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk) + "\n\n", Encoding.UTF8, ct);
        await context.Response.Body.FlushAsync(ct);
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();
}
