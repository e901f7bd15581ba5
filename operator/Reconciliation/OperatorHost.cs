using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Operator.Configuration;
using Dgon.Persistence;
using k8s;

namespace Dgon.Operator.Reconciliation;

/// <summary>
/// The operator's main loop: applies the database migrations, then campaigns for the Lease; while leading it runs
/// the DgonNode informer, the controller (2 workers), the mirror resync and the join-token cleaner
/// (<see cref="JoinTokenCleaner"/>). Two replicas never reconcile at once.
/// On losing the lease the process exits with code 1 so Kubernetes restarts it as a clean standby (controller-runtime
/// semantics); on shutdown (SIGTERM) the lease is released so the standby takes over at once.
/// </summary>
public sealed partial class OperatorHost(
    IServiceProvider services,
    IKubernetes client,
    OperatorState state,
    OperatorOptions options,
    KubeNamespace ns,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggers,
    ILogger<OperatorHost> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await services.GetRequiredService<SqlMigrator>().MigrateWithRetryAsync(TimeSpan.FromSeconds(60), stoppingToken);
        state.Migrated = true;

        var elector = new LeaderElection(
            client,
            new LeaderElectionOptions
            {
                Namespace = ns.Name,
                LeaseName = options.LeaseName,
                Identity = options.Identity,
                LeaseDuration = options.LeaseDuration,
                RenewDeadline = options.RenewDeadline,
                RetryPeriod = options.RetryPeriod,
            },
            loggers.CreateLogger<LeaderElection>());
        LogCampaigning(options.Identity, ns.Name, options.LeaseName);
        try
        {
            await elector.RunAsync(LeadAsync, stoppingToken);
        }
        finally
        {
            state.Leading = false;
            state.Nodes = null;
        }

        if (elector.LostLeadership && !stoppingToken.IsCancellationRequested)
        {
            LogLostLeadership(options.Identity);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    private async Task LeadAsync(CancellationToken leading)
    {
        LogLeading(options.Identity);
        var informer = new Informer<DgonNode>(ListerWatchers.DgonNodes(client, ns.Name), new InformerOptions(), loggers.CreateLogger<Informer<DgonNode>>());
        state.Nodes = informer;
        state.Leading = true;
        var recorder = new EventRecorder(client, "dgon.io/operator", options.Identity, loggers.CreateLogger<EventRecorder>());
        var reconciler = ActivatorUtilities.CreateInstance<DgonNodeReconciler>(services, informer, (IEventRecorder)recorder);
        var controller = new Controller<DgonNode>(informer, reconciler, new ControllerOptions { Name = "dgonnode", Workers = 2 }, loggers.CreateLogger<Controller<DgonNode>>());

        var informerRun = informer.RunAsync(leading);
        var controllerRun = controller.RunAsync(leading);
        var resync = ResyncMirrorAsync(informer, leading);
        var cleaner = ActivatorUtilities.CreateInstance<JoinTokenCleaner>(services).RunAsync(recorder, leading);
        await Task.WhenAll(informerRun, controllerRun, resync, cleaner);
    }

    // Removes mirror rows whose DgonNode no longer exists (deleted while no operator ran): at the start of each
    // leadership and every MirrorResyncPeriod. Deletions seen live are handled by the reconciler.
    private async Task ResyncMirrorAsync(Informer<DgonNode> informer, CancellationToken ct)
    {
        try
        {
            await informer.WaitForSyncAsync(ct);
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await using var scope = services.CreateAsyncScope();
                    var mirror = scope.ServiceProvider.GetRequiredService<INodeMirror>();
                    var live = informer.List().Select(n => n.Metadata.Name).ToHashSet(StringComparer.Ordinal);
                    foreach (var id in await mirror.ListIdsAsync(ct))
                    {
                        if (!live.Contains(id) && !informer.TryGet(ns.Name, id, out _) && await mirror.DeleteAsync(id, ct))
                        {
                            LogStaleRowRemoved(id);
                        }
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogResyncFailed(e);
                }

                await Task.Delay(options.MirrorResyncPeriod, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Operator {Identity} campaigning for Lease {Namespace}/{LeaseName}")]
    private partial void LogCampaigning(string identity, string @namespace, string leaseName);

    [LoggerMessage(Level = LogLevel.Information, Message = "Operator {Identity} is the leader; reconciling DgonNodes")]
    private partial void LogLeading(string identity);

    [LoggerMessage(Level = LogLevel.Error, Message = "Operator {Identity} lost its lease; exiting so it restarts as a standby")]
    private partial void LogLostLeadership(string identity);

    [LoggerMessage(Level = LogLevel.Information, Message = "Mirror row {NodeId} had no DgonNode; removed")]
    private partial void LogStaleRowRemoved(string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Mirror resync failed; retrying later")]
    private partial void LogResyncFailed(Exception error);
}

/// <summary>What the health endpoints report about this replica.</summary>
public sealed class OperatorState
{
    /// <summary>Migrations applied (the replica can work once it leads).</summary>
    public volatile bool Migrated;

    /// <summary>This replica holds the Lease.</summary>
    public volatile bool Leading;

    /// <summary>The DgonNode cache while leading (read by the node gauges), else null.</summary>
    public volatile IInformer<DgonNode>? Nodes;
}
