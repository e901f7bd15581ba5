using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Receipts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests.Support;

/// <summary>What the fake knows about a node: its token (HMAC key) and enrolled public key.</summary>
public sealed record LinkNode(string? Token, string? PublicKey);

/// <summary>An upgrade attempt and how the fake answered it.</summary>
public sealed record LinkAttempt(string? NodeId, long? Ts, int Status, string? Problem);

/// <summary>
/// An in-process stand-in for the API's <c>GET /v1/nodes/link</c> (Kestrel WebSockets, real loopback): checks the
/// v2 HMAC headers with <see cref="NodeAuth.Verify"/> over GET, the path and an empty body, the ±120 s window and a
/// strictly increasing timestamp (401 problem otherwise); then expects <c>hello</c>, verifies its manifest with
/// <see cref="ManifestSignatures.Verify"/> (close 1008 when invalid), answers <c>welcome</c> and hands the session to
/// the test.
/// </summary>
public sealed class FakeLink
{
    private readonly Func<string, LinkNode?> _nodes;
    private readonly Func<string, long, bool> _advanceClock;
    private readonly Dictionary<string, long> _clock = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly ConcurrentQueue<LinkAttempt> _attempts = new();

    /// <param name="nodes">Node lookup.</param>
    /// <param name="advanceClock">Replay clock: accepts and records ts when later than the last; null: the fake's own.</param>
    public FakeLink(Func<string, LinkNode?> nodes, Func<string, long, bool>? advanceClock = null)
    {
        _nodes = nodes;
        _advanceClock = advanceClock ?? OwnClock;
    }

    public Channel<LinkSession> Sessions { get; } = Channel.CreateUnbounded<LinkSession>();

    public IReadOnlyList<LinkAttempt> Attempts => [.. _attempts];

    public string Replica { get; set; } = "fake-replica";

    public static async Task<(FakeLink Link, LoopbackServer Server)> StartAsync(Func<string, LinkNode?> nodes)
    {
        var link = new FakeLink(nodes);
        var server = await LoopbackServer.StartAsync(link.Map);
        return (link, server);
    }

    private bool OwnClock(string id, long ts)
    {
        lock (_gate)
        {
            if (_clock.TryGetValue(id, out var last) && ts <= last)
            {
                return false;
            }

            _clock[id] = ts;
            return true;
        }
    }

    public void Map(WebApplication app)
    {
        app.UseWebSockets();
        app.Map("/v1/nodes/link", HandleAsync);
    }

    public async Task<LinkSession> NextSessionAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        return await Sessions.Reader.ReadAsync(cts.Token);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var id = context.Request.Headers[NodeAuth.NodeIdHeader].ToString();
        var ts = context.Request.Headers[NodeAuth.TimestampHeader].ToString();
        var sig = context.Request.Headers[NodeAuth.SignatureHeader].ToString();
        long? seconds = long.TryParse(ts, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;
        string? problem = null;
        var node = string.IsNullOrEmpty(id) ? null : _nodes(id);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            problem = "not-a-websocket";
        }
        else if (NodeAuth.CheckHeaders(id, ts, sig, DateTimeOffset.UtcNow) is not NodeAuthResult.Ok and var check)
        {
            problem = check.ToString();
        }
        else if (node?.Token is not { } token)
        {
            problem = "unknown-node";
        }
        else if (NodeAuth.Verify(token, "GET", "/v1/nodes/link", id, [], ts, sig, acceptV1: false) != NodeAuthResult.Ok)
        {
            problem = "bad-signature";
        }
        else if (!_advanceClock(id, seconds!.Value))
        {
            problem = "replayed";
        }

        if (problem is not null)
        {
            _attempts.Enqueue(new LinkAttempt(id, seconds, 401, problem));
            context.Response.StatusCode = 401;
            context.Response.ContentType = "application/problem+json";
            await context.Response.WriteAsync($$"""{"type":"https://dgon.io/problems/{{problem}}","title":"{{problem}}","status":401}""");
            return;
        }

        _attempts.Enqueue(new LinkAttempt(id, seconds, 101, null));
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { KeepAliveInterval = TimeSpan.FromSeconds(15) });
        var session = new LinkSession(socket, seconds!.Value);
        var first = await session.ReceiveOneAsync(context.RequestAborted);
        if (first is not HelloMessage hello || !ManifestSignatures.Verify(node!.PublicKey, hello.Manifest, hello.Signature))
        {
            await socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, "hello with a valid manifest signature expected", CancellationToken.None);
            return;
        }

        session.Hello = hello;
        await session.SendAsync(new WelcomeMessage(id, Replica));
        Sessions.Writer.TryWrite(session);
        await session.PumpAsync(context.RequestAborted);
    }
}

/// <summary>One accepted link: the hello, every later message, and sending to the agent.</summary>
public sealed class LinkSession(WebSocket socket, long ts)
{
    private readonly Channel<LinkMessage> _received = Channel.CreateUnbounded<LinkMessage>();
    private readonly ConcurrentQueue<LinkMessage> _all = new();
    private readonly List<LinkMessage> _pending = [];
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly TaskCompletionSource<WebSocketCloseStatus?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Ts { get; } = ts;

    public HelloMessage Hello { get; set; } = null!;

    public IReadOnlyList<LinkMessage> All => [.. _all];

    /// <summary>Completes when the agent closed the link (with its close status) or it broke (null).</summary>
    public Task<WebSocketCloseStatus?> Closed => _closed.Task;

    public async Task SendAsync(LinkMessage message)
    {
        await _send.WaitAsync();
        try
        {
            await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message, LinkJsonContext.Default.LinkMessage), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>Drops the connection without a close handshake.</summary>
    public void Abort() => socket.Abort();

    /// <summary>The next message of type <typeparamref name="T"/> matching <paramref name="where"/>, among those not taken yet (others stay for later calls).</summary>
    public async Task<T> NextAsync<T>(Func<T, bool>? where = null, TimeSpan? timeout = null)
        where T : LinkMessage
    {
        lock (_pending)
        {
            var index = _pending.FindIndex(p => p is T t && (where is null || where(t)));
            if (index >= 0)
            {
                var found = (T)_pending[index];
                _pending.RemoveAt(index);
                return found;
            }
        }

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            LinkMessage m;
            try
            {
                m = await _received.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no {typeof(T).Name} within the deadline; received: {string.Join(", ", All.Select(x => x.GetType().Name))}");
            }

            if (m is T t && (where is null || where(t)))
            {
                return t;
            }

            lock (_pending)
            {
                _pending.Add(m);
            }
        }
    }

    internal async Task<LinkMessage?> ReceiveOneAsync(CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(chunk, ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            buffer.Write(chunk, 0, result.Count);
            if (result.EndOfMessage)
            {
                return JsonSerializer.Deserialize(buffer.ToArray(), LinkJsonContext.Default.LinkMessage);
            }
        }
    }

    internal async Task PumpAsync(CancellationToken ct)
    {
        try
        {
            while (await ReceiveOneAsync(ct) is { } message)
            {
                _all.Enqueue(message);
                _received.Writer.TryWrite(message);
            }

            _closed.TrySetResult(socket.CloseStatus);
            if (socket.State == WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            _closed.TrySetResult(null);
        }
    }
}
