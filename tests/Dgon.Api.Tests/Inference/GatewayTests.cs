using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Contracts;
using Dgon.Domain.Receipts;
using Dgon.Testing;
using Npgsql;
using OpenAI.Chat;
using OpenAI.Models;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// Issue 13's gateway against the real API with fake nodes on real links, the official OpenAI .NET SDK (2.15.0) as
/// the client: models, plain and streamed completions, 401/403/404/429 in OpenAI's shape, failover before the first
/// chunk, an error chunk after it, cancellation reaching the node, receipts verified and stored.
/// </summary>
public sealed class GatewayTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static string Unique(string what) => $"{what}-{Guid.NewGuid():N}"[..24];

    [Fact]
    public async Task The_SDK_lists_models_and_gets_plain_and_streamed_completions_with_valid_receipts()
    {
        var model = Unique("m-basic");
        await using var node = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-basic"), model);
        Assert.False(string.IsNullOrEmpty(node.Welcome!.Replica));

        var models = new OpenAIModelClient(new ApiKeyCredential(fixture.InferenceKey), GatewayFixture.SdkOptions(fixture.Host.BaseAddress));
        var list = (await models.GetModelsAsync()).Value;
        var listed = Assert.Single(list, m => m.Id == model);
        Assert.Equal("dgon", listed.OwnedBy);

        var chat = fixture.Chat(model);
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("hello there")]);
        Assert.Equal(FakeLinkNode.ReplyTo("hello there"), completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
        Assert.Equal(3, completion.Usage.InputTokenCount);
        Assert.True(completion.Usage.OutputTokenCount > 0);

        var streamed = new StringBuilder();
        var updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream it")]))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(FakeLinkNode.ReplyTo("stream it"), streamed.ToString());
        Assert.True(updates > 2, $"{updates} streamed updates");

        // The raw stream: every event is data: {json}, the last data: [DONE]; no usage chunk was asked for.
        using var raw = await PostAsync(fixture.Host.Client, fixture.InferenceKey, model, "raw", stream: true);
        var body = await raw.Content.ReadAsStringAsync();
        Assert.Equal("text/event-stream", raw.Content.Headers.ContentType?.MediaType);
        var lines = FakeLinkNode.DataLines(body);
        Assert.Equal("[DONE]", lines[^1]);
        Assert.All(lines.SkipLast(1), l => Assert.DoesNotContain("\"usage\"", l, StringComparison.Ordinal));

        // Each served request left a receipt the gateway found valid, with the node's signature intact.
        var tasks = node.Dispatches.Select(d => d.TaskId).ToList();
        Assert.Equal(3, tasks.Count);
        await Eventually.Until(async () => (await ReceiptsAsync(tasks)).Count == 3, Deadline, "three receipts stored");
        foreach (var (id, payload, status) in await ReceiptsAsync(tasks))
        {
            Assert.StartsWith("ed25519:", payload.GetProperty("signature").GetString(), StringComparison.Ordinal);
            Assert.True(status is null or "valid", $"receipt {id}: {status}");
        }

        Assert.Contains(fixture.Host.Output, l => l.Contains($"Node {node.NodeId} linked", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Wrong_or_missing_keys_get_401_and_a_key_without_the_inference_scope_403_in_OpenAIs_shape()
    {
        var model = Unique("m-auth");
        await using var node = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-auth"), model);

        var wrong = await Assert.ThrowsAsync<ClientResultException>(() => fixture.Chat(model, key: "dgk_notakey_0000000000000000000000").CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(401, wrong.Status);
        var forbidden = await Assert.ThrowsAsync<ClientResultException>(() => fixture.Chat(model, key: fixture.ReadOnlyKey).CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(403, forbidden.Status);

        using (var none = await PostAsync(fixture.Host.Client, null, model, "x"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
            var error = await ErrorAsync(none);
            Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
            Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        }

        using (var scope = await PostAsync(fixture.Host.Client, fixture.ReadOnlyKey, model, "x"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, scope.StatusCode);
            Assert.Equal("insufficient_permissions", (await ErrorAsync(scope)).GetProperty("code").GetString());
        }

        Assert.Empty(node.Dispatches);
    }

    [Fact]
    public async Task An_unknown_model_is_404_model_not_found_and_a_bad_body_400()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => fixture.Chat(Unique("m-nowhere")).CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(404, error.Status);
        using (var raw = await PostAsync(fixture.Host.Client, fixture.InferenceKey, Unique("m-nowhere"), "x"))
        {
            Assert.Equal(HttpStatusCode.NotFound, raw.StatusCode);
            var body = await ErrorAsync(raw);
            Assert.Equal("model_not_found", body.GetProperty("code").GetString());
            Assert.Equal("model", body.GetProperty("param").GetString());
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent("{\"model\":\"x\"}", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fixture.InferenceKey);
        using var bad = await fixture.Host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("messages", (await ErrorAsync(bad)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task With_every_slot_taken_the_gateway_answers_429_with_Retry_After()
    {
        var model = Unique("m-busy");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var node = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-busy"), model, maxParallel: 1);
        node.Behaviour = async (n, d, ct) =>
        {
            await release.Task.WaitAsync(ct);
            await n.EchoAsync(d, ct);
        };

        var first = PostAsync(fixture.Host.Client, fixture.InferenceKey, model, "first");
        await Eventually.Until(() => Task.FromResult(node.Dispatches.Count == 1), Deadline, "the first request reaches the node");

        var sdk = await Assert.ThrowsAsync<ClientResultException>(() => fixture.Chat(model).CompleteChatAsync([new UserChatMessage("second")]));
        Assert.Equal(429, sdk.Status);
        using (var second = await PostAsync(fixture.Host.Client, fixture.InferenceKey, model, "third"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), second.Headers.RetryAfter?.Delta);
            Assert.Equal("rate_limit_exceeded", (await ErrorAsync(second)).GetProperty("code").GetString());
        }

        Assert.Single(node.Dispatches); // neither extra request was sent to the busy node
        release.SetResult();
        using var done = await first;
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
    }

    [Fact]
    public async Task A_node_failing_before_its_first_chunk_is_replaced_by_the_next_node()
    {
        var model = Unique("m-failover");
        await using var failing = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-fail"), model, region: "eu-north");
        await using var healthy = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-ok"), model, region: "us-east");
        failing.Behaviour = (n, d, ct) => n.SendAsync(new FailureMessage(d.TaskId, "runtime_error", "the runtime answered 500", BeforeFirstChunk: true), ct);

        // The region header makes the failing node the first choice (equal load and reputation).
        ChatCompletion completion = await fixture.Chat(model, region: "eu-north").CompleteChatAsync([new UserChatMessage("fail over")]);
        Assert.Equal(FakeLinkNode.ReplyTo("fail over"), completion.Content[0].Text);
        Assert.Single(failing.Dispatches);
        Assert.Single(healthy.Dispatches);
        Assert.Contains(fixture.Host.Output, l => l.Contains($"Node {failing.NodeId} failed task", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failure_after_the_first_chunk_ends_the_stream_with_an_error_chunk_and_DONE()
    {
        var model = Unique("m-midstream");
        await using var node = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-mid"), model);
        node.Behaviour = async (n, d, ct) =>
        {
            await n.SendAsync(new ChunkMessage(d.TaskId, FakeLinkNode.Chunk(d.Model, "partial")), ct);
            await n.SendAsync(new FailureMessage(d.TaskId, "runtime_error", "the runtime dropped the connection", BeforeFirstChunk: false), ct);
        };

        using var response = await PostAsync(fixture.Host.Client, fixture.InferenceKey, model, "x", stream: true);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var lines = FakeLinkNode.DataLines(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, lines.Count);
        Assert.Contains("partial", lines[0], StringComparison.Ordinal);
        var error = JsonDocument.Parse(lines[1]).RootElement.GetProperty("error");
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Contains("dropped the connection", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("[DONE]", lines[2]);

        // Plain: 502 in OpenAI's shape.
        using var plain = await PostAsync(fixture.Host.Client, fixture.InferenceKey, model, "y");
        Assert.Equal(HttpStatusCode.BadGateway, plain.StatusCode);
        Assert.Equal("upstream_error", (await ErrorAsync(plain)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_client_that_goes_away_mid_stream_makes_the_gateway_send_cancel_to_the_node()
    {
        var model = Unique("m-cancel");
        await using var node = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-cancel"), model);
        node.Behaviour = async (n, d, ct) =>
        {
            await n.SendAsync(new ChunkMessage(d.TaskId, FakeLinkNode.Chunk(d.Model, "first words")), ct);
            await Task.Delay(Timeout.Infinite, ct); // a slow runtime
        };

        using var cancel = new CancellationTokenSource();
        var received = new StringBuilder();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in fixture.Chat(model).CompleteChatStreamingAsync([new UserChatMessage("long story")], cancellationToken: cancel.Token))
            {
                foreach (var part in update.ContentUpdate)
                {
                    received.Append(part.Text);
                }

                await cancel.CancelAsync();
            }
        });

        Assert.Equal("first words", received.ToString());
        var dispatch = Assert.Single(node.Dispatches);
        await Eventually.Until(() => Task.FromResult(node.Cancels.Any(c => c.TaskId == dispatch.TaskId)), Deadline, "the cancel frame reaches the node");
    }

    [Fact]
    public async Task A_tampered_receipt_is_stored_as_invalid_evidence()
    {
        var model = Unique("m-tamper");
        await using var node = await FakeLinkNode.StartAsync(fixture.Host.Client, Unique("n-tamper"), model);
        node.Behaviour = (n, d, ct) => n.EchoAsync(d, ct, tamper: r => r["payload"]!["tokens_output"] = 999);

        ChatCompletion completion = await fixture.Chat(model).CompleteChatAsync([new UserChatMessage("count my tokens")]);
        Assert.Equal(FakeLinkNode.ReplyTo("count my tokens"), completion.Content[0].Text);
        var taskId = Assert.Single(node.Dispatches).TaskId;
        await Eventually.Until(async () => (await ReceiptsAsync([taskId])).Count == 1, Deadline, "the receipt is stored");
        var (_, payload, status) = Assert.Single(await ReceiptsAsync([taskId]));
        Assert.Equal(999, payload.GetProperty("tokens_output").GetInt32());
        Assert.False(ExecutionReceipts.Verify(node.Node.PublicKey, JsonDocument.Parse($$"""{"id":"{{taskId}}","node_id":"{{node.NodeId}}","region":"{{node.Region}}","model_id":"{{model}}","payload":{{payload.GetRawText()}}}""").RootElement).Valid);
        Assert.True(status is null or "invalid", $"signature_status {status}");
        Assert.Contains(fixture.Host.Output, l => l.Contains($"Node {node.NodeId} returned an invalid receipt for task {taskId} (bad_signature)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_link_refuses_bad_upgrades_and_unsigned_hellos()
    {
        var model = Unique("m-link");
        var node = await TestNode.RegisterAsync(fixture.Host.Client, Unique("n-link"));

        // Not authentic: 401 problem+json before any upgrade.
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/v1/nodes/link"))
        {
            foreach (var (name, value) in Dgon.Domain.Auth.NodeAuth.SignHeadersV2(node.NodeId, "0000", "GET", "/v1/nodes/link", [], node.NextTs()))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var response = await fixture.Host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        // Authentic but no upgrade: 400.
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/v1/nodes/link"))
        {
            foreach (var (name, value) in Dgon.Domain.Auth.NodeAuth.SignHeadersV2(node.NodeId, node.Token, "GET", "/v1/nodes/link", [], node.NextTs()))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var response = await fixture.Host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        // A hello signed by another key: closed 1008, the model never appears.
        using var socket = await FakeLinkNode.ConnectAsync(fixture.Host.BaseAddress, node);
        var manifest = FakeLinkNode.Manifest(node.NodeId, model, 1);
        var hello = JsonSerializer.SerializeToUtf8Bytes<LinkMessage>(new HelloMessage(manifest, ManifestSignatures.Sign(Dgon.Domain.Auth.NodeKeyProof.NewKey(), manifest)), LinkJsonContext.Default.LinkMessage);
        await socket.SendAsync(hello, System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        var result = await socket.ReceiveAsync(new byte[1024], CancellationToken.None);
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.PolicyViolation, socket.CloseStatus);
    }

    private async Task<List<(string Id, JsonElement Payload, string? Status)>> ReceiptsAsync(IReadOnlyCollection<string> ids)
    {
        var postgres = await SharedPostgres.GetAsync();
        await using var connection = new NpgsqlConnection(postgres.ConnectionStringForUrl(fixture.DatabaseUrl));
        await connection.OpenAsync();
        await using var probe = new NpgsqlCommand("SELECT count(*) FROM information_schema.columns WHERE table_name = 'receipts' AND column_name = 'signature_status'", connection);
        var hasStatus = (long)(await probe.ExecuteScalarAsync())! > 0;
        await using var command = new NpgsqlCommand($"SELECT id, payload::text, {(hasStatus ? "signature_status" : "NULL::text")} FROM receipts WHERE id = ANY($1)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = ids.ToArray() });
        var rows = new List<(string, JsonElement, string?)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), JsonDocument.Parse(reader.GetString(1)).RootElement.Clone(), reader.IsDBNull(2) ? null : reader.GetString(2)));
        }

        return rows;
    }

    internal static async Task<HttpResponseMessage> PostAsync(HttpClient api, string? key, string model, string prompt, bool stream = false)
    {
        var body = JsonSerializer.Serialize(new { model, stream, messages = new[] { new { role = "user", content = prompt } } });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return await api.SendAsync(request);
    }

    private static async Task<JsonElement> ErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
    }
}
