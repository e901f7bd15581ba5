using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests;

/// <summary>The API client's wire behaviour against a loopback server that records what it gets and answers as told.</summary>
public sealed class NodeApiClientTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<RecordedRequest> _seen = new();
    private LoopbackServer _server = null!;
    private Func<HttpContext, RecordedRequest, Task>? _answer;

    public async Task InitializeAsync() =>
        _server = await LoopbackServer.StartAsync(app => app.Run(async c =>
        {
            using var buffer = new MemoryStream();
            await c.Request.Body.CopyToAsync(buffer);
            var recorded = new RecordedRequest(c.Request.Path, c.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), buffer.ToArray());
            _seen.Enqueue(recorded);
            if (_answer is { } answer)
            {
                await answer(c, recorded);
            }
            else
            {
                await Results.Json(new { status = "active", node_id = "n1", node_token = new string('a', 64), previous_token_valid_until = "2026-01-01T00:00:00Z", ok = true }).ExecuteAsync(c);
            }
        }));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static readonly HeartbeatRequest Beat = new() { Ready = true };
    private static readonly NodeCredentials Credentials = new("n1", NodeAuth.NewToken());

    private NodeApiClient Client(HttpClient http, string prefix = "", TimeProvider? time = null) =>
        new(http, new Uri(_server.BaseAddress, prefix), time ?? TimeProvider.System);

    [Fact]
    public async Task Heartbeat_is_signed_v2_over_the_route_path_even_under_a_path_prefix()
    {
        using var http = AgentHost.CreateApiHttpClient();
        await Client(http, "/dgon/").HeartbeatAsync(Credentials, Beat, CancellationToken.None);

        var r = Assert.Single(_seen);
        Assert.Equal("/dgon/v1/nodes/heartbeat", r.Path);
        var sig = r.Header(NodeAuth.SignatureHeader)!;
        Assert.StartsWith("v2=", sig, StringComparison.Ordinal);
        Assert.Equal(NodeAuthResult.Ok, NodeAuth.Verify(Credentials.Token, "POST", "/v1/nodes/heartbeat", "n1", r.Body, r.Header(NodeAuth.TimestampHeader)!, sig, acceptV1: false));
        Assert.Equal(NodeAuthResult.BadSignature, NodeAuth.Verify(Credentials.Token, "POST", "/v1/receipts", "n1", r.Body, r.Header(NodeAuth.TimestampHeader)!, sig, acceptV1: false));
        Assert.Null(r.Header("Authorization"));
        Assert.StartsWith("dgon-agent/", r.Header("User-Agent"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_with_a_join_token_sends_it_as_bearer_without_a_proof()
    {
        using var http = AgentHost.CreateApiHttpClient();
        using var key = NodeKeyProof.NewKey();
        var request = new RegisterRequest { NodeId = "n1", Region = "local", Runtime = "ollama", PublicKey = NodeKeyProof.PublicKeyText(key) };
        await Client(http).RegisterAsync(request, StubApi.JoinToken, proofKey: null, CancellationToken.None);

        var r = Assert.Single(_seen);
        Assert.Equal("Bearer " + StubApi.JoinToken, r.Header("Authorization"));
        Assert.Null(r.Header(NodeKeyProof.ProofHeader));
        Assert.Equal(NodeKeyProof.PublicKeyText(key), r.Json.GetProperty("public_key").GetString());
    }

    [Fact]
    public async Task Register_with_the_key_sends_a_proof_over_the_exact_body_and_no_bearer()
    {
        using var http = AgentHost.CreateApiHttpClient();
        using var key = NodeKeyProof.NewKey();
        var request = new RegisterRequest { NodeId = "n1", Region = "local", Runtime = "ollama", PublicKey = NodeKeyProof.PublicKeyText(key) };
        await Client(http).RegisterAsync(request, joinToken: null, proofKey: key, CancellationToken.None);

        var r = Assert.Single(_seen);
        Assert.Null(r.Header("Authorization"));
        Assert.Equal("n1", r.Header(NodeAuth.NodeIdHeader));
        Assert.Null(r.Header(NodeAuth.SignatureHeader));
        var proof = r.Header(NodeKeyProof.ProofHeader)!;
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, "POST", "/v1/nodes/register", "n1", r.Body, r.Header(NodeAuth.TimestampHeader)!));
        var tampered = Encoding.UTF8.GetBytes(r.Text.Replace("local", "other", StringComparison.Ordinal));
        Assert.False(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, "POST", "/v1/nodes/register", "n1", tampered, r.Header(NodeAuth.TimestampHeader)!));
    }

    [Fact]
    public async Task Rotate_token_posts_an_empty_object_signed_with_the_key()
    {
        using var http = AgentHost.CreateApiHttpClient();
        using var key = NodeKeyProof.NewKey();
        var response = await Client(http).RotateTokenAsync("n1", key, CancellationToken.None);

        Assert.Equal(new string('a', 64), response.NodeToken);
        Assert.Equal(new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), response.PreviousTokenValidUntil.ToUniversalTime());
        var r = Assert.Single(_seen);
        Assert.Equal("/v1/nodes/rotate-token", r.Path);
        Assert.Equal("{}", r.Text);
        Assert.StartsWith("application/json", r.Header("Content-Type"), StringComparison.Ordinal);
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), r.Header(NodeKeyProof.ProofHeader)!, "POST", "/v1/nodes/rotate-token", "n1", r.Body, r.Header(NodeAuth.TimestampHeader)!));
    }

    [Fact]
    public async Task Heartbeats_receipts_and_key_signed_requests_share_one_strictly_increasing_clock()
    {
        using var http = AgentHost.CreateApiHttpClient();
        using var key = NodeKeyProof.NewKey();
        var frozen = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        var client = Client(http, time: frozen);
        await client.HeartbeatAsync(Credentials, Beat, CancellationToken.None);
        await client.HeartbeatAsync(Credentials, Beat, CancellationToken.None);
        await client.PostReceiptAsync(Credentials, new ReceiptRequest { Id = "r1", NodeId = "n1" }, CancellationToken.None);
        await client.RotateTokenAsync("n1", key, CancellationToken.None);
        await client.RegisterAsync(new RegisterRequest { NodeId = "n1" }, null, key, CancellationToken.None);
        frozen.Advance(TimeSpan.FromSeconds(100));
        await client.HeartbeatAsync(Credentials, Beat, CancellationToken.None);

        Assert.Equal([1_800_000_000L, 1_800_000_001, 1_800_000_002, 1_800_000_003, 1_800_000_004, 1_800_000_100], _seen.Select(r => r.Ts));
        Assert.Equal(1_800_000_100, client.Clock.Last);
    }

    [Theory]
    [InlineData(301)]
    [InlineData(302)]
    [InlineData(307)]
    [InlineData(308)]
    public async Task Redirect_is_an_error_naming_the_location_and_is_not_followed(int status)
    {
        _answer = (c, r) =>
        {
            if (r.Path == "/v1/nodes/heartbeat")
            {
                c.Response.StatusCode = status;
                c.Response.Headers.Location = "/elsewhere";
            }

            return Task.CompletedTask;
        };
        using var http = AgentHost.CreateApiHttpClient();

        var e = await Assert.ThrowsAsync<NodeApiException>(() => Client(http).HeartbeatAsync(Credentials, Beat, CancellationToken.None));

        Assert.Equal(ApiFailureKind.Rejected, e.Kind);
        Assert.Equal(status, (int)e.StatusCode);
        Assert.Contains("redirect to /elsewhere", e.Message, StringComparison.Ordinal);
        Assert.Single(_seen);
    }

    [Fact]
    public async Task Redirect_followed_by_a_lenient_handler_is_still_an_error()
    {
        _answer = (c, r) =>
        {
            if (r.Path == "/v1/nodes/heartbeat")
            {
                c.Response.StatusCode = 307;
                c.Response.Headers.Location = "/elsewhere";
                return Task.CompletedTask;
            }

            return Results.Json(new { status = "active" }).ExecuteAsync(c);
        };
        using var http = new HttpClient(); // follows redirects

        var e = await Assert.ThrowsAsync<NodeApiException>(() => Client(http).HeartbeatAsync(Credentials, Beat, CancellationToken.None));

        Assert.Equal(ApiFailureKind.Rejected, e.Kind);
        Assert.Contains("was redirected to", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)] // Content-Length announces it
    [InlineData(false)] // chunked: found while reading
    public async Task Oversized_success_body_is_an_error_not_a_buffer(bool announced)
    {
        var huge = Encoding.UTF8.GetBytes("{\"status\":\"" + new string('x', 4 * 1024 * 1024) + "\"}");
        _answer = async (c, _) =>
        {
            c.Response.ContentType = "application/json";
            if (announced)
            {
                c.Response.ContentLength = huge.Length;
            }

            await c.Response.Body.WriteAsync(huge);
        };
        using var http = AgentHost.CreateApiHttpClient();

        var e = await Assert.ThrowsAsync<NodeApiException>(() => Client(http).HeartbeatAsync(Credentials, Beat, CancellationToken.None));

        Assert.Equal(ApiFailureKind.Rejected, e.Kind);
        Assert.Contains("over 65536 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_error_body_keeps_the_status_classification()
    {
        _answer = async (c, _) =>
        {
            c.Response.StatusCode = 503;
            await c.Response.WriteAsync(new string('x', 200 * 1024));
        };
        using var http = AgentHost.CreateApiHttpClient();

        var e = await Assert.ThrowsAsync<NodeApiException>(() => Client(http).HeartbeatAsync(Credentials, Beat, CancellationToken.None));

        Assert.Equal(ApiFailureKind.Transient, e.Kind);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, e.StatusCode);
        Assert.Null(e.Problem);
        Assert.Contains("not read", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Body_of_exactly_the_limit_is_read()
    {
        var prefix = "{\"status\":\"";
        var body = prefix + new string('x', NodeApiClient.MaxResponseBytes - prefix.Length - 2) + "\"}";
        Assert.Equal(NodeApiClient.MaxResponseBytes, Encoding.UTF8.GetByteCount(body));
        _answer = (c, _) => Results.Text(body, "application/json").ExecuteAsync(c);
        using var http = AgentHost.CreateApiHttpClient();

        var response = await Client(http).HeartbeatAsync(Credentials, Beat, CancellationToken.None);

        Assert.Equal(NodeApiClient.MaxResponseBytes - prefix.Length - 2, response.Status.Length);
    }

    [Fact]
    public async Task Retry_after_of_a_429_is_read()
    {
        _answer = (c, _) =>
        {
            c.Response.StatusCode = 429;
            c.Response.Headers.RetryAfter = "7";
            return Task.CompletedTask;
        };
        using var http = AgentHost.CreateApiHttpClient();

        var e = await Assert.ThrowsAsync<NodeApiException>(() => Client(http).RegisterAsync(new RegisterRequest { NodeId = "n1" }, null, null, CancellationToken.None));

        Assert.Equal(ApiFailureKind.Transient, e.Kind);
        Assert.Equal(TimeSpan.FromSeconds(7), e.RetryAfter);
        Assert.Equal(TimeSpan.FromSeconds(7), RetryPolicy.Delay(e, 3, 0.5));
    }

    [Fact]
    public void Credentials_never_print_the_token()
    {
        Assert.Equal("n1", Credentials.ToString());
        Assert.DoesNotContain(Credentials.Token[..8], new StoredToken("http://x", "n1", Credentials.Token, DateTimeOffset.UnixEpoch).ToString(), StringComparison.Ordinal);
    }
}
