using Dgon.Observability.Exposition;
using Dgon.Observability.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Dgon.Observability;

/// <summary>Registration of the metrics exporter and the <c>GET /metrics</c> endpoint for the API and the operator.</summary>
public static class MetricsEndpoints
{
    /// <summary>
    /// Meters every DGON process exports besides its own: ASP.NET Core's HTTP server metrics
    /// (<c>http_server_request_duration_seconds</c>, <c>http_server_active_requests</c>) and the .NET runtime's
    /// (<c>dotnet_gc_*</c>, <c>dotnet_process_*</c>, …).
    /// </summary>
    public static IReadOnlyList<string> PlatformMeters { get; } = ["Microsoft.AspNetCore.Hosting", "System.Runtime"];

    /// <summary>
    /// Registers the <see cref="IMetricsExporter"/> (a <see cref="PrometheusExporter"/>) for <paramref name="meterNames"/>
    /// plus <see cref="PlatformMeters"/>; every registered <see cref="IScrapeHook"/> runs before each scrape.
    /// </summary>
    public static IServiceCollection AddPrometheusMetrics(this IServiceCollection services, params string[] meterNames)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddMetrics();
        services.TryAddSingleton<IMetricsExporter>(sp => new PrometheusExporter(
            [.. meterNames, .. PlatformMeters],
            sp.GetServices<IScrapeHook>(),
            sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        return services;
    }

    /// <summary>
    /// Registers the node gauges (<see cref="NodeGauges"/>, meter <see cref="NodeGauges.MeterName"/>) fed by
    /// <typeparamref name="TSource"/>; call before the exporter is first resolved. The caller includes
    /// <see cref="NodeGauges.MeterName"/> in <see cref="AddPrometheusMetrics"/>.
    /// </summary>
    public static IServiceCollection AddNodeGauges<TSource>(this IServiceCollection services)
        where TSource : class, INodeSnapshotSource
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<INodeSnapshotSource, TSource>();
        services.AddSingleton<NodeGauges>();
        services.AddSingleton<IScrapeHook>(sp => sp.GetRequiredService<NodeGauges>());
        return services;
    }

    /// <summary>
    /// Maps <c>GET /metrics</c> (Prometheus text format 0.0.4) and creates the exporter now, so measurements are
    /// counted from start-up rather than from the first scrape.
    /// </summary>
    public static IEndpointConventionBuilder MapPrometheusMetrics(this IEndpointRouteBuilder app, string pattern = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(app);
        var exporter = app.ServiceProvider.GetRequiredService<IMetricsExporter>();
        return app.MapGet(pattern, async (HttpContext context) =>
        {
            context.Response.ContentType = exporter.ContentType;
            context.Response.Headers.CacheControl = "no-store";
            await exporter.WriteAsync(context.Response.Body, context.RequestAborted);
        }).ExcludeFromDescription();
    }
}
