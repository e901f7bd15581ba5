using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Dgon.Domain.Receipts;
using Dgon.Agent.Manifest;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Dgon.Agent.Link;

/// <summary>
/// The agent's persistent, outbound link to the API (issue 13; seed 002 §2.3.3), beside the HTTP heartbeat loop:
/// <list type="number">
/// <item>Connects a <see cref="ClientWebSocket"/> to <c>ws(s)://{api}/v1/nodes/link</c> (http → ws, https → wss; plain
/// ws only to a loopback host unless <c>--insecure-http</c>, as for the API URL) with the headers <c>X-Node-Id</c>,
/// <c>X-Node-Ts</c> and <c>X-Node-Auth</c>: v2 HMAC with the node token over method <c>GET</c>, path
/// <c>/v1/nodes/link</c> and an empty body (<see cref="NodeAuth.SignHeadersV2"/>), the timestamp from the agent's one
/// <see cref="RequestClock"/> (so later than the last heartbeat's), and <c>User-Agent: dgon-agent/{version}</c>.</item>
/// <item>Sends <c>hello</c> with the signed manifest (<see cref="ManifestSignatures.Sign"/>) and expects <c>welcome</c>
/// within <see cref="HandshakeTimeout"/>; then sends a <c>state</c> frame and serves <c>dispatch</c> and
/// <c>cancel</c> (<see cref="WorkExecutor"/>), sends <c>state</c> on every state change, and a signed
/// <c>manifest</c> when the runtime's model list changed (checked on each heartbeat tick's runtime probe).</item>
/// <item>Keepalive: WebSocket pings every <see cref="KeepAliveInterval"/>; no pong within as long again aborts the
/// link.</item>
/// <item>Any failure (connect refused, 401 at the upgrade, close by the server, a frame that does not parse: close
/// 1007) drops the link; its running tasks are aborted, and it reconnects forever after exponential backoff with
/// full jitter, uniform in [0, min(30 s, 1 s × 2^n)) (<see cref="RetryPolicy.Ceiling"/>), n reset after each
/// welcome. A 401 means a stale token: the heartbeat loop re-registers and the next attempt uses the new token.</item>
/// <item>On stop (SIGTERM): state DRAINING, new dispatches answer <c>failure busy</c>, running tasks get up to
/// <see cref="DrainTimeout"/> to finish (then they are cancelled), and the link is closed with 1000.</item>
/// </list>
/// </summary>
public sealed class CoordinatorLink
{
    /// <summary>The link's path: <c>/v1/nodes/link</c>.</summary>
    public const string LinkPath = "/v1/nodes/link";

    /// <summary>Largest message accepted from the API: 16 MiB (a dispatch carries a whole chat request).</summary>
    public const int MaxMessageBytes = 16 * 1024 * 1024;

    /// <summary>WebSocket ping period: 15 s (issue 13).</summary>
    public static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);

    /// <summary>Longest reconnect delay: 30 s.</summary>
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>Time for the connect and the <c>welcome</c>: 10 s.</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long running tasks may finish after a stop: 30 s.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    private static readonly JsonSerializerOptions Json = LinkJsonContext.Default.Options;

    private readonly string _nodeId;
    private readonly RequestClock _clock;
    private readonly Func<NodeCredentials?> _credentials;
    private readonly Key _key;
    private readonly ManifestBuilder _manifests;
    private readonly WorkExecutor _executor;
    private readonly AgentStatus _status;
    private readonly NodeRuntime _runtime;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<double> _random;
    private readonly Channel<bool> _manifestCheck = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private volatile string[] _sentModels = [];
    private Channel<LinkMessage>? _outbox;

    /// <summary>Creates the link.</summary>
    /// <param name="api">The API base URL (<c>--api</c>).</param>
    /// <param name="insecureHttp">Whether ws:// to a non-loopback host is allowed (<c>--insecure-http</c>).</param>
    /// <param name="nodeId">Node id.</param>
    /// <param name="runtime">The runtime kind (Ollama's tick probe lists the models; others are re-listed each tick).</param>
    /// <param name="clock">The agent's timestamp source, shared with heartbeats (<see cref="NodeApiClient.Clock"/>).</param>
    /// <param name="credentials">The current node token; null until the node is registered.</param>
    /// <param name="key">The node key that signs manifests.</param>
    /// <param name="manifests">Manifest source.</param>
    /// <param name="executor">Work executor.</param>
    /// <param name="status">Live state.</param>
    /// <param name="time">Clock for delays.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="random">Jitter source in [0, 1); <see cref="Random.Shared"/> when null.</param>
    /// <exception cref="ArgumentException"><paramref name="api"/> is plain http to a host that is not loopback and <paramref name="insecureHttp"/> is false.</exception>
    public CoordinatorLink(
        Uri api,
        bool insecureHttp,
        string nodeId,
        NodeRuntime runtime,
        RequestClock clock,
        Func<NodeCredentials?> credentials,
        Key key,
        ManifestBuilder manifests,
        WorkExecutor executor,
        AgentStatus status,
        TimeProvider time,
        ILogger logger,
        Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(manifests);
        ArgumentNullException.ThrowIfNull(executor);
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        Uri = LinkUri(api);
        if (Uri.Scheme == "ws" && !insecureHttp && !AgentOptions.IsLoopback(Uri))
        {
            throw new ArgumentException($"refusing plain ws:// to {Uri.IdnHost}: use https:// for --api, or --insecure-http", nameof(api));
        }

        (_nodeId, _runtime, _clock, _credentials, _key, _manifests, _executor, _status, _time, _logger) =
            (nodeId, runtime, clock, credentials, key, manifests, executor, status, time, logger);
        _random = random ?? Random.Shared.NextDouble;
        _status.StateChanged += (_, _, _) => _outbox?.Writer.TryWrite(new StateMessage(_status.State, _status.InFlight));
    }

    /// <summary>The link's URL.</summary>
    public Uri Uri { get; }

    /// <summary>How long running tasks may finish after a stop (<see cref="DrainTimeout"/>; shorter in tests).</summary>
    public TimeSpan DrainLimit { get; init; } = DrainTimeout;

    /// <summary><c>{api}/v1/nodes/link</c> with http → ws and https → wss (the API's path prefix kept).</summary>
    public static Uri LinkUri(Uri api)
    {
        ArgumentNullException.ThrowIfNull(api);
        var builder = new UriBuilder(TokenStore.NormaliseApi(api) + LinkPath)
        {
            Scheme = api.Scheme == Uri.UriSchemeHttps ? "wss" : "ws",
        };
        return builder.Uri;
    }

    /// <summary>The reconnect delay before attempt <paramref name="attempt"/> (0-based): <paramref name="random"/> × min(30 s, 1 s × 2^attempt).</summary>
    public static TimeSpan Backoff(int attempt, double random)
    {
        var ceiling = RetryPolicy.Ceiling(attempt);
        if (ceiling > MaxBackoff)
        {
            ceiling = MaxBackoff;
        }

        return TimeSpan.FromTicks((long)(Math.Clamp(random, 0, 1) * ceiling.Ticks));
    }

    /// <summary>
    /// Called by the heartbeat loop after each runtime probe: for Ollama, when the probed model names differ from the
    /// manifest last sent, a new manifest is built and sent; for other runtimes the list is fetched again
    /// (<c>/v1/models</c>) and sent when it differs. Never blocks.
    /// </summary>
    public void OnRuntimeProbed(OllamaStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        if (_runtime != NodeRuntime.Ollama || !status.Models.Select(m => m.Name).Order(StringComparer.Ordinal).SequenceEqual(_sentModels))
        {
            _manifestCheck.Writer.TryWrite(true);
        }
    }

    /// <summary>Keeps the link until <paramref name="stop"/>, then drains (see the type's remarks) and returns.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var attempt = 0;
        var waiting = false;
        while (!stop.IsCancellationRequested)
        {
            if (_credentials() is not { } credentials)
            {
                if (!waiting)
                {
                    waiting = true;
                    LinkLog.WaitingForCredentials(_logger);
                }

                if (!await DelayAsync(TimeSpan.FromMilliseconds(200), stop))
                {
                    break;
                }

                continue;
            }

            waiting = false;
            string? failure;
            bool welcomed;
            try
            {
                (welcomed, failure) = await SessionAsync(credentials, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }

            if (welcomed)
            {
                attempt = 0;
            }

            if (failure is null)
            {
                break; // drained and closed
            }

            _status.LinkDown(failure);
            var delay = Backoff(attempt++, _random());
            LinkLog.LinkDown(_logger, failure, delay.TotalMilliseconds);
            if (!await DelayAsync(delay, stop))
            {
                break;
            }
        }

        // stopped while not linked: nothing can run (tasks die with their link)
        _status.BeginDraining();
        _executor.StopAccepting();
        _status.LinkDown(null);
    }

    /// <summary>One connection: handshake, then serve until it drops (returns the reason) or until stop (drains; returns null).</summary>
    private async Task<(bool Welcomed, string? Failure)> SessionAsync(NodeCredentials credentials, CancellationToken stop)
    {
        using var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = KeepAliveInterval;
        socket.Options.KeepAliveTimeout = KeepAliveInterval;
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("User-Agent", "dgon-agent/" + ManifestBuilder.ClientVersion);
        var ts = await _clock.NextAsync(stop);
        foreach (var (name, value) in NodeAuth.SignHeadersV2(credentials.NodeId, credentials.Token, "GET", LinkPath, [], ts))
        {
            socket.Options.SetRequestHeader(name, value);
        }

        using var session = new CancellationTokenSource(); // not linked to stop: a stop drains the session first
        using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(stop))
        {
            handshake.CancelAfter(HandshakeTimeout);
            try
            {
                await socket.ConnectAsync(Uri, handshake.Token);
                var manifest = await _manifests.BuildAsync(handshake.Token);
                await SendAsync(socket, new HelloMessage(manifest, ManifestSignatures.Sign(_key, manifest)), handshake.Token);
                _sentModels = [.. manifest.Runtime.Models.Select(m => m.Id).Order(StringComparer.Ordinal)];
                var first = await ReceiveAsync(socket, handshake.Token);
                if (first is not WelcomeMessage welcome)
                {
                    return (false, first is null
                        ? $"the API closed the link before welcome ({Describe(socket)})"
                        : $"the API answered {first.GetType().Name} instead of welcome");
                }

                _status.LinkUp(welcome.Replica);
                LinkLog.LinkUp(_logger, Uri.AbsoluteUri, LogText.Clean(welcome.NodeId, 100)!, LogText.Clean(welcome.Replica, 100)!, manifest.Runtime.Models.Count);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException)
            {
                return (false, $"no welcome within {HandshakeTimeout.TotalSeconds:0} s");
            }
            catch (WebSocketException e)
            {
                return (false, UpgradeFailure(socket, e));
            }
            catch (HttpRequestException e)
            {
                return (false, $"cannot connect to {Uri}: {LogText.Clean(e.Message, 300)}");
            }
            catch (JsonException e)
            {
                await CloseQuietlyAsync(socket, WebSocketCloseStatus.InvalidPayloadData, "invalid message");
                return (false, $"the API sent a frame that does not parse ({LogText.Clean(e.Message, 200)})");
            }
        }

        var outbox = Channel.CreateUnbounded<LinkMessage>(new UnboundedChannelOptions { SingleReader = true });
        _outbox = outbox;
        bool Post(LinkMessage m) => outbox.Writer.TryWrite(m);
        Post(new StateMessage(_status.State, _status.InFlight));
        var writer = WriteLoopAsync(socket, outbox.Reader, session.Token);
        var reader = ReadLoopAsync(socket, Post, session.Token);
        var manifests = ManifestLoopAsync(Post, session.Token);
        var stopSignal = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registration = stop.Register(() => stopSignal.TrySetResult(null));
        var stopped = stopSignal.Task;
        var ended = await Task.WhenAny(writer, reader, stopped);
        string? failure = null;
        if (ended == stopped)
        {
            _status.BeginDraining();
            _executor.StopAccepting();
            LinkLog.Draining(_logger, DrainLimit.TotalSeconds, _executor.InFlight);
            var idle = _executor.WaitIdleAsync(DrainLimit, CancellationToken.None);
            await Task.WhenAny(idle, writer, reader);
            if (!idle.IsCompleted || !await idle)
            {
                _executor.CancelAll();
                await _executor.WaitIdleAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
            }

            outbox.Writer.TryComplete();
            await Task.WhenAny(writer, Task.Delay(TimeSpan.FromSeconds(2), _time, CancellationToken.None));
            await CloseQuietlyAsync(socket, WebSocketCloseStatus.NormalClosure, "draining");
            LinkLog.LinkClosed(_logger, "the agent is stopping");
        }
        else
        {
            failure = await ended is { } reason ? reason : "the link ended";
        }

        _outbox = null;
        outbox.Writer.TryComplete();
        await session.CancelAsync(); // aborts the tasks of this link, the loops and the socket
        await IgnoreAsync(writer);
        await IgnoreAsync(reader);
        await IgnoreAsync(manifests);
        return (true, failure);
    }

    /// <summary>Sends the outbox's messages in order, one at a time (a WebSocket allows one send at a time).</summary>
    private static async Task<string?> WriteLoopAsync(ClientWebSocket socket, ChannelReader<LinkMessage> outbox, CancellationToken ct)
    {
        try
        {
            await foreach (var message in outbox.ReadAllAsync(ct))
            {
                await SendAsync(socket, message, ct);
            }

            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (WebSocketException e)
        {
            return $"sending failed ({LogText.Clean(e.Message, 200)})";
        }
    }

    /// <summary>Serves the API's frames until the link closes or fails; returns why.</summary>
    private async Task<string?> ReadLoopAsync(ClientWebSocket socket, Func<LinkMessage, bool> post, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var message = await ReceiveAsync(socket, ct);
                switch (message)
                {
                    case null:
                        return $"the API closed the link ({Describe(socket)})";
                    case DispatchMessage dispatch:
                        _executor.Start(dispatch, post, ct);
                        break;
                    case CancelMessage cancel:
                        _executor.Cancel(cancel.TaskId);
                        break;
                    default:
                        break; // welcome again, or a node → API type echoed: nothing to do
                }
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (WebSocketException e)
        {
            return $"the link broke ({LogText.Clean(e.Message, 200)})";
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidDataException)
        {
            await CloseQuietlyAsync(socket, WebSocketCloseStatus.InvalidPayloadData, "invalid message");
            return $"the API sent a frame that does not parse ({LogText.Clean(e.Message, 200)}); closed with 1007";
        }
    }

    /// <summary>Sends a signed <c>manifest</c> when the model list differs from the one last sent.</summary>
    private async Task ManifestLoopAsync(Func<LinkMessage, bool> post, CancellationToken ct)
    {
        try
        {
            await foreach (var _ in _manifestCheck.Reader.ReadAllAsync(ct))
            {
                var manifest = await _manifests.BuildAsync(ct);
                var models = manifest.Runtime.Models.Select(m => m.Id).Order(StringComparer.Ordinal).ToArray();
                if (models.SequenceEqual(_sentModels))
                {
                    continue;
                }

                if (post(new ManifestMessage(manifest, ManifestSignatures.Sign(_key, manifest))))
                {
                    _sentModels = models;
                    LinkLog.ManifestSent(_logger, models.Length, LogText.Clean(string.Join(", ", models), 500)!);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // link ended
        }
    }

    private static async Task SendAsync(ClientWebSocket socket, LinkMessage message, CancellationToken ct)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, LinkJsonContext.Default.LinkMessage);
        await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, ct);
    }

    /// <summary>Reads one text message; null when the API closed the link (the close is answered).</summary>
    /// <exception cref="JsonException">The message is not a link message.</exception>
    /// <exception cref="InvalidDataException">It is binary or larger than <see cref="MaxMessageBytes"/>.</exception>
    private static async Task<LinkMessage?> ReceiveAsync(ClientWebSocket socket, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(chunk, ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                await CloseQuietlyAsync(socket, WebSocketCloseStatus.NormalClosure, "closed by the API");
                return null;
            }

            if (result.MessageType != WebSocketMessageType.Text)
            {
                throw new InvalidDataException("a binary frame (the link speaks JSON text)");
            }

            buffer.Write(chunk, 0, result.Count);
            if (buffer.Length > MaxMessageBytes)
            {
                throw new InvalidDataException($"a message over {MaxMessageBytes} bytes");
            }

            if (result.EndOfMessage)
            {
                return JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), LinkJsonContext.Default.LinkMessage)
                    ?? throw new JsonException("null message");
            }
        }
    }

    private static async Task CloseQuietlyAsync(ClientWebSocket socket, WebSocketCloseStatus status, string reason)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await socket.CloseOutputAsync(status, reason, timeout.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the peer is gone
        }
    }

    private static string Describe(ClientWebSocket socket) =>
        socket.CloseStatus is { } status
            ? $"status {(int)status}{(string.IsNullOrEmpty(socket.CloseStatusDescription) ? "" : " " + LogText.Clean(socket.CloseStatusDescription, 200))}"
            : "no close status";

    private string UpgradeFailure(ClientWebSocket socket, WebSocketException e)
    {
        var code = socket.HttpStatusCode;
        return code switch
        {
            HttpStatusCode.Unauthorized => $"the API refused the link with 401 (the node token is stale or unknown; the heartbeat loop re-registers) at {Uri}",
            0 => $"cannot connect to {Uri}: {LogText.Clean(e.InnerException?.Message ?? e.Message, 300)}",
            _ => $"the API answered HTTP {(int)code} instead of upgrading {Uri} to a WebSocket",
        };
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, _time, stop);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task IgnoreAsync(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // the link is over
        }
    }
}
