using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Dgon.Observability.Exposition;

/// <summary>
/// The one interface through which the processes expose metrics: writes every metric of the process in an exposition
/// format. Implemented by <see cref="PrometheusExporter"/>; an adapter over prometheus-net or the OpenTelemetry
/// Prometheus exporter could implement it instead.
/// </summary>
public interface IMetricsExporter
{
    /// <summary>The HTTP <c>Content-Type</c> of what <see cref="WriteAsync"/> writes.</summary>
    string ContentType { get; }

    /// <summary>Collects (runs <see cref="IScrapeHook"/>s and observable callbacks) and writes one scrape.</summary>
    /// <param name="output">Where the UTF-8 text goes; left open.</param>
    /// <param name="cancellationToken">Scrape abort.</param>
    Task WriteAsync(Stream output, CancellationToken cancellationToken);
}

/// <summary>
/// Asynchronous work that runs before each scrape's observable callbacks, so those callbacks (which are synchronous)
/// can read a snapshot loaded here, e.g. node state from PostgreSQL.
/// </summary>
public interface IScrapeHook
{
    /// <summary>Prepares the data the observable instruments report in this scrape.</summary>
    /// <exception cref="OperationCanceledException">The scrape was aborted.</exception>
    Task BeforeScrapeAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A Prometheus text exposition format (version 0.0.4) exporter over <see cref="System.Diagnostics.Metrics"/>: a
/// <see cref="MeterListener"/> aggregates the measurements of the instruments of the named meters (counters: sums;
/// up-down counters: sums; gauges: last value; histograms: cumulative buckets with sum and count), and observable
/// instruments are polled at each scrape, so a series an observable callback stops reporting (e.g. a deleted node)
/// disappears from the next scrape. Names and labels follow <see cref="PrometheusNames"/>; histogram buckets come from
/// the instrument's advice (<see cref="InstrumentAdvice{T}.HistogramBucketBoundaries"/>), else Prometheus' defaults.
/// This is the smallest honest replacement for prometheus-net / OpenTelemetry.Exporter.Prometheus, which cannot be
/// restored here (PLATFORM.md); it sits behind <see cref="IMetricsExporter"/>.
/// Not implemented: exemplars, OpenMetrics negotiation, <c>_created</c> series, exponential histograms.
/// </summary>
public sealed class PrometheusExporter : IMetricsExporter, IDisposable
{
    /// <summary>The text format's content type.</summary>
    public const string TextContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Prometheus client libraries' default buckets, in seconds.</summary>
    public static readonly IReadOnlyList<double> DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly MeterListener _listener;
    private readonly HashSet<string> _meterNames;
    private readonly IMeterFactory? _scope;
    private readonly IReadOnlyList<IScrapeHook> _hooks;
    private readonly ConcurrentDictionary<Instrument, Family> _byInstrument = new();
    private readonly ConcurrentDictionary<string, Family> _byName = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _scrape = new(1, 1);
    private long _generation;

    /// <summary>Starts listening to the instruments of <paramref name="meterNames"/> (also those published later).</summary>
    /// <param name="meterNames">Meter names, e.g. <c>Dgon.Api</c>, <c>Microsoft.AspNetCore.Hosting</c>.</param>
    /// <param name="hooks">Run before each scrape, in order.</param>
    /// <param name="scope">
    /// The <see cref="IMeterFactory"/> of this host: meters it created, and static meters (no scope), are exported;
    /// meters of other hosts in the same process (tests) are not. Null: every meter with a listed name.
    /// </param>
    public PrometheusExporter(IEnumerable<string> meterNames, IEnumerable<IScrapeHook>? hooks = null, IMeterFactory? scope = null)
    {
        ArgumentNullException.ThrowIfNull(meterNames);
        _meterNames = new HashSet<string>(meterNames, StringComparer.Ordinal);
        _scope = scope;
        _hooks = hooks?.ToList() ?? [];
        _listener = new MeterListener
        {
            InstrumentPublished = OnInstrumentPublished,
            MeasurementsCompleted = (instrument, _) => _byInstrument.TryRemove(instrument, out Family? _),
        };
        _listener.SetMeasurementEventCallback<double>((i, m, t, _) => Record(i, m, t));
        _listener.SetMeasurementEventCallback<float>((i, m, t, _) => Record(i, m, t));
        _listener.SetMeasurementEventCallback<long>((i, m, t, _) => Record(i, m, t));
        _listener.SetMeasurementEventCallback<int>((i, m, t, _) => Record(i, m, t));
        _listener.SetMeasurementEventCallback<short>((i, m, t, _) => Record(i, m, t));
        _listener.SetMeasurementEventCallback<byte>((i, m, t, _) => Record(i, m, t));
        _listener.SetMeasurementEventCallback<decimal>((i, m, t, _) => Record(i, (double)m, t));
        _listener.Start();
    }

    /// <inheritdoc />
    public string ContentType => TextContentType;

    /// <inheritdoc />
    public async Task WriteAsync(Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        await _scrape.WaitAsync(cancellationToken);
        StringBuilder text;
        try
        {
            foreach (var hook in _hooks)
            {
                await hook.BeforeScrapeAsync(cancellationToken);
            }

            text = CollectLocked();
        }
        finally
        {
            _scrape.Release();
        }

        // Written after the lock is released, so a slow client does not hold up other scrapes.
        // A stateful encoder: a surrogate pair split across two chunks is still encoded as one character.
        var encoder = Encoding.UTF8.GetEncoder();
        var buffer = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(8192));
        try
        {
            foreach (var chunk in text.GetChunks())
            {
                for (var offset = 0; offset < chunk.Length; offset += 8192)
                {
                    var part = chunk.Span.Slice(offset, Math.Min(8192, chunk.Length - offset));
                    var length = encoder.GetBytes(part, buffer, flush: false);
                    await output.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
                }
            }

            var rest = encoder.GetBytes(ReadOnlySpan<char>.Empty, buffer, flush: true);
            await output.WriteAsync(buffer.AsMemory(0, rest), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The current exposition as a string (for tests and diagnostics); runs no scrape hooks.</summary>
    public string Collect()
    {
        _scrape.Wait();
        try
        {
            return CollectLocked().ToString();
        }
        finally
        {
            _scrape.Release();
        }
    }

    // Observable series are stamped with the scrape's generation; those a callback did not report this time are
    // dropped, so a deleted node's series disappear (without re-allocating the series that stay).
    private StringBuilder CollectLocked()
    {
        Interlocked.Increment(ref _generation);
        _listener.RecordObservableInstruments();
        return Render();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Dispose();
        _scrape.Dispose();
    }

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        if (!_meterNames.Contains(instrument.Meter.Name)
            || (_scope is not null && instrument.Meter.Scope is not null && !ReferenceEquals(instrument.Meter.Scope, _scope))
            || PrometheusNames.TypeOf(instrument) is not { } type)
        {
            return;
        }

        var name = PrometheusNames.MetricName(instrument.Name, instrument.Unit, type);
        var family = _byName.GetOrAdd(name, n => new Family(n, type, instrument.Description ?? n, instrument.IsObservable, BucketsOf(instrument)));
        if (family.Type != type || family.Observable != instrument.IsObservable)
        {
            // Two instruments map to one name with different kinds: exposing both would be an invalid exposition.
            return;
        }

        _byInstrument[instrument] = family;
        listener.EnableMeasurementEvents(instrument, family);
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (!_byInstrument.TryGetValue(instrument, out var family))
        {
            return;
        }

        var labels = Labels(tags);
        var series = family.Series.GetOrAdd(labels, _ => new Series(family.Buckets?.Length ?? 0));
        lock (series)
        {
            series.Generation = Interlocked.Read(ref _generation);
            switch (family.Type)
            {
                case PrometheusType.Histogram:
                    var index = Array.BinarySearch(family.Buckets!, value);
                    series.BucketCounts[index >= 0 ? index : ~index]++; // le is inclusive; the last slot is +Inf
                    series.Sum += value;
                    series.Count++;
                    break;
                case PrometheusType.Counter when !instrument.IsObservable:
                case PrometheusType.Gauge when IsUpDownCounter(instrument):
                    series.Value += value;
                    break;
                default:
                    series.Value = value; // gauges and observable counters report the current value
                    break;
            }
        }
    }

    private static bool IsUpDownCounter(Instrument instrument) =>
        instrument.GetType().IsGenericType && instrument.GetType().GetGenericTypeDefinition() == typeof(UpDownCounter<>);

    private static double[]? BucketsOf(Instrument instrument)
    {
        if (PrometheusNames.TypeOf(instrument) != PrometheusType.Histogram)
        {
            return null;
        }

        IEnumerable<double>? advised = instrument switch
        {
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries,
            Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            _ => null,
        };
        return [.. (advised ?? DefaultBuckets).Distinct().Order()];
    }

    // The rendered label set is the series key: sorted by name, values escaped.
    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0)
        {
            return string.Empty;
        }

        var pairs = new KeyValuePair<string, string>[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            pairs[i] = new(PrometheusNames.LabelName(tags[i].Key), PrometheusNames.LabelValue(tags[i].Value));
        }

        Array.Sort(pairs, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var builder = new StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (builder.Length > 0)
            {
                builder.Append(',');
            }

            builder.Append(key).Append("=\"");
            PrometheusNames.AppendEscapedLabelValue(builder, value);
            builder.Append('"');
        }

        return builder.ToString();
    }

    private StringBuilder Render()
    {
        var text = new StringBuilder();
        var generation = Interlocked.Read(ref _generation);
        foreach (var family in _byName.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            if (family.Observable)
            {
                foreach (var (key, stale) in family.Series.Where(p => p.Value.Generation != generation))
                {
                    family.Series.TryRemove(new KeyValuePair<string, Series>(key, stale));
                }
            }

            var series = family.Series.ToArray();
            if (series.Length == 0)
            {
                continue;
            }

            Array.Sort(series, (a, b) => string.CompareOrdinal(a.Key, b.Key));
            text.Append("# HELP ").Append(family.Name).Append(' ').Append(PrometheusNames.EscapeHelp(family.Help)).Append('\n');
            text.Append("# TYPE ").Append(family.Name).Append(' ').Append(family.Type switch
            {
                PrometheusType.Counter => "counter",
                PrometheusType.Histogram => "histogram",
                _ => "gauge",
            }).Append('\n');
            foreach (var (labels, s) in series)
            {
                lock (s)
                {
                    if (family.Type == PrometheusType.Histogram)
                    {
                        long cumulative = 0;
                        for (var i = 0; i < family.Buckets!.Length; i++)
                        {
                            cumulative += s.BucketCounts[i];
                            Sample(text, family.Name + "_bucket", labels, family.LeLabels![i], cumulative);
                        }

                        Sample(text, family.Name + "_bucket", labels, "le=\"+Inf\"", s.Count);
                        Sample(text, family.Name + "_sum", labels, null, s.Sum);
                        Sample(text, family.Name + "_count", labels, null, s.Count);
                    }
                    else
                    {
                        Sample(text, family.Name, labels, null, s.Value);
                    }
                }
            }
        }

        return text;
    }

    private static void Sample(StringBuilder text, string name, string labels, string? extra, double value)
    {
        text.Append(name);
        if (labels.Length > 0 || extra is not null)
        {
            text.Append('{').Append(labels);
            if (extra is not null)
            {
                text.Append(labels.Length > 0 ? "," : string.Empty).Append(extra);
            }

            text.Append('}');
        }

        text.Append(' ');
        if (double.IsFinite(value))
        {
            text.Append(CultureInfo.InvariantCulture, $"{value:R}");
        }
        else
        {
            text.Append(PrometheusNames.FormatValue(value));
        }

        text.Append('\n');
    }

    private sealed class Family(string name, PrometheusType type, string help, bool observable, double[]? buckets)
    {
        public string Name { get; } = name;

        public PrometheusType Type { get; } = type;

        public string Help { get; } = help;

        public bool Observable { get; } = observable;

        public double[]? Buckets { get; } = buckets;

        public string[]? LeLabels { get; } = buckets?.Select(b => "le=\"" + PrometheusNames.FormatValue(b) + "\"").ToArray();

        public ConcurrentDictionary<string, Series> Series { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Series(int buckets)
    {
        public long Generation;

        public double Value;

        public double Sum;

        public long Count;

        public long[] BucketCounts { get; } = new long[buckets + 1];
    }
}
