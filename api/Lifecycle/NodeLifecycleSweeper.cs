using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Lifecycle;

/// <summary>
/// Standalone mode's applier of the node lifecycle to time passing: wakes at the earliest offline deadline (capped at
/// <see cref="MaxSleep"/> so nodes registered meanwhile are seen), moves overdue nodes to <c>offline</c>, logs each
/// transition. About once a minute it also deletes pending nodes that never sent a heartbeat within
/// <see cref="Configuration.NodeTrustOptions.PendingNodeTtl"/> (issue 9: abandoned enrollments, default 24 h).
/// Database trouble is logged and retried; it never stops the API.
/// </summary>
public sealed partial class NodeLifecycleSweeper(IServiceScopeFactory scopes, Configuration.NodeTrustOptions trust, TimeProvider clock, ILogger<NodeLifecycleSweeper> logger) : BackgroundService
{
    /// <summary>How often abandoned enrollments are looked for (more often when the time-to-live is shorter).</summary>
    public static readonly TimeSpan CleanupPeriod = TimeSpan.FromMinutes(1);

    private DateTimeOffset _nextCleanup = DateTimeOffset.MinValue;

    /// <summary>Longest sleep between sweeps.</summary>
    public static readonly TimeSpan MaxSleep = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan MinSleep = TimeSpan.FromMilliseconds(50);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan sleep;
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var registry = scope.ServiceProvider.GetRequiredService<INodeLifecycleSweep>();
                foreach (var change in await registry.ExpireOverdueAsync(stoppingToken))
                {
                    LogTransition(change.NodeId, change.From.ToWire(), change.To.ToWire(), change.Reason);
                }

                if (clock.GetUtcNow() >= _nextCleanup)
                {
                    _nextCleanup = clock.GetUtcNow() + (trust.PendingNodeTtl < CleanupPeriod ? trust.PendingNodeTtl : CleanupPeriod);
                    foreach (var id in await registry.DeleteNeverSeenAsync(clock.GetUtcNow() - trust.PendingNodeTtl, stoppingToken))
                    {
                        LogAbandoned(id, trust.PendingNodeTtl.TotalHours);
                    }
                }

                var next = await registry.NextOfflineDeadlineAsync(stoppingToken);
                // A deadline is "passed" strictly after it; wake just after.
                sleep = next is { } deadline ? deadline - clock.GetUtcNow() + TimeSpan.FromMilliseconds(10) : MaxSleep;
                sleep = sleep < MinSleep ? MinSleep : sleep > MaxSleep ? MaxSleep : sleep;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogSweepFailed(e);
                sleep = MaxSleep;
            }

            try
            {
                await Task.Delay(sleep, clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} phase {From} -> {To} ({Reason})")]
    private partial void LogTransition(string nodeId, string from, string to, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} deleted: pending without a heartbeat for over {Hours} h")]
    private partial void LogAbandoned(string nodeId, double hours);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lifecycle sweep failed; retrying in 5 s")]
    private partial void LogSweepFailed(Exception error);
}
