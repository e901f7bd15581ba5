using System.Threading.Channels;
using Dgon.Domain.Ports;

namespace Dgon.Api.Fleet;

/// <summary>
/// Group commit of the heartbeats that must be durable before their response (issue 11: a phase change, or a node
/// silent for most of the grace period), one statement per batch through <see cref="INodeStore.WriteThroughAsync"/>.
/// </summary>
public sealed class HeartbeatGroupCommit(INodeStore store)
    : GroupCommit<HeartbeatWrite>((batch, ct) => store.WriteThroughAsync(batch, ct), w => w.Observation.NodeId);

/// <summary>
/// Group commit (issue 11): callers wait while <see cref="Workers"/> loops each write everything queued (up to
/// <see cref="BatchSize"/>, one item per node) in one statement, so a fleet coming online at once costs one commit
/// per batch instead of one transaction per node. A failed statement fails every caller of its batch (they answer
/// 503). Bounded: at most <see cref="Capacity"/> items wait; more wait to enqueue.
/// </summary>
/// <typeparam name="T">An item; <c>key</c> gives its node id.</typeparam>
public class GroupCommit<T> : IAsyncDisposable
    where T : class
{
    /// <summary>Most heartbeats per statement.</summary>
    public const int BatchSize = 5000;

    /// <summary>Statements in flight at once (so one batch's commit overlaps the next one's collection).</summary>
    public const int Workers = 2;

    /// <summary>Most queued writes.</summary>
    public const int Capacity = 50_000;

    private readonly Func<IReadOnlyList<T>, CancellationToken, Task<IReadOnlySet<string>>> _write;
    private readonly Func<T, string> _key;
    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.Wait });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _workers;
    private int _disposed;

    private sealed record Pending(T Write, TaskCompletionSource<bool> Done);

    /// <summary>Starts the workers.</summary>
    /// <param name="write">Writes a batch in one statement; returns the node ids it wrote (the others were refused by its condition).</param>
    /// <param name="key">The node id of an item.</param>
    public GroupCommit(Func<IReadOnlyList<T>, CancellationToken, Task<IReadOnlySet<string>>> write, Func<T, string> key)
    {
        (_write, _key) = (write, key);
        _workers = [.. Enumerable.Range(0, Workers).Select(_ => Task.Run(RunAsync))];
    }

    /// <summary>Writes <paramref name="write"/> with the next batch.</summary>
    /// <returns>True when durable; false when the statement's condition refused it (nothing written for it).</returns>
    /// <exception cref="Exception">The batch's statement failed.</exception>
    public async Task<bool> WriteAsync(T write, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _queue.Writer.WriteAsync(new Pending(write, done), cancellationToken);
        return await done.Task.WaitAsync(cancellationToken);
    }

    private async Task RunAsync()
    {
        var batch = new List<Pending>(BatchSize);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        Pending? carried = null;
        try
        {
            while (carried is not null || await _queue.Reader.WaitToReadAsync(_stopping.Token))
            {
                if (carried is not null)
                {
                    batch.Add(carried);
                    ids.Add(_key(carried.Write));
                    carried = null;
                }

                while (batch.Count < BatchSize && _queue.Reader.TryRead(out var next))
                {
                    // One row per node per statement: a second heartbeat of the same node waits for the next batch.
                    if (!ids.Add(_key(next.Write)))
                    {
                        carried = next;
                        break;
                    }

                    batch.Add(next);
                }

                try
                {
                    var written = await _write([.. batch.Select(p => p.Write)], _stopping.Token);
                    foreach (var pending in batch)
                    {
                        pending.Done.TrySetResult(written.Contains(_key(pending.Write)));
                    }
                }
                catch (Exception e)
                {
                    foreach (var pending in batch)
                    {
                        pending.Done.TrySetException(e);
                    }
                }

                batch.Clear();
                ids.Clear();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            carried?.Done.TrySetCanceled();
            while (_queue.Reader.TryRead(out var left))
            {
                left.Done.TrySetCanceled();
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Idempotent: a singleton registered under two service types is disposed once per registration.</remarks>
    public async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        await Task.WhenAll(_workers);
        _stopping.Dispose();
    }
}
