using Dgon.Api.Apis;
using Dgon.Api.Configuration;
using Dgon.Persistence;

namespace Dgon.Api.Inference;

/// <summary>Wiring of the coordinator link and the gateway (issue 13).</summary>
public static class InferenceServices
{
    /// <summary>
    /// Registers the link hub, the gateway and their settings (<see cref="InferenceOptions"/>); the node directory of
    /// the configured registry mode (standalone: the node table; Kubernetes: the DgonNode informer).
    /// </summary>
    /// <exception cref="InvalidOperationException">A setting is invalid.</exception>
    public static IServiceCollection AddInference(this IServiceCollection services, IConfiguration configuration, DgonApiOptions api)
    {
        ArgumentNullException.ThrowIfNull(api);
        services.AddSingleton(InferenceOptions.FromConfiguration(configuration, api.Trust));
        services.AddSingleton<LinkHub>();
        services.AddSingleton<PostgresInferenceLinks>();
        services.AddSingleton<ReplicaAddress>();
        services.AddSingleton<RemoteLinks>();
        services.AddSingleton<KeyConcurrency>();
        services.AddSingleton<KeyTokenBudget>();
        services.AddSingleton<ReplicaSecret>();
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<ReceiptRecorder>();
        services.AddSingleton<Gateway>();
        if (api.Registry == RegistryMode.Standalone)
        {
            services.AddSingleton<INodeDirectory, NodeTableDirectory>();
        }
        else
        {
            services.AddSingleton<INodeDirectory, InformerDirectory>();
        }

        services.AddHostedService<LinkRefresher>();
        return services;
    }

    /// <summary>WebSockets (keep-alive 15 s), <c>GET /v1/nodes/link</c> and the gateway endpoints.</summary>
    public static WebApplication MapInference(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = InferenceOptions.KeepAliveInterval });
        _ = app.Services.GetRequiredService<GatewayMetrics>(); // its series exist from start-up
        app.MapLinkEndpoint();
        app.MapGatewayApi();
        app.MapInferenceNodesApi();
        return app;
    }
}

/// <summary>
/// Renews this replica's <c>node_links</c> rows every 15 s (a row older than 45 s is ignored by other replicas: its
/// holder died), and removes them at shutdown.
/// </summary>
public sealed partial class LinkRefresher(LinkHub hub, PostgresInferenceLinks store, Fleet.ReplicaIdentity replica, ILogger<LinkRefresher> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(15));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await store.RefreshLinksAsync(replica.Id, [.. hub.NodeIds], stoppingToken);
                }
                catch (Npgsql.NpgsqlException e)
                {
                    LogRefreshFailed(e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        foreach (var link in hub.Links.ToList())
        {
            await link.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.EndpointUnavailable, "the API is shutting down");
            try
            {
                await store.RemoveLinkAsync(link.NodeId, replica.Id, cancellationToken);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or OperationCanceledException or InvalidOperationException)
            {
                LogRefreshFailed(e.Message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not refresh or remove this replica's link rows: {Error}")]
    private partial void LogRefreshFailed(string error);
}
