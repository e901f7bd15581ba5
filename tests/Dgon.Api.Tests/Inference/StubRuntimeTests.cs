using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Dgon.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// The runtime stub (tests/Dgon.Testing/StubRuntime.cs) over real HTTP on loopback: Ollama's tags, OpenAI's model list,
/// plain and streamed chat completions in OpenAI's shapes (raw and through the official OpenAI .NET SDK), and each
/// injected behaviour — slow, failing before the first byte, failing mid-stream, unknown model — with its counters.
/// </summary>
public sealed class StubRuntimeTests : IAsyncLifetime
{
    private const string Prompt = "the quick brown fox";
    private StubRuntime _stub = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _stub = await StubRuntime.StartAsync(null, "echo-8b");
        _http = new HttpClient { BaseAddress = _stub.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _stub.DisposeAsync();
    }

    [Fact]
    public async Task Tags_list_each_model_with_size_and_quantization_like_ollama()
    {
        _stub.SetModel("qwen-0.5b", StubModel.Echo with { SizeBytes = 397_821_319, QuantizationLevel = "Q8_0", ParameterSize = "494M", Family = "qwen2" });

        using var tags = JsonDocument.Parse(await _http.GetStringAsync(new Uri("/api/tags", UriKind.Relative)));

        var models = tags.RootElement.GetProperty("models").EnumerateArray().ToList();
        Assert.Equal(["echo-8b", "qwen-0.5b"], models.Select(m => m.GetProperty("name").GetString()));
        var qwen = models[1];
        Assert.Equal("qwen-0.5b", qwen.GetProperty("model").GetString());
        Assert.Equal(397_821_319, qwen.GetProperty("size").GetInt64());
        Assert.Matches("^[0-9a-f]{64}$", qwen.GetProperty("digest").GetString());
        Assert.Equal("Q8_0", qwen.GetProperty("details").GetProperty("quantization_level").GetString());
        Assert.Equal("494M", qwen.GetProperty("details").GetProperty("parameter_size").GetString());
        Assert.Equal("qwen2", qwen.GetProperty("details").GetProperty("family").GetString());
        Assert.Equal("Q4_K_M", models[0].GetProperty("details").GetProperty("quantization_level").GetString());
        Assert.Equal(1, _stub.TagsRequests);

        _stub.SetModels();
        using var empty = JsonDocument.Parse(await _http.GetStringAsync(new Uri("/api/tags", UriKind.Relative)));
        Assert.Equal(0, empty.RootElement.GetProperty("models").GetArrayLength());
    }

    [Fact]
    public async Task Models_are_listed_in_openai_shape()
    {
        using var list = JsonDocument.Parse(await _http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)));

        Assert.Equal("list", list.RootElement.GetProperty("object").GetString());
        var model = Assert.Single(list.RootElement.GetProperty("data").EnumerateArray());
        Assert.Equal("echo-8b", model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.True(model.GetProperty("created").GetInt64() > 0);
        Assert.Equal(JsonValueKind.String, model.GetProperty("owned_by").ValueKind);
        Assert.Equal(1, _stub.ModelsRequests);
    }

    [Fact]
    public async Task A_plain_completion_echoes_the_last_user_message_as_a_chat_completion()
    {
        using var response = await PostAsync(Body("echo-8b", stream: false, messages: """[{"role":"system","content":"be brief"},{"role":"user","content":"ignored earlier turn"},{"role":"user","content":"the quick brown fox"}]"""));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        var root = json.RootElement;
        Assert.StartsWith("chatcmpl-", root.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        Assert.Equal("echo-8b", root.GetProperty("model").GetString());
        var choice = Assert.Single(root.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("the quick brown fox the quick brown fox", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(StubRuntime.ReplyText(Prompt, 8), choice.GetProperty("message").GetProperty("content").GetString());
        var usage = root.GetProperty("usage");
        Assert.Equal(2 + 3 + 4, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(8, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(17, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal((1, 1, 0), (_stub.Requests, _stub.Completed, _stub.AbortedByClient));
        Assert.Contains("ignored earlier turn", _stub.LastRequestBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_sends_chunks_then_the_usage_chunk_then_done()
    {
        var events = await StreamEventsAsync(Body("echo-8b", stream: true, includeUsage: true));

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(8 + 2, chunks.Count); // 8 content chunks, the finish chunk, the usage chunk
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.All(chunks, c => Assert.Equal("echo-8b", c.GetProperty("model").GetString()));
        var deltas = chunks[..8].Select(c => Assert.Single(c.GetProperty("choices").EnumerateArray()).GetProperty("delta")).ToList();
        Assert.Equal("assistant", deltas[0].GetProperty("role").GetString());
        Assert.False(deltas[1].TryGetProperty("role", out _));
        Assert.Equal(StubRuntime.Reply(Prompt, 8), deltas.Select(d => d.GetProperty("content").GetString()));
        Assert.All(chunks[..9], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
        var finish = Assert.Single(chunks[8].GetProperty("choices").EnumerateArray());
        Assert.Equal("stop", finish.GetProperty("finish_reason").GetString());
        Assert.False(finish.GetProperty("delta").TryGetProperty("content", out _));
        Assert.Equal(0, chunks[9].GetProperty("choices").GetArrayLength());
        Assert.Equal(4, chunks[9].GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(8, chunks[9].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(1, _stub.Completed);
    }

    [Fact]
    public async Task A_stream_without_include_usage_has_no_usage_at_all()
    {
        _stub.SetModel("three", StubModel.Echo with { Chunks = 3 });

        var events = await StreamEventsAsync(Body("three", stream: true));

        Assert.Equal(3 + 1 + 1, events.Count);
        Assert.Equal("[DONE]", events[^1]);
        Assert.All(events[..^1], e => Assert.False(JsonDocument.Parse(e).RootElement.TryGetProperty("usage", out _)));
    }

    [Fact]
    public async Task An_unknown_model_is_404_model_not_found_in_openai_shape()
    {
        using var response = await PostAsync(Body("no-such-model", stream: true));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = await ErrorAsync(response);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("no-such-model", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Equal((1, 0, 1), (_stub.Requests, _stub.Completed, _stub.Rejected));
    }

    [Theory]
    [InlineData("not json", null)]
    [InlineData("[]", null)]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model")]
    [InlineData("""{"model":"echo-8b","messages":[]}""", "messages")]
    [InlineData("""{"model":"echo-8b","messages":[{"content":"no role"}]}""", "messages")]
    [InlineData("""{"model":"echo-8b","stream":"yes","messages":[{"role":"user","content":"hi"}]}""", "stream")]
    [InlineData("""{"model":"echo-8b","messages":[{"role":"user","content":"hi stub:chunks=0"}]}""", "messages")]
    [InlineData("""{"model":"echo-8b","messages":[{"role":"user","content":"hi stub:explode"}]}""", "messages")]
    public async Task A_malformed_request_is_400_invalid_request_error(string body, string? param)
    {
        using var response = await PostAsync(body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await ErrorAsync(response);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(1, _stub.Rejected);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Failing_before_the_first_byte_is_a_500_server_error(bool stream)
    {
        _stub.SetModel("broken", StubModel.Echo with { FailBeforeFirstByte = true });

        using var response = await PostAsync(Body("broken", stream));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("server_error", (await ErrorAsync(response)).GetProperty("type").GetString());
        Assert.Equal((1, 0, 1), (_stub.Requests, _stub.Completed, _stub.InjectedFailures));
    }

    [Fact]
    public async Task Failing_mid_stream_drops_the_connection_after_k_chunks()
    {
        _stub.SetModel("flaky", StubModel.Echo with { FailAfterChunks = 3 });
        using var response = await _http.SendAsync(Post(Body("flaky", stream: true, includeUsage: true)), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var data = new List<string>();

        var thrown = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data.Add(line[6..]);
                }
            }
        });

        Assert.IsAssignableFrom<IOException>(thrown); // an incomplete chunked body, not a clean end
        Assert.Equal(3, data.Count);
        Assert.DoesNotContain("[DONE]", data);
        Assert.Equal((1, 0, 1, 0), (_stub.Requests, _stub.Completed, _stub.InjectedFailures, _stub.AbortedByClient));
    }

    [Fact]
    public async Task A_plain_request_to_a_model_failing_mid_stream_gets_no_response()
    {
        _stub.SetModel("flaky", StubModel.Echo with { FailAfterChunks = 2 });

        var thrown = await Record.ExceptionAsync(() => _http.SendAsync(Post(Body("flaky", stream: false))));

        Assert.IsType<HttpRequestException>(thrown);
        Assert.Equal(1, _stub.InjectedFailures);
    }

    [Fact]
    public async Task A_slow_model_waits_before_each_chunk()
    {
        _stub.SetModel("slow", StubModel.Echo with { Chunks = 4, ChunkDelay = TimeSpan.FromMilliseconds(100) });
        var clock = Stopwatch.StartNew();

        var events = await StreamEventsAsync(Body("slow", stream: true));

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(4 * 100 - 20), $"4 chunks 100 ms apart took {clock.ElapsedMilliseconds} ms");
        Assert.Equal(4 + 2, events.Count);
        clock.Restart();
        using var plain = await PostAsync(Body("slow", stream: false));
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(4 * 100 - 20), $"a plain reply of 4 chunks took {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task A_client_going_away_mid_stream_is_counted_and_stops_the_reply()
    {
        _stub.SetModel("glacial", StubModel.Echo with { Chunks = 100, ChunkDelay = TimeSpan.FromMilliseconds(200) });
        using (var cts = new CancellationTokenSource())
        {
            using var response = await _http.SendAsync(Post(Body("glacial", stream: true)), HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            var first = await reader.ReadLineAsync(cts.Token);
            Assert.StartsWith("data: ", first, StringComparison.Ordinal);
            Assert.Equal(1, _stub.InFlight);
            await cts.CancelAsync();
        }

        await Eventually.Until(() => Task.FromResult(_stub.AbortedByClient == 1), TimeSpan.FromSeconds(20), "the stub saw the client go away");
        await Eventually.Until(() => Task.FromResult(_stub.InFlight == 0), TimeSpan.FromSeconds(20), "the stub stopped the reply");
        Assert.Equal((1, 0, 0), (_stub.Requests, _stub.Completed, _stub.InjectedFailures));
    }

    [Fact]
    public async Task Directives_in_the_last_user_message_switch_behaviour_per_call()
    {
        var events = await StreamEventsAsync(Body("echo-8b", stream: true, messages: """[{"role":"user","content":"alpha stub:chunks=3 beta"}]"""));
        Assert.Equal(["alpha ", "beta ", "alpha"], events[..3].Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()));
        Assert.Equal(3 + 2, events.Count);

        using var failed = await PostAsync(Body("echo-8b", stream: false, messages: """[{"role":"user","content":"hi stub:fail-before"}]"""));
        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);

        using var again = await PostAsync(Body("echo-8b", stream: false));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode); // the model's own behaviour is unchanged
    }

    [Fact]
    public async Task The_openai_sdk_gets_plain_and_streamed_completions()
    {
        var chat = Sdk("echo-8b");

        ChatCompletion completion = await chat.CompleteChatAsync([new SystemChatMessage("be brief"), new UserChatMessage(Prompt)]);
        Assert.Equal(StubRuntime.ReplyText(Prompt, 8), Assert.Single(completion.Content).Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal("echo-8b", completion.Model);
        Assert.Equal((6, 8, 14), (completion.Usage.InputTokenCount, completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount));

        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        var updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], new ChatCompletionOptions()))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal(StubRuntime.ReplyText(Prompt, 8), text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal(10, updates);
        Assert.NotNull(usage); // the SDK asks for stream_options.include_usage itself
        Assert.Equal((4, 8), (usage.InputTokenCount, usage.OutputTokenCount));
        using var sent = JsonDocument.Parse(_stub.LastRequestBody!);
        Assert.True(sent.RootElement.GetProperty("stream").GetBoolean());
        Assert.Equal(2, _stub.Completed);
    }

    [Fact]
    public async Task The_openai_sdk_sees_the_failures_as_errors()
    {
        _stub.SetModel("broken", StubModel.Echo with { FailBeforeFirstByte = true });
        _stub.SetModel("flaky", StubModel.Echo with { FailAfterChunks = 2 });

        var missing = await Assert.ThrowsAsync<ClientResultException>(() => Sdk("nope").CompleteChatAsync([new UserChatMessage(Prompt)]));
        Assert.Equal(404, missing.Status);
        Assert.Contains("model_not_found", missing.Message, StringComparison.Ordinal);

        var broken = await Assert.ThrowsAsync<ClientResultException>(() => Sdk("broken").CompleteChatAsync([new UserChatMessage(Prompt)]));
        Assert.Equal(500, broken.Status);

        var text = new StringBuilder();
        var midStream = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in Sdk("flaky").CompleteChatStreamingAsync([new UserChatMessage(Prompt)]))
            {
                foreach (var part in update.ContentUpdate)
                {
                    text.Append(part.Text);
                }
            }
        });
        Assert.NotNull(midStream);
        Assert.Equal("the quick ", text.ToString());
        Assert.Equal((3, 0, 2), (_stub.Requests, _stub.Completed, _stub.InjectedFailures));
    }

    private ChatClient Sdk(string model) => new(model, new ApiKeyCredential("stub-key"), new OpenAIClientOptions
    {
        Endpoint = _stub.OpenAIEndpoint,
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0), // the SDK retries 5xx by default; the counters must see one call
    });

    private static string Body(string model, bool stream, bool includeUsage = false, string messages = """[{"role":"user","content":"the quick brown fox"}]""") =>
        $$"""{"model":"{{model}}","messages":{{messages}},"stream":{{(stream ? "true" : "false")}}{{(includeUsage ? ""","stream_options":{"include_usage":true}""" : "")}}}""";

    private static HttpRequestMessage Post(string body) =>
        new(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    private Task<HttpResponseMessage> PostAsync(string body) => _http.SendAsync(Post(body));

    private static async Task<JsonElement> ErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = json.RootElement;
        Assert.Equal(["error"], root.EnumerateObject().Select(p => p.Name));
        var error = root.GetProperty("error").Clone();
        Assert.Equal(["message", "type", "param", "code"], error.EnumerateObject().Select(p => p.Name));
        return error;
    }

    // The SSE events' data, in order: each event is exactly one "data: …" line followed by an empty line.
    private async Task<List<string>> StreamEventsAsync(string body)
    {
        using var response = await _http.SendAsync(Post(body), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n\n", text, StringComparison.Ordinal);
        var events = text[..^2].Split("\n\n");
        Assert.All(events, e => Assert.StartsWith("data: ", e, StringComparison.Ordinal));
        Assert.All(events, e => Assert.DoesNotContain('\n', e));
        return [.. events.Select(e => e[6..])];
    }
}
