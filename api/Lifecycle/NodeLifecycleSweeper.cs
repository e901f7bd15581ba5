using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Api.Lifecycle;

/// <summary>
/// Standalone mode's applier of the node lifecycle to time passing: wakes at the earliest offline deadline (capped at
/// <see cref="MaxSleep"/> so nodes registered meanwhile are seen), moves overdue nodes to <c>offline</c>, logs each
/// transition. Database trouble is logged and retried; it never stops the API.
/// </summary>
public sealed partial class NodeLifecycleSweeper(IServiceScopeFactory scopes, TimeProvider clock, ILogger<NodeLifecycleSweeper> logger) : BackgroundService
{
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lifecycle sweep failed; retrying in 5 s")]
    private partial void LogSweepFailed(Exception error);
}
