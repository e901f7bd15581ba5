using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Dgon.Api.Fleet;

/// <summary>
/// Writes behind what heartbeats changed in memory (issue 11): every <see cref="Configuration.FleetOptions.FlushInterval"/>
/// the dirty nodes of <see cref="NodeTable"/> (standalone mode) in one <c>UPDATE … FROM unnest</c>, and the request
/// clock values in another, in batches of <see cref="BatchSize"/>. A failed write keeps its batch queued for the next
/// tick (logged at most once per 10 s); stopping the API flushes once more, so a graceful stop loses nothing and a
/// kill -9 at most one interval. Counts <c>dgon_write_behind_rows_total{store,result}</c> and
/// <c>dgon_write_behind_flush_duration_seconds</c>.
/// </summary>
public sealed partial class WriteBehindFlusher : BackgroundService
{
    /// <summary>Most rows per statement.</summary>
    public const int BatchSize = 5000;

    private readonly NodeRequestClock _clock;
    private readonly NodeTable? _table;
    private readonly Domain.Ports.INodeStore? _store;
    private readonly Configuration.FleetOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<WriteBehindFlusher> _logger;
    private readonly Counter<long> _rows;
    private readonly Histogram<double> _duration;
    private long _lastFailureLog;

    /// <summary>Creates the flusher; the node table and store are optional (absent in Kubernetes mode).</summary>
    public WriteBehindFlusher(NodeRequestClock clock, IServiceProvider services, Configuration.FleetOptions options, TimeProvider time, IMeterFactory meters, ILogger<WriteBehindFlusher> logger)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(meters);
        (_clock, _options, _time, _logger) = (clock, options, time, logger);
        _table = services.GetService<NodeTable>();
        _store = services.GetService<Domain.Ports.INodeStore>();
        var meter = meters.Create(Observability.ApiMetrics.MeterName);
        _rows = meter.CreateCounter<long>("dgon_write_behind_rows_total", description: "Rows written behind (or failed) by store: nodes | request_clock.");
        _duration = meter.CreateHistogram<double>("dgon_write_behind_flush_duration_seconds", unit: "s", description: "Duration of one write-behind flush.");
        foreach (var store in new[] { "nodes", "request_clock" })
        {
            foreach (var result in new[] { "written", "failed" })
            {
                _rows.Add(0, new("store", store), new("result", result));
            }
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.FlushInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Flushes once more on a graceful stop.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await FlushAsync(cancellationToken);
    }

    /// <summary>One flush: everything dirty now, in batches. Never throws (failures are counted and logged).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        if (_table is not null && _store is not null)
        {
            for (var batch = _table.TakeDirty(BatchSize); batch.Count > 0; batch = _table.TakeDirty(BatchSize))
            {
                try
                {
                    await _store.WriteHeartbeatsAsync(batch, cancellationToken);
                    _rows.Add(batch.Count, new("store", "nodes"), new("result", "written"));
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    _table.Requeue(batch);
                    _rows.Add(batch.Count, new("store", "nodes"), new("result", "failed"));
                    LogFailure(e, "nodes", batch.Count);
                    break;
                }
            }
        }

        while (_clock.DirtyCount > 0)
        {
            try
            {
                var written = await _clock.FlushAsync(BatchSize, cancellationToken);
                _rows.Add(written, new("store", "request_clock"), new("result", "written"));
                if (written == 0)
                {
                    break;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                _rows.Add(1, new("store", "request_clock"), new("result", "failed"));
                LogFailure(e, "request_clock", _clock.DirtyCount);
                break;
            }
        }

        _duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    private void LogFailure(Exception e, string store, int count)
    {
        var now = _time.GetTimestamp();
        if (_time.GetElapsedTime(Interlocked.Read(ref _lastFailureLog), now) >= TimeSpan.FromSeconds(10) || _lastFailureLog == 0)
        {
            Interlocked.Exchange(ref _lastFailureLog, now);
            LogFlushFailed(e, store, count);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Write-behind of {Store} failed for {Count} rows; they stay queued and are retried at the next flush")]
    private partial void LogFlushFailed(Exception error, string store, int count);
}
