using System.Diagnostics.Metrics;
using System.Reflection;
using System.Runtime.InteropServices;
using Dgon.Observability.Exposition;
using Prometheus;

namespace Dgon.Observability;

/// <summary>
/// The metrics of one host (the API or the operator): its own prometheus-net <see cref="CollectorRegistry"/> (not the
/// static default one, so several hosts in one test process share nothing), the bridge that exports the
/// <see cref="System.Diagnostics.Metrics"/> instruments of the named meters into it, and
/// <c>dgon_build_info{component,version,runtime} 1</c> (version: the assembly's informational version; runtime:
/// <see cref="RuntimeInformation.FrameworkDescription"/>, e.g. <c>.NET 10.0.1</c>), after the <c>*_build_info</c>
/// convention of Prometheus exporters. Served on <c>/metrics</c> by <see cref="MetricsEndpoints.MapPrometheusMetrics"/>.
/// </summary>
public sealed class HostMetrics : IDisposable
{
    /// <summary>Name of the build information gauge.</summary>
    public const string BuildInfoName = "dgon_build_info";

    private readonly MeterBridge _bridge;

    /// <summary>Creates the registry, publishes <c>dgon_build_info</c> and starts listening to the meters.</summary>
    /// <param name="component"><c>api</c> or <c>operator</c>.</param>
    /// <param name="assembly">The component's assembly (its version is exported).</param>
    /// <param name="meterNames">Meters whose instruments are exported.</param>
    /// <param name="scope">The host's <see cref="IMeterFactory"/>: meters of other hosts are not exported (null: no filter).</param>
    public HostMetrics(string component, Assembly assembly, IEnumerable<string> meterNames, IMeterFactory? scope)
    {
        ArgumentException.ThrowIfNullOrEmpty(component);
        ArgumentNullException.ThrowIfNull(assembly);
        Registry = Metrics.NewCustomRegistry();
        Factory = Metrics.WithCustomRegistry(Registry);
        Factory.CreateGauge(BuildInfoName, "Build of this DGON component: always 1; the labels carry component, version and .NET runtime.", ["component", "version", "runtime"])
            .WithLabels(component, VersionOf(assembly), RuntimeInformation.FrameworkDescription)
            .Set(1);
        _bridge = new MeterBridge(Registry, meterNames, scope);
    }

    /// <summary>The host's registry, which <c>/metrics</c> serves.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Creates prometheus-net collectors in <see cref="Registry"/>.</summary>
    public IMetricFactory Factory { get; }

    /// <summary>One scrape in the Prometheus text format 0.0.4, before-collect callbacks included (tests, diagnostics).</summary>
    public async Task<string> CollectAsync(CancellationToken cancellationToken = default)
    {
        using var output = new MemoryStream();
        await Registry.CollectAndExportAsTextAsync(output, cancellationToken);
        return System.Text.Encoding.UTF8.GetString(output.ToArray());
    }

    /// <inheritdoc />
    public void Dispose() => _bridge.Dispose();

    /// <summary>The informational version (e.g. <c>1.4.0+3f2c…</c>), else the assembly version, else <c>unknown</c>.</summary>
    public static string VersionOf(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString()
            ?? "unknown";
    }
}
