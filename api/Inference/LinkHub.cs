using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Dgon.Domain.Contracts;

namespace Dgon.Api.Inference;

/// <summary>
/// One node's live link on this replica: its WebSocket, its latest verified manifest, and the tasks dispatched to it.
/// Sends are serialised (one writer at a time on the socket); the slot count (<see cref="InFlight"/>) never exceeds
/// the manifest's <c>max_parallel</c>.
/// </summary>
public sealed class NodeLink
{
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly WebSocket _socket;
    private int _inFlight;

    /// <summary>A link over an accepted socket with a verified manifest.</summary>
    public NodeLink(string nodeId, WebSocket socket, CapabilityManifest manifest)
    {
        NodeId = nodeId;
        _socket = socket;
        Manifest = manifest;
    }

    /// <summary>The authenticated node.</summary>
    public string NodeId { get; }

    /// <summary>The latest verified manifest (replaced by newer <c>manifest</c> frames).</summary>
    public CapabilityManifest Manifest { get; set; }

    /// <summary>The agent's last reported state (<c>READY</c>, <c>EXECUTING</c>, <c>IDLE</c>, <c>DRAINING</c>), or null.</summary>
    public string? State { get; set; }

    /// <summary>Tasks running on the node now, as counted here.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Slots of the node (manifest <c>max_parallel</c>, at least 1).</summary>
    public int Capacity => Math.Max(1, Manifest.MaxParallel);

    /// <summary>Whether the link is closing or closed (no new work).</summary>
    public bool Closed { get; private set; }

    /// <summary>Tasks by id.</summary>
    internal ConcurrentDictionary<string, LinkTask> Tasks { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether the manifest lists <paramref name="model"/> (exact id).</summary>
    public bool Serves(string model) => Manifest.Runtime.Models.Any(m => string.Equals(m.Id, model, StringComparison.Ordinal));

    /// <summary>Takes a slot when one is free (in-flight below capacity, link open and not draining).</summary>
    public bool TryReserve()
    {
        while (true)
        {
            var current = Volatile.Read(ref _inFlight);
            if (Closed || State == "DRAINING" || current >= Capacity)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _inFlight, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>Gives a slot back.</summary>
    internal void Release() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Marks the link closed: no new reservations.</summary>
    internal void MarkClosed() => Closed = true;

    /// <summary>Sends one frame (UTF-8 JSON text message).</summary>
    /// <exception cref="WebSocketException">The socket failed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired.</exception>
    public async Task SendAsync(LinkMessage message, CancellationToken cancellationToken)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, LinkJsonContext.Default.LinkMessage);
        await _send.WaitAsync(cancellationToken);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>Closes the socket's output with <paramref name="status"/> (best effort, bounded by 5 s).</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string description)
    {
        MarkClosed();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _send.WaitAsync(timeout.Token);
            try
            {
                if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await _socket.CloseOutputAsync(status, description, timeout.Token);
                }
            }
            finally
            {
                _send.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the peer is gone already
        }
    }
}

/// <summary>
/// One dispatched task: the frames the node sends for it (<c>chunk</c>…, then one <c>result</c> or <c>failure</c>),
/// in order, on <see cref="Messages"/>. The link's slot is held until <see cref="LinkHub.Finish"/>.
/// </summary>
public sealed class LinkTask
{
    private int _finished;

    internal LinkTask(string taskId, NodeLink link, string model)
    {
        TaskId = taskId;
        Link = link;
        Model = model;
    }

    /// <summary>Task id (= receipt id).</summary>
    public string TaskId { get; }

    /// <summary>The link the task runs on.</summary>
    public NodeLink Link { get; }

    /// <summary>The model id dispatched.</summary>
    public string Model { get; }

    /// <summary>Whether a chunk has arrived (a failure after it cannot move to another node).</summary>
    public bool SawChunk { get; internal set; }

    /// <summary>The node's frames for this task; completed after the last one.</summary>
    public Channel<LinkMessage> Messages { get; } = Channel.CreateUnbounded<LinkMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });

    /// <summary>Marks the task finished once; true for the first caller.</summary>
    internal bool TryFinish() => Interlocked.Exchange(ref _finished, 1) == 0;
}

/// <summary>
/// The links this replica holds (issue 13), a singleton: attaches and detaches links, reserves slots and dispatches
/// tasks, and routes each <c>chunk</c>, <c>result</c> and <c>failure</c> frame to its waiting request. When a link
/// goes, each of its tasks gets a <c>failure</c> with code <c>link_lost</c> (<c>before_first_chunk</c> true when no
/// chunk had arrived, so the gateway retries it elsewhere).
/// </summary>
public sealed class LinkHub
{
    private readonly ConcurrentDictionary<string, NodeLink> _links = new(StringComparer.Ordinal);
    private TaskCompletionSource _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The links held now.</summary>
    public IEnumerable<NodeLink> Links => _links.Values;

    /// <summary>Ids of the nodes linked here.</summary>
    public ICollection<string> NodeIds => _links.Keys;

    /// <summary>Raised after a link was attached or detached (node id).</summary>
    public event Action<string>? Changed;

    /// <summary>The node's link here, or null.</summary>
    public NodeLink? Get(string nodeId) => _links.TryGetValue(nodeId, out var link) ? link : null;

    /// <summary>Attaches a link; returns the link it replaced (the node reconnected), which the caller closes.</summary>
    public NodeLink? Attach(NodeLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        NodeLink? previous = null;
        _links.AddOrUpdate(link.NodeId, link, (_, old) =>
        {
            previous = old;
            return link;
        });
        if (previous is not null)
        {
            FailAll(previous);
        }

        Changed?.Invoke(link.NodeId);
        PulseSlot();
        return previous;
    }

    /// <summary>Detaches a link (if still the node's current one) and fails its tasks.</summary>
    /// <returns>Whether it was the node's current link.</returns>
    public bool Detach(NodeLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        link.MarkClosed();
        var removed = _links.TryRemove(new KeyValuePair<string, NodeLink>(link.NodeId, link));
        FailAll(link);
        if (removed)
        {
            Changed?.Invoke(link.NodeId);
        }

        return removed;
    }

    /// <summary>
    /// Dispatches a task on <paramref name="link"/> if it has a free slot: reserves it, registers the task and sends
    /// the <c>dispatch</c> frame. Returns null (and holds nothing) when no slot was free or the send failed.
    /// </summary>
    public async Task<LinkTask?> DispatchAsync(NodeLink link, string taskId, string model, JsonElement request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(link);
        if (!link.TryReserve())
        {
            return null;
        }

        var task = new LinkTask(taskId, link, model);
        link.Tasks[taskId] = task;
        try
        {
            await link.SendAsync(new DispatchMessage(taskId, model, request, (int)Math.Ceiling(timeout.TotalSeconds)), cancellationToken);
            return task;
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            Finish(task);
            return null;
        }
    }

    /// <summary>Routes one frame the node sent: <c>chunk</c>, <c>result</c>, <c>failure</c>; others are not the hub's.</summary>
    /// <returns>False when the frame names no task of this link (late frames after a cancel: ignored).</returns>
    public bool Route(NodeLink link, LinkMessage message)
    {
        ArgumentNullException.ThrowIfNull(link);
        var taskId = message switch
        {
            ChunkMessage c => c.TaskId,
            ResultMessage r => r.TaskId,
            FailureMessage f => f.TaskId,
            _ => null,
        };
        if (taskId is null || !link.Tasks.TryGetValue(taskId, out var task))
        {
            return false;
        }

        if (message is ChunkMessage)
        {
            task.SawChunk = true;
            task.Messages.Writer.TryWrite(message);
            return true;
        }

        task.Messages.Writer.TryWrite(message);
        Finish(task);
        return true;
    }

    /// <summary>Ends a task: completes its frames, forgets it, releases the slot (once; later calls do nothing).</summary>
    public void Finish(LinkTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (!task.TryFinish())
        {
            return;
        }

        task.Messages.Writer.TryComplete();
        task.Link.Tasks.TryRemove(task.TaskId, out _);
        task.Link.Release();
        PulseSlot();
    }

    /// <summary>Completes when a slot is freed or a link attached (or right away if that happened since the last pulse).</summary>
    public Task SlotFreedAsync() => Volatile.Read(ref _slotFreed).Task;

    private void PulseSlot() => Interlocked.Exchange(ref _slotFreed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private void FailAll(NodeLink link)
    {
        link.MarkClosed();
        foreach (var task in link.Tasks.Values)
        {
            task.Messages.Writer.TryWrite(new FailureMessage(task.TaskId, "link_lost", $"the link to node '{link.NodeId}' closed", !task.SawChunk));
            Finish(task);
        }
    }
}
