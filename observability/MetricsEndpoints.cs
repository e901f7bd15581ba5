using System.Reflection;
using Dgon.Observability.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Prometheus;

namespace Dgon.Observability;

/// <summary>Registration of the host's metrics (<see cref="HostMetrics"/>) and the <c>GET /metrics</c> endpoint for the API and the operator.</summary>
public static class MetricsEndpoints
{
    /// <summary>
    /// Meters every DGON process exports besides its own: ASP.NET Core's HTTP server metrics
    /// (<c>http_server_request_duration_seconds</c>, <c>http_server_active_requests</c>) and the .NET runtime's
    /// (<c>dotnet_gc_*</c>, <c>dotnet_process_*</c>, …).
    /// </summary>
    public static IReadOnlyList<string> PlatformMeters { get; } = ["Microsoft.AspNetCore.Hosting", "System.Runtime"];

    /// <summary>
    /// Registers the host's <see cref="HostMetrics"/> (a singleton) exporting <paramref name="meterNames"/> plus
    /// <see cref="PlatformMeters"/> and <c>dgon_build_info</c> for <paramref name="component"/>.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="component"><c>api</c> or <c>operator</c> (the <c>component</c> label of <c>dgon_build_info</c>).</param>
    /// <param name="assembly">The component's assembly, whose informational version is the <c>version</c> label.</param>
    /// <param name="meterNames">The component's meters.</param>
    public static IServiceCollection AddPrometheusMetrics(this IServiceCollection services, string component, Assembly assembly, params string[] meterNames)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(component);
        ArgumentNullException.ThrowIfNull(assembly);
        services.AddMetrics();
        services.TryAddSingleton(sp => new HostMetrics(
            component,
            assembly,
            [.. meterNames, .. PlatformMeters],
            sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        return services;
    }

    /// <summary>
    /// Registers the node gauges (<see cref="NodeGauges"/>, prometheus-net gauges refreshed before each scrape) fed by
    /// <typeparamref name="TSource"/>; they are created by <see cref="MapPrometheusMetrics"/>.
    /// </summary>
    public static IServiceCollection AddNodeGauges<TSource>(this IServiceCollection services)
        where TSource : class, INodeSnapshotSource
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<INodeSnapshotSource, TSource>();
        services.TryAddSingleton(NodeGaugeOptions.FromEnvironment());
        services.TryAddSingleton<NodeGauges>();
        return services;
    }

    /// <summary>
    /// Maps <c>GET /metrics</c> with prometheus-net's <c>MapMetrics</c> over the host's registry (Prometheus text format
    /// 0.0.4 only: OpenMetrics negotiation is off, as before), and creates the metrics now, so measurements are counted
    /// from start-up rather than from the first scrape. No authentication, like the health endpoints.
    /// </summary>
    public static IEndpointConventionBuilder MapPrometheusMetrics(this IEndpointRouteBuilder app, string pattern = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(app);
        var metrics = app.ServiceProvider.GetRequiredService<HostMetrics>();
        _ = app.ServiceProvider.GetService<NodeGauges>(); // registers its before-collect callback
        return app.MapMetrics(
                settings =>
                {
                    settings.Registry = metrics.Registry;
                    settings.EnableOpenMetrics = false;
                },
                pattern)
            .WithMetadata(new HttpMethodMetadata([HttpMethods.Get]))
            .ExcludeFromDescription();
    }
}
