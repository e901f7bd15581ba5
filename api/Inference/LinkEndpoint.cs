using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using Dgon.Api.Http;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Ports;
using Dgon.Domain.Receipts;
using Dgon.Persistence;

namespace Dgon.Api.Inference;

/// <summary>
/// <c>GET /v1/nodes/link</c>, the coordinator link's server end (issue 13, <see cref="LinkMessage"/>):
/// <list type="number">
/// <item>Before the upgrade, the request is authenticated like a heartbeat: <c>X-Node-Id</c>, <c>X-Node-Ts</c>,
/// <c>X-Node-Auth</c> v2 over method <c>GET</c>, path <c>/v1/nodes/link</c> and an empty body, the timestamp later
/// than the node's last accepted one (<see cref="ReplayRule.Clocked"/>). Failure → 401 problem+json (429 past the
/// address's failure budget) and no upgrade; a v1 signature → 401 <c>bad-signature</c>; an authentic request that
/// is not a WebSocket upgrade → 400 problem+json <c>websocket-required</c>.</item>
/// <item>After the upgrade the node's first frame must be <c>hello</c> within 10 s, its manifest naming the node and
/// signed by the node's enrolled key (<see cref="ManifestSignatures"/>). A node without an enrolled key (a seed
/// agent) or a bad signature → close 1008 (policy violation); a frame that is not a link message → 1007; a first
/// frame other than hello → 1002; no hello in time → 1008; a frame over 1 MiB → 1009; binary frames → 1003.</item>
/// <item>Then the manifest is stored (in memory and <c>node_manifests</c>), the link recorded (<c>node_links</c>:
/// this replica's id and address) and <c>welcome</c> sent. A second link of the same node replaces the first (closed
/// 1000 "replaced"; its tasks fail).</item>
/// <item>Later frames: <c>manifest</c> (verified like hello; replaces the stored one when its <c>issued_at</c> is not
/// older; a bad signature → 1008), <c>state</c>, and <c>chunk</c>/<c>result</c>/<c>failure</c> of dispatched tasks
/// (routed by <see cref="LinkHub"/>; unknown task ids ignored).</item>
/// <item>On shutdown the API closes every link with 1001 (going away); the agent reconnects elsewhere.</item>
/// </list>
/// </summary>
public static partial class LinkEndpoint
{
    /// <summary>Path of the link.</summary>
    public const string Path = "/v1/nodes/link";

    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapLinkEndpoint(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, LinkAsync)
            .WithTags("Nodes")
            .WithName("NodeLink")
            .WithSummary("WebSocket coordinator link of a node (HMAC v2 over GET /v1/nodes/link with an empty body); frames: hello, welcome, dispatch, chunk, result, failure, cancel, manifest, state")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        return app;
    }

    private static async Task<IResult> LinkAsync(
        HttpContext context,
        SignedRequestReader reader,
        INodeRegistry registry,
        LinkHub hub,
        PostgresInferenceLinks store,
        Fleet.ReplicaIdentity replica,
        ReplicaAddress address,
        IHostApplicationLifetime lifetime,
        ILoggerFactory loggers)
    {
        var ct = context.RequestAborted;
        var signature = context.Request.Headers[NodeAuth.SignatureHeader].ToString();
        if (signature.Length > 0 && NodeAuth.SchemeOf(signature) != SignatureScheme.V2)
        {
            return Problems.Unauthorized(NodeAuthResult.BadSignature);
        }

        var authenticated = await reader.AuthenticateBodylessAsync(context.Request, ReplayRule.Clocked, ct);
        if (authenticated.Error is not null)
        {
            return authenticated.Error;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, type: Problems.TypeBase + "websocket-required", title: "WebSocket upgrade required",
                detail: $"{Path} is a WebSocket endpoint: send an upgrade request (Connection: Upgrade, Upgrade: websocket)");
        }

        var nodeId = authenticated.Value!;
        var logger = loggers.CreateLogger("Dgon.Api.Inference.Link");
        var publicKey = (await registry.GetCredentialsAsync(nodeId, ct))?.PublicKey;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { KeepAliveInterval = InferenceOptions.KeepAliveInterval });
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct, lifetime.ApplicationStopping);
        if (publicKey is null)
        {
            LogRefused(logger, nodeId, "the node has no enrolled key");
            await CloseAsync(socket, WebSocketCloseStatus.PolicyViolation, "a node without an enrolled key cannot link; enroll with a key");
            return Results.Empty;
        }

        NodeLink? link = null;
        try
        {
            using var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
            helloTimeout.CancelAfter(InferenceOptions.HelloTimeout);
            Frame first;
            try
            {
                first = await ReceiveAsync(socket, helloTimeout.Token);
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                await CloseAsync(socket, WebSocketCloseStatus.PolicyViolation, "no hello within 10 s");
                return Results.Empty;
            }

            if (first.Close is { } close)
            {
                await CloseAsync(socket, close.Status, close.Reason);
                return Results.Empty;
            }

            if (first.Message is not HelloMessage hello)
            {
                await CloseAsync(socket, WebSocketCloseStatus.ProtocolError, "the first frame must be hello");
                return Results.Empty;
            }

            if (!string.Equals(hello.Manifest.NodeId, nodeId, StringComparison.Ordinal) || !ManifestSignatures.Verify(publicKey, hello.Manifest, hello.Signature))
            {
                LogRefused(logger, nodeId, "the hello's manifest does not verify under the node's key");
                await CloseAsync(socket, WebSocketCloseStatus.PolicyViolation, "the manifest signature does not verify under the node's enrolled key");
                return Results.Empty;
            }

            link = new NodeLink(nodeId, socket, hello.Manifest);
            await store.SaveManifestAsync(nodeId, ManifestJson(hello.Manifest), hello.Manifest.IssuedAt, stopping.Token);
            await store.SaveLinkAsync(nodeId, replica.Id, address.Value, stopping.Token);
            if (hub.Attach(link) is { } replaced)
            {
                await replaced.CloseAsync(WebSocketCloseStatus.NormalClosure, "replaced by a newer link of the node");
            }

            await link.SendAsync(new WelcomeMessage(nodeId, replica.Id), stopping.Token);
            LogLinked(logger, nodeId, hello.Manifest.Runtime.Models.Count, hello.Manifest.MaxParallel);
            while (true)
            {
                var frame = await ReceiveAsync(socket, stopping.Token);
                if (frame.Close is { } closing)
                {
                    await link.CloseAsync(closing.Status, closing.Reason);
                    break;
                }

                switch (frame.Message)
                {
                    case ManifestMessage changed:
                        if (!string.Equals(changed.Manifest.NodeId, nodeId, StringComparison.Ordinal) || !ManifestSignatures.Verify(publicKey, changed.Manifest, changed.Signature))
                        {
                            await link.CloseAsync(WebSocketCloseStatus.PolicyViolation, "the manifest signature does not verify under the node's enrolled key");
                            return Results.Empty;
                        }

                        if (changed.Manifest.IssuedAt >= link.Manifest.IssuedAt)
                        {
                            link.Manifest = changed.Manifest;
                            await store.SaveManifestAsync(nodeId, ManifestJson(changed.Manifest), changed.Manifest.IssuedAt, stopping.Token);
                        }

                        break;
                    case StateMessage state:
                        link.State = state.State;
                        break;
                    case ChunkMessage or ResultMessage or FailureMessage:
                        hub.Route(link, frame.Message);
                        break;
                    default:
                        await link.CloseAsync(WebSocketCloseStatus.ProtocolError, "unexpected frame from a node");
                        return Results.Empty;
                }
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            if (link is not null)
            {
                await link.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, "the API is shutting down");
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // the node went away
        }
        finally
        {
            if (link is not null && hub.Detach(link))
            {
                LogUnlinked(logger, nodeId);
                try
                {
                    await store.RemoveLinkAsync(nodeId, replica.Id, CancellationToken.None);
                }
                catch (Npgsql.NpgsqlException e)
                {
                    LogRemoveFailed(logger, nodeId, e.Message);
                }
            }
        }

        return Results.Empty;
    }

    private static string ManifestJson(CapabilityManifest manifest) => JsonSerializer.Serialize(manifest, LinkJsonContext.Default.CapabilityManifest);

    private readonly record struct CloseRequest(WebSocketCloseStatus Status, string Reason);

    private readonly record struct Frame(LinkMessage? Message, CloseRequest? Close);

    // One whole message; a close frame, or a protocol breach the caller answers with a close.
    private static async Task<Frame> ReceiveAsync(WebSocket socket, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= InferenceOptions.MaxFrameBytes)
                    {
                        return new(null, new(WebSocketCloseStatus.MessageTooBig, "frames are limited to 1 MiB"));
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, InferenceOptions.MaxFrameBytes));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var result = await socket.ReceiveAsync(buffer.AsMemory(length), ct);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return new(null, new(WebSocketCloseStatus.NormalClosure, "bye"));
                }

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    return new(null, new(WebSocketCloseStatus.InvalidMessageType, "frames are UTF-8 JSON text messages"));
                }

                length += result.Count;
                if (result.EndOfMessage)
                {
                    break;
                }
            }

            try
            {
                var message = JsonSerializer.Deserialize(buffer.AsSpan(0, length), LinkJsonContext.Default.LinkMessage);
                return message is null
                    ? new(null, new(WebSocketCloseStatus.InvalidPayloadData, "the frame is not a link message"))
                    : new(message, null);
            }
            catch (Exception e) when (e is JsonException or NotSupportedException)
            {
                return new(null, new(WebSocketCloseStatus.InvalidPayloadData, "the frame is not a link message"));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task CloseAsync(WebSocket socket, WebSocketCloseStatus status, string reason)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(status, reason, timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // gone already
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} linked: {Models} models, max_parallel {MaxParallel}")]
    private static partial void LogLinked(ILogger logger, string nodeId, int models, int maxParallel);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} unlinked")]
    private static partial void LogUnlinked(ILogger logger, string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Link of node {NodeId} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string nodeId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove the link row of node {NodeId}: {Error}")]
    private static partial void LogRemoveFailed(ILogger logger, string nodeId, string error);
}
