using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests.Support;

/// <summary>A request the stub received, with its raw body bytes and the answer's status.</summary>
public sealed record RecordedRequest(string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);

    public JsonElement Json => JsonDocument.Parse(Body).RootElement.Clone();

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;

    public long Ts => long.Parse(Header(NodeAuth.TimestampHeader)!, CultureInfo.InvariantCulture);

    /// <summary>HTTP status the stub answered (0 until answered).</summary>
    public int Status { get; set; }

    /// <summary>Problem slug of the answer, or null.</summary>
    public string? Problem { get; set; }
}

/// <summary>What the stub knows about one node.</summary>
public sealed class StubNode
{
    public string? Token { get; set; }

    public string? PreviousToken { get; set; }

    public DateTimeOffset PreviousValidUntil { get; set; }

    public string? PublicKey { get; set; }

    /// <summary>Last accepted X-Node-Ts of a heartbeat or key-signed request (the replay clock).</summary>
    public long Clock { get; set; }

    /// <summary>"Key ring lost the key": heartbeats answer 401 secret-unavailable until the node registers again.</summary>
    public bool SecretForgotten { get; set; }
}

/// <summary>
/// A programmable in-process stand-in for the DGON API's node endpoints on a real loopback port, speaking the issue 9
/// contract (/work/notes/issue9-contract.md): register needs a join token for a new or keyless node and a key proof
/// (<see cref="NodeKeyProof.Verify"/>) for a node with a key; heartbeats and receipts are verified as v2
/// (<see cref="NodeAuth.Verify"/>, v1 refused unless <see cref="AcceptV1"/>); heartbeats and key-signed requests must
/// carry a timestamp later than the node's last accepted one (401 replayed); rotate-token issues a new token and keeps
/// the previous one valid 60 s; <see cref="ForgetSecret"/> makes heartbeats answer 401 secret-unavailable.
/// <see cref="Override"/> lets a test answer a request itself (return null to fall through). Any other path is recorded
/// and answered 404.
/// </summary>
public sealed class StubApi : IAsyncDisposable
{
    public const string ProblemBase = "https://dgon.io/problems/";

    /// <summary>The join token the stub accepts by default.</summary>
    public const string JoinToken = "abcdef.0123456789abcdef";

    public static readonly TimeSpan RotationOverlap = TimeSpan.FromSeconds(60);

    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly ConcurrentQueue<string> _issued = new();
    private readonly Dictionary<string, StubNode> _nodes = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private LoopbackServer? _server;

    public Uri BaseAddress => _server!.BaseAddress;

    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    /// <summary>Every node token the stub issued (to check none is logged).</summary>
    public IReadOnlyList<string> IssuedTokens => [.. _issued];

    public Func<RecordedRequest, IResult?>? Override { get; set; }

    /// <summary>Join tokens accepted at registration.</summary>
    public HashSet<string> JoinTokens { get; } = [JoinToken];

    /// <summary>DGON_OPEN_REGISTRATION=true: no join token, no proof.</summary>
    public bool OpenRegistration { get; set; }

    /// <summary>Whether v1 signatures are accepted (DGON_ACCEPT_V1_SIGNATURES); false so that the agent's v2 is checked.</summary>
    public bool AcceptV1 { get; set; }

    /// <summary>The server's clock for the ±120 s window.</summary>
    public Func<DateTimeOffset> Now { get; set; } = () => DateTimeOffset.UtcNow;

    /// <summary>When set, heartbeat responses carry <c>heartbeat_interval_s</c> with this value (issue 11).</summary>
    public int? HeartbeatIntervalSeconds { get; set; }

    public IReadOnlyList<RecordedRequest> On(string path) => [.. _requests.Where(r => r.Path == path)];

    /// <summary>Sets (or creates) a node's token; keeps its key.</summary>
    public void SetToken(string nodeId, string token) => Update(nodeId, n => n.Token = token);

    /// <summary>Creates or replaces a node with a token and an enrolled public key.</summary>
    public void SetNode(string nodeId, string? token, string? publicKey)
    {
        lock (_gate)
        {
            _nodes[nodeId] = new StubNode { Token = token, PublicKey = publicKey };
        }
    }

    public string? TokenOf(string nodeId) => Read(nodeId, n => n.Token);

    public string? PublicKeyOf(string nodeId) => Read(nodeId, n => n.PublicKey);

    public long ClockOf(string nodeId) => Read(nodeId, n => n.Clock);

    /// <summary>Sets the node's replay clock (its last accepted X-Node-Ts).</summary>
    public void SetClock(string nodeId, long seconds) => Update(nodeId, n => n.Clock = seconds);

    public void ForgetSecret(string nodeId) => Update(nodeId, n => n.SecretForgotten = true);

    public void DeleteNode(string nodeId)
    {
        lock (_gate)
        {
            _nodes.Remove(nodeId);
        }
    }

    /// <summary>POST /v1/admin/nodes/{id}/reset-key: forgets the public key and tokens.</summary>
    public void ResetKey(string nodeId) => Update(nodeId, n => (n.PublicKey, n.Token, n.PreviousToken) = (null, null, null));

    public static async Task<StubApi> StartAsync()
    {
        var stub = new StubApi();
        stub._server = await LoopbackServer.StartAsync(app =>
        {
            // typed as Func<…, Task<IResult>> so that the returned IResult is written (a lambda would bind as RequestDelegate)
            Func<HttpContext, Task<IResult>> register = c => stub.HandleAsync(c, stub.Register);
            Func<HttpContext, Task<IResult>> rotate = c => stub.HandleAsync(c, stub.Rotate);
            Func<HttpContext, Task<IResult>> heartbeat = c => stub.HandleAsync(c, r => stub.Signed(r, clocked: true, body =>
                stub.HeartbeatIntervalSeconds is { } interval
                    ? Results.Json(new { status = body.GetProperty("ready").GetBoolean() ? "active" : "pending", heartbeat_interval_s = interval })
                    : Results.Json(new { status = body.GetProperty("ready").GetBoolean() ? "active" : "pending" })));
            Func<HttpContext, Task<IResult>> receipts = c => stub.HandleAsync(c, r => stub.Signed(r, clocked: false, _ => Results.Json(new { ok = true })));
            Func<HttpContext, Task<IResult>> other = c => stub.HandleAsync(c, _ => Results.NotFound());
            app.MapPost("/v1/nodes/register", register);
            app.MapPost("/v1/nodes/rotate-token", rotate);
            app.MapPost("/v1/nodes/heartbeat", heartbeat);
            app.MapPost("/v1/receipts", receipts);
            app.MapFallback(other);
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
        var result = Override?.Invoke(recorded) ?? handler(recorded);
        recorded.Status = result is IStatusCodeHttpResult { StatusCode: { } code } ? code : 200;
        recorded.Problem = ProblemOf(result);
        return result;
    }

    private static string? ProblemOf(IResult result) => result switch
    {
        Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult p => p.ProblemDetails.Type?.Replace(ProblemBase, "", StringComparison.Ordinal),
        Microsoft.AspNetCore.Http.HttpResults.ValidationProblem v => v.ProblemDetails.Type?.Replace(ProblemBase, "", StringComparison.Ordinal),
        _ => null,
    };

    private IResult Register(RecordedRequest request)
    {
        if (request.Header("Content-Type") is not { } type || !type.StartsWith("application/json", StringComparison.Ordinal))
        {
            return Results.StatusCode(415);
        }

        var body = JsonSerializer.Deserialize(request.Body, DgonJsonContext.Default.RegisterRequest)!;
        var nodeId = body.NodeId!;
        lock (_gate)
        {
            _nodes.TryGetValue(nodeId, out var node);
            if (!OpenRegistration)
            {
                if (node?.PublicKey is { } enrolled)
                {
                    if (!ProofValid(request, nodeId, enrolled, "/v1/nodes/register", out var ts))
                    {
                        return Problem(409, "proof-required", "re-registering this node needs a proof signed with its key");
                    }

                    if (!string.Equals(body.PublicKey, enrolled, StringComparison.Ordinal))
                    {
                        return Problem(409, "key-mismatch", "public_key differs from the enrolled key");
                    }

                    node.Clock = ts;
                }
                else
                {
                    var auth = request.Header("Authorization");
                    if (string.IsNullOrEmpty(auth))
                    {
                        return Problem(401, "join-token-required", "enrolling a node needs a join token");
                    }

                    if (!auth.StartsWith("Bearer ", StringComparison.Ordinal) || !JoinTokens.Contains(auth["Bearer ".Length..]))
                    {
                        return Problem(401, "join-token-invalid", "the join token is not valid");
                    }
                }
            }

            node ??= new StubNode();
            _nodes[nodeId] = node;
            var token = NodeAuth.NewToken();
            _issued.Enqueue(token);
            (node.Token, node.PreviousToken, node.SecretForgotten) = (token, null, false);
            node.PublicKey = body.PublicKey ?? node.PublicKey;
            return Results.Json(new { status = "registered", node_id = nodeId, node_token = token });
        }
    }

    private IResult Rotate(RecordedRequest request)
    {
        var id = request.Header(NodeAuth.NodeIdHeader);
        var ts = request.Header(NodeAuth.TimestampHeader);
        var proof = request.Header(NodeKeyProof.ProofHeader);
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(ts) || string.IsNullOrEmpty(proof))
        {
            return Problem(401, "bad-proof", "missing proof headers");
        }

        lock (_gate)
        {
            if (!_nodes.TryGetValue(id, out var node) || node.Token is null)
            {
                return Problem(401, "unknown-node");
            }

            if (node.PublicKey is null || NodeAuth.CheckHeaders(id, ts, proof, Now()) != NodeAuthResult.Ok
                || !NodeKeyProof.Verify(node.PublicKey, proof, "POST", "/v1/nodes/rotate-token", id, request.Body, ts))
            {
                return Problem(401, "bad-proof");
            }

            var seconds = long.Parse(ts, CultureInfo.InvariantCulture);
            if (seconds <= node.Clock)
            {
                return Problem(401, "replayed");
            }

            node.Clock = seconds;
            var token = NodeAuth.NewToken();
            _issued.Enqueue(token);
            var until = Now() + RotationOverlap;
            (node.PreviousToken, node.PreviousValidUntil, node.Token) = (node.Token, until, token);
            return Results.Json(new { node_id = id, node_token = token, previous_token_valid_until = until.UtcDateTime });
        }
    }

    private bool ProofValid(RecordedRequest request, string nodeId, string publicKey, string path, out long seconds)
    {
        seconds = 0;
        var id = request.Header(NodeAuth.NodeIdHeader);
        var ts = request.Header(NodeAuth.TimestampHeader);
        var proof = request.Header(NodeKeyProof.ProofHeader);
        if (id != nodeId || NodeAuth.CheckHeaders(id, ts, proof, Now()) != NodeAuthResult.Ok
            || !NodeKeyProof.Verify(publicKey, proof!, "POST", path, nodeId, request.Body, ts!))
        {
            return false;
        }

        seconds = long.Parse(ts!, CultureInfo.InvariantCulture);
        return seconds > _nodes[nodeId].Clock;
    }

    private IResult Signed(RecordedRequest request, bool clocked, Func<JsonElement, IResult> ok)
    {
        var id = request.Header(NodeAuth.NodeIdHeader);
        var ts = request.Header(NodeAuth.TimestampHeader);
        var sig = request.Header(NodeAuth.SignatureHeader);
        switch (NodeAuth.CheckHeaders(id, ts, sig, Now()))
        {
            case NodeAuthResult.MissingHeaders:
                return Problem(401, "missing-auth-headers");
            case NodeAuthResult.InvalidTimestamp:
                return Problem(401, "invalid-timestamp");
            case NodeAuthResult.StaleTimestamp:
                return Problem(401, "stale-timestamp");
        }

        lock (_gate)
        {
            if (!_nodes.TryGetValue(id!, out var node) || node.Token is null)
            {
                return Problem(401, "unknown-node");
            }

            if (node.SecretForgotten)
            {
                return Problem(401, "secret-unavailable", "the stored secret cannot be decrypted; re-register with the node key");
            }

            var verified = NodeAuth.Verify(node.Token, "POST", request.Path, id!, request.Body, ts!, sig!, AcceptV1) == NodeAuthResult.Ok
                || (node.PreviousToken is { } previous && Now() < node.PreviousValidUntil
                    && NodeAuth.Verify(previous, "POST", request.Path, id!, request.Body, ts!, sig!, AcceptV1) == NodeAuthResult.Ok);
            if (!verified)
            {
                return Problem(401, "bad-signature");
            }

            if (clocked)
            {
                var seconds = long.Parse(ts!, CultureInfo.InvariantCulture);
                if (seconds <= node.Clock)
                {
                    return Problem(401, "replayed", "X-Node-Ts is not later than the last accepted request");
                }

                node.Clock = seconds;
            }

            return ok(request.Json);
        }
    }

    private void Update(string nodeId, Action<StubNode> change)
    {
        lock (_gate)
        {
            if (!_nodes.TryGetValue(nodeId, out var node))
            {
                node = new StubNode();
                _nodes[nodeId] = node;
            }

            change(node);
        }
    }

    private T? Read<T>(string nodeId, Func<StubNode, T> read)
    {
        lock (_gate)
        {
            return _nodes.TryGetValue(nodeId, out var node) ? read(node) : default;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
