using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Dgon.Observability.Exposition;

/// <summary>What a Prometheus metric family is, in the text exposition format's <c># TYPE</c> terms.</summary>
public enum PrometheusType
{
    /// <summary>Monotonic total (<see cref="Counter{T}"/>, <see cref="ObservableCounter{T}"/>); the name ends in <c>_total</c>.</summary>
    Counter,

    /// <summary>A value that goes up and down (gauges and up-down counters).</summary>
    Gauge,

    /// <summary>Cumulative buckets with <c>_bucket{le}</c>, <c>_sum</c> and <c>_count</c> (<see cref="Histogram{T}"/>).</summary>
    Histogram,
}

/// <summary>
/// Maps OpenTelemetry-style instrument names, units and tags to Prometheus names, following the OpenTelemetry
/// "Prometheus and OpenMetrics compatibility" rules and the Prometheus naming guide: characters outside
/// <c>[a-zA-Z0-9_:]</c> become <c>_</c>, the unit becomes a base-unit suffix (<c>s</c> → <c>_seconds</c>,
/// <c>By</c> → <c>_bytes</c>, <c>1</c> on a gauge → <c>_ratio</c>; annotations like <c>{request}</c> add nothing),
/// and counters end in <c>_total</c>; a gauge whose name would end in a histogram suffix (<c>_count</c>, <c>_sum</c>,
/// <c>_bucket</c>) gets <c>_current</c> appended (<c>dotnet.assembly.count</c> → <c>dotnet_assembly_count_current</c>). A suffix the name already has is not added twice, so instruments may also be
/// named in Prometheus style directly (<c>dgon_heartbeats_total</c>).
/// </summary>
public static class PrometheusNames
{
    private static readonly string[] ReservedSuffixes = ["_count", "_sum", "_bucket"];

    /// <summary>The family type of an instrument.</summary>
    /// <returns>Null for instrument kinds the exporter does not know (they are skipped).</returns>
    public static PrometheusType? TypeOf(Instrument instrument)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        var kind = instrument.GetType();
        if (!kind.IsGenericType)
        {
            return null;
        }

        return kind.GetGenericTypeDefinition() switch
        {
            var t when t == typeof(Counter<>) || t == typeof(ObservableCounter<>) => PrometheusType.Counter,
            var t when t == typeof(Histogram<>) => PrometheusType.Histogram,
            var t when t == typeof(UpDownCounter<>) || t == typeof(ObservableUpDownCounter<>)
                || t == typeof(ObservableGauge<>) || t == typeof(Gauge<>) => PrometheusType.Gauge,
            _ => null,
        };
    }

    /// <summary>The metric family name for an instrument (for counters including <c>_total</c>).</summary>
    /// <param name="name">Instrument name, e.g. <c>http.server.request.duration</c>.</param>
    /// <param name="unit">UCUM unit or null, e.g. <c>s</c>.</param>
    /// <param name="type">Family type.</param>
    /// <returns>E.g. <c>http_server_request_duration_seconds</c>.</returns>
    public static string MetricName(string name, string? unit, PrometheusType type)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var result = Sanitize(name, allowColon: true);
        var suffix = UnitSuffix(unit, type);
        if (suffix.Length > 0 && !result.EndsWith("_" + suffix, StringComparison.Ordinal)
            && !(type == PrometheusType.Counter && result.EndsWith("_" + suffix + "_total", StringComparison.Ordinal)))
        {
            result = result.EndsWith("_total", StringComparison.Ordinal) && type == PrometheusType.Counter
                ? result[..^"_total".Length] + "_" + suffix + "_total"
                : result + "_" + suffix;
        }

        if (type == PrometheusType.Counter && !result.EndsWith("_total", StringComparison.Ordinal))
        {
            result += "_total";
        }

        // _count, _sum and _bucket belong to histograms and summaries: a gauge named so (the runtime's
        // dotnet.assembly.count) would be misread by PromQL users and fails promtool's lint.
        if (type == PrometheusType.Gauge && ReservedSuffixes.Any(r => result.EndsWith(r, StringComparison.Ordinal)))
        {
            result += "_current";
        }

        return result;
    }

    /// <summary>A label name: <c>http.request.method</c> → <c>http_request_method</c>.</summary>
    public static string LabelName(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return Sanitize(key, allowColon: false);
    }

    /// <summary>The text of a tag value as a label value (invariant culture; null → empty).</summary>
    public static string LabelValue(object? value) => value switch
    {
        null => string.Empty,
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    private static string UnitSuffix(string? unit, PrometheusType type) => unit switch
    {
        null or "" => string.Empty,
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        "1" => type == PrometheusType.Gauge ? "ratio" : string.Empty,
        _ when unit.StartsWith('{') => string.Empty,
        _ => Sanitize(unit, allowColon: false).Trim('_'),
    };

    private static string Sanitize(string name, bool allowColon)
    {
        var builder = new StringBuilder(name.Length + 1);
        foreach (var c in name)
        {
            var ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' || (allowColon && c == ':');
            builder.Append(ok ? c : '_');
        }

        if (char.IsAsciiDigit(builder[0]))
        {
            builder.Insert(0, '_');
        }

        return builder.ToString();
    }
}
