using Dgon.Api.Configuration;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;
using Dgon.Kubernetes.Enrollment;
using k8s;
using k8s.Models;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Dgon.Api.Kubernetes;

/// <summary>Wiring of Kubernetes mode (<c>DGON_REGISTRY=kubernetes</c>).</summary>
public static class KubernetesRegistryServices
{
    /// <summary>
    /// Registers the Kubernetes client (KubernetesClient; kubeconfig, exec plugins or in-cluster, see <see cref="KubernetesClients.LoadConfiguration"/>), informers
    /// of the namespace's DgonNodes and node Secrets (run by <see cref="InformerHost"/>), the DgonNode registry, the
    /// join-token store on <c>dgon.io/join-token</c> Secrets (<see cref="KubernetesJoinTokenStore"/>), and a
    /// readiness check that passes once both caches are synced.
    /// </summary>
    /// <exception cref="k8s.Exceptions.KubeConfigException">No usable kubeconfig or in-cluster configuration.</exception>
    public static IServiceCollection AddKubernetesRegistry(this IServiceCollection services, KubernetesRegistryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = KubernetesClients.LoadConfiguration(options.Kubeconfig);
        var ns = KubernetesClients.Namespace(options.Namespace, config);

        services.AddSingleton(options);
        services.AddSingleton(config);
        services.AddSingleton(ns);
        services.AddSingleton<IKubernetes>(_ => new k8s.Kubernetes(config));
        services.AddSingleton<IInformer<DgonNode>>(sp => new Informer<DgonNode>(
            ListerWatchers.DgonNodes(sp.GetRequiredService<IKubernetes>(), ns.Name), new InformerOptions(),
            sp.GetRequiredService<ILogger<Informer<DgonNode>>>()));
        services.AddSingleton<IInformer<V1Secret>>(sp => new Informer<V1Secret>(
            ListerWatchers.Secrets(sp.GetRequiredService<IKubernetes>(), ns.Name),
            // Node Secrets only (they carry dgon.io/node); join-token Secrets are read on demand, never cached.
            new InformerOptions { LabelSelector = $"{DgonNodeMapping.ManagedByLabel}=dgon-api,{DgonNodeMapping.NodeLabel}" },
            sp.GetRequiredService<ILogger<Informer<V1Secret>>>()));
        services.AddSingleton<KubernetesNodeRegistry>();
        services.AddSingleton<INodeRegistry>(sp => sp.GetRequiredService<KubernetesNodeRegistry>());
        services.AddSingleton<INodeAdministration>(sp => sp.GetRequiredService<KubernetesNodeRegistry>());
        services.AddSingleton<IJoinTokenStore, KubernetesJoinTokenStore>();
        // Node reads answer from this API's own DgonNode cache, not the operator's PostgreSQL mirror.
        services.RemoveAll<INodeQueries>();
        services.AddSingleton<INodeQueries, KubernetesNodeQueries>();
        services.AddSingleton<Fleet.IFleetSize>(sp => new KubernetesFleetSize(sp.GetRequiredService<IInformer<DgonNode>>()));
        services.AddHostedService<InformerHost>();
        services.AddHealthChecks().AddCheck<KubernetesCacheHealthCheck>("kubernetes", tags: ["ready"]);
        return services;
    }
}

/// <summary>Kubernetes mode's fleet size: the DgonNodes in this API's cache (all namespaces it watches).</summary>
public sealed class KubernetesFleetSize(IInformer<DgonNode> nodes) : Fleet.IFleetSize
{
    /// <inheritdoc />
    public int NodeCount => nodes.List().Count;
}

/// <summary>Runs the API's informers (list+watch, relist on 410 Gone) and the registry's trailing heartbeat writes for the life of the process.</summary>
public sealed class InformerHost(IInformer<DgonNode> nodes, IInformer<V1Secret> secrets, KubernetesNodeRegistry registry) : BackgroundService
{
    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The registry subscribes to the informers in its constructor; resolve it before they start delivering events.
        GC.KeepAlive(registry);
        return Task.WhenAll(nodes.RunAsync(stoppingToken), secrets.RunAsync(stoppingToken), registry.RunFlusherAsync(stoppingToken));
    }
}

/// <summary>Ready once the DgonNode and Secret caches completed their first list (heartbeats before that get 503).</summary>
public sealed class KubernetesCacheHealthCheck(KubernetesNodeRegistry registry) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(registry.HasSynced
            ? HealthCheckResult.Healthy($"DgonNode and Secret caches synced (namespace {registry.Namespace})")
            : HealthCheckResult.Unhealthy("Kubernetes caches not synced yet"));
}
