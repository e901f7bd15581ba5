using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Dgon.Kubernetes.Controllers;
using k8s;

namespace Dgon.Kubernetes.Tests;

/// <summary>
/// An in-memory <see cref="IListerWatcher{T}"/> of DgonNodes: LIST pages the current state (continue token = offset),
/// each WATCH is a stream the test feeds (<see cref="Send"/>, <see cref="Fail"/>, <see cref="Close"/>); list failures
/// can be queued. The state is changed with <see cref="Put"/>/<see cref="Remove"/> (no event is sent by itself).
/// </summary>
public sealed class FakeListerWatcher : IListerWatcher<DgonNode>
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, DgonNode> _state = new(StringComparer.Ordinal);
    private readonly Queue<Exception> _listFailures = new();
    private readonly List<ListRequest> _lists = [];
    private readonly List<WatchRequest> _watches = [];
    private Channel<Func<(WatchEventType, DgonNode)>>? _current;
    private long _rv = 100;

    public string Resource => "dgonnodes.fake";

    public IReadOnlyList<ListRequest> Lists
    {
        get
        {
            lock (_gate)
            {
                return [.. _lists];
            }
        }
    }

    public IReadOnlyList<WatchRequest> Watches
    {
        get
        {
            lock (_gate)
            {
                return [.. _watches];
            }
        }
    }

    public string ResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _rv.ToString(CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>Creates or changes a node in the state (new resourceVersion) and returns it.</summary>
    public DgonNode Put(string name, string? wallet = null)
    {
        lock (_gate)
        {
            var node = Cluster.Node(name);
            node.Spec.WalletAddress = wallet;
            node.Metadata.Uid = "uid-" + name;
            node.Metadata.ResourceVersion = (++_rv).ToString(CultureInfo.InvariantCulture);
            _state[name] = node;
            return node;
        }
    }

    /// <summary>Removes a node from the state and returns its last version (with a new resourceVersion, as a DELETED event carries).</summary>
    public DgonNode Remove(string name)
    {
        lock (_gate)
        {
            var last = _state[name];
            _state.Remove(name);
            var node = Cluster.Node(name);
            node.Spec.WalletAddress = last.Spec.WalletAddress;
            node.Metadata.Uid = last.Metadata.Uid;
            node.Metadata.ResourceVersion = (++_rv).ToString(CultureInfo.InvariantCulture);
            return node;
        }
    }

    public void FailNextList(Exception error)
    {
        lock (_gate)
        {
            _listFailures.Enqueue(error);
        }
    }

    public Task<ListPage<DgonNode>> ListAsync(ListRequest request, CancellationToken ct)
    {
        lock (_gate)
        {
            _lists.Add(request);
            if (_listFailures.TryDequeue(out var error))
            {
                throw error;
            }

            var offset = request.Continue is null ? 0 : int.Parse(request.Continue, CultureInfo.InvariantCulture);
            var all = _state.Values.ToList();
            var count = request.Limit is { } limit ? Math.Min(limit, all.Count - offset) : all.Count - offset;
            var next = offset + count < all.Count ? (offset + count).ToString(CultureInfo.InvariantCulture) : null;
            return Task.FromResult(new ListPage<DgonNode>(all.GetRange(offset, count), _rv.ToString(CultureInfo.InvariantCulture), next));
        }
    }

    public async IAsyncEnumerable<(WatchEventType Type, DgonNode Object)> WatchAsync(WatchRequest request, [EnumeratorCancellation] CancellationToken ct)
    {
        var channel = Channel.CreateUnbounded<Func<(WatchEventType, DgonNode)>>();
        lock (_gate)
        {
            _watches.Add(request);
            _current = channel;
        }

        await foreach (var next in channel.Reader.ReadAllAsync(ct))
        {
            yield return next(); // throws for Fail()
        }
    }

    /// <summary>Delivers an event on the open watch.</summary>
    public void Send(WatchEventType type, DgonNode obj) => Writer().TryWrite(() => (type, obj));

    /// <summary>A BOOKMARK at a new resourceVersion (an object with only metadata.resourceVersion), as after unrelated writes.</summary>
    public void Bookmark()
    {
        string rv;
        lock (_gate)
        {
            rv = (++_rv).ToString(CultureInfo.InvariantCulture);
        }

        Send(WatchEventType.Bookmark, new DgonNode { Metadata = new V1ObjectMeta { ResourceVersion = rv } });
    }

    /// <summary>Ends the open watch with <paramref name="error"/> thrown from the stream (e.g. a 410 ERROR event).</summary>
    public void Fail(Exception error)
    {
        var writer = Writer();
        writer.TryWrite(() => throw error);
        writer.TryComplete();
    }

    /// <summary>Ends the open watch cleanly (the server's timeout).</summary>
    public void Close() => Writer().TryComplete();

    private ChannelWriter<Func<(WatchEventType, DgonNode)>> Writer()
    {
        lock (_gate)
        {
            return (_current ?? throw new InvalidOperationException("no watch open")).Writer;
        }
    }
}

/// <summary>A <see cref="FakeTimeProvider"/> that counts the timers created (to know a back-off delay has started before advancing).</summary>
public sealed class CountingTimeProvider() : FakeTimeProvider(new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero))
{
    private int _timers;

    public int TimersCreated => Volatile.Read(ref _timers);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        Interlocked.Increment(ref _timers);
        return timer;
    }
}
