using System.Threading.Channels;
using Dgon.Domain.Ports;

namespace Dgon.Api.Fleet;

/// <summary>
/// Keeps this replica's memory in step with every other writer (issue 11), like an informer's list and watch:
/// listens on <see cref="INodeChangeFeed"/>, and on each (re)connection reloads the whole <see cref="NodeTable"/>
/// (standalone mode; Kubernetes mode has no table) and lets go of every request clock it held; then reloads each
/// changed node, batched, and applies request-clock claims. Start-up waits for the first full load, so the API
/// never answers from an empty table. A lost connection is retried with backoff (1 s doubling to 30 s).
/// </summary>
public sealed partial class NodeTableSync(
    INodeChangeFeed feed,
    NodeRequestClock clock,
    IServiceProvider services,
    ILogger<NodeTableSync> logger) : BackgroundService
{
    /// <summary>Most node ids reloaded in one query.</summary>
    public const int ReloadBatch = 1000;

    private readonly TaskCompletionSource _firstLoad = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Channel<string> _changed = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly NodeTable? _table = services.GetService<NodeTable>();
    private readonly INodeStore? _store = services.GetService<INodeStore>();

    // A full load and a batch of reloads never interleave: a change announced during the load's snapshot is reloaded
    // after it, so neither a deletion nor a registration made meanwhile is undone by the load.
    private readonly SemaphoreSlim _loading = new(1, 1);

    /// <summary>Starts listening and waits until the first full load is done (or start-up is cancelled).</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await base.StartAsync(cancellationToken);
        await _firstLoad.Task.WaitAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reloads = _table is null ? Task.CompletedTask : ReloadChangedAsync(stoppingToken);
        var backoff = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await feed.ListenAsync(OnConnectedAsync, id => _changed.Writer.TryWrite(id), clock.OnClaimed, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                LogFeedLost(e, backoff.TotalSeconds);
                try
                {
                    await Task.Delay(backoff, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                backoff = TimeSpan.FromSeconds(Math.Min(30, backoff.TotalSeconds * 2));
            }
        }

        _changed.Writer.TryComplete();
        await reloads;
    }

    private async Task OnConnectedAsync(CancellationToken ct)
    {
        clock.ReleaseAll();
        if (_table is not null && _store is not null)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            await _loading.WaitAsync(ct);
            try
            {
                await _table.ReplaceAllAsync(_store.LoadAllAsync(ct), ct);
            }
            finally
            {
                _loading.Release();
            }

            LogLoaded(_table.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        _firstLoad.TrySetResult();
    }

    private async Task ReloadChangedAsync(CancellationToken ct)
    {
        var batch = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            while (await _changed.Reader.WaitToReadAsync(ct))
            {
                while (batch.Count < ReloadBatch && _changed.Reader.TryRead(out var id))
                {
                    batch.Add(id);
                }

                await _loading.WaitAsync(ct);
                try
                {
                    var found = await _store!.LoadAsync(batch, ct);
                    foreach (var node in found)
                    {
                        _table!.Upsert(node);
                        batch.Remove(node.Node.Id);
                    }

                    foreach (var gone in batch)
                    {
                        if (_table!.Remove(gone))
                        {
                            clock.Forget(gone);
                        }
                    }

                    batch.Clear();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Keep the batch and retry: the store is down; the feed will reconnect and reload everything anyway.
                    LogReloadFailed(e, batch.Count);
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }
                finally
                {
                    _loading.Release();
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node table loaded: {Count} nodes in {Milliseconds:0} ms")]
    private partial void LogLoaded(int count, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node change feed lost; reconnecting in {Seconds} s (then everything is reloaded)")]
    private partial void LogFeedLost(Exception error, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reloading {Count} changed nodes failed; retrying")]
    private partial void LogReloadFailed(Exception error, int count);
}
