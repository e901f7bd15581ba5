using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests.Support;

/// <summary>A request the stub received, with its raw body bytes.</summary>
public sealed record RecordedRequest(string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);

    public JsonElement Json => JsonDocument.Parse(Body).RootElement.Clone();

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
}

/// <summary>
/// A programmable in-process stand-in for the DGON API's node endpoints (register, heartbeat, receipts) on a real
/// loopback port: issues tokens, verifies HMAC signatures with <see cref="NodeAuth"/> and answers like the real API.
/// <see cref="Override"/> lets a test answer a request itself (return null to fall through).
/// </summary>
public sealed class StubApi : IAsyncDisposable
{
    public const string ProblemBase = "https://dgon.io/problems/";

    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly ConcurrentDictionary<string, string> _tokens = new(StringComparer.Ordinal);
    private LoopbackServer? _server;

    public Uri BaseAddress => _server!.BaseAddress;

    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    public Func<RecordedRequest, IResult?>? Override { get; set; }

    public IReadOnlyList<RecordedRequest> On(string path) => [.. _requests.Where(r => r.Path == path)];

    public void SetToken(string nodeId, string token) => _tokens[nodeId] = token;

    public string? TokenOf(string nodeId) => _tokens.TryGetValue(nodeId, out var t) ? t : null;

    public static async Task<StubApi> StartAsync()
    {
        var stub = new StubApi();
        stub._server = await LoopbackServer.StartAsync(app =>
        {
            Func<HttpContext, Task<IResult>> register = c => stub.HandleAsync(c, stub.Register);
            Func<HttpContext, Task<IResult>> heartbeat = c => stub.HandleAsync(c, r => stub.Signed(r, body =>
                Results.Json(new { status = body.GetProperty("ready").GetBoolean() ? "active" : "pending" })));
            Func<HttpContext, Task<IResult>> receipts = c => stub.HandleAsync(c, r => stub.Signed(r, _ => Results.Json(new { ok = true })));
            app.MapPost("/v1/nodes/register", register);
            app.MapPost("/v1/nodes/heartbeat", heartbeat);
            app.MapPost("/v1/receipts", receipts);
        });
        return stub;
    }

    public static IResult Problem(int status, string type, string? detail = null, IDictionary<string, string[]>? errors = null) =>
        errors is null
            ? Results.Problem(detail: detail, statusCode: status, type: ProblemBase + type, title: type)
            : Results.ValidationProblem(errors, detail: detail, statusCode: status, type: ProblemBase + type, title: type);

    private async Task<IResult> HandleAsync(HttpContext context, Func<RecordedRequest, IResult> handler)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var recorded = new RecordedRequest(context.Request.Path, headers, buffer.ToArray());
        _requests.Enqueue(recorded);
        return Override?.Invoke(recorded) ?? handler(recorded);
    }

    private IResult Register(RecordedRequest request)
    {
        var body = JsonSerializer.Deserialize(request.Body, DgonJsonContext.Default.RegisterRequest)!;
        var token = NodeAuth.NewToken();
        _tokens[body.NodeId!] = token;
        return Results.Json(new { status = "registered", node_id = body.NodeId, node_token = token });
    }

    private IResult Signed(RecordedRequest request, Func<JsonElement, IResult> ok)
    {
        var id = request.Header(NodeAuth.NodeIdHeader);
        var ts = request.Header(NodeAuth.TimestampHeader);
        var sig = request.Header(NodeAuth.SignatureHeader);
        var check = NodeAuth.CheckHeaders(id, ts, sig, DateTimeOffset.UtcNow);
        if (check == NodeAuthResult.MissingHeaders)
        {
            return Problem(401, "missing-auth-headers");
        }

        if (check != NodeAuthResult.Ok)
        {
            return Problem(401, "stale-timestamp");
        }

        if (!_tokens.TryGetValue(id!, out var token))
        {
            return Problem(401, "unknown-node");
        }

        return NodeAuth.VerifySignature(token, request.Body, ts!, sig!) == NodeAuthResult.Ok
            ? ok(request.Json)
            : Problem(401, "bad-signature");
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
