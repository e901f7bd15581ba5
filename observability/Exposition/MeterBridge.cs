using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace Dgon.Observability.Exposition;

/// <summary>
/// Feeds <see cref="System.Diagnostics.Metrics"/> instruments of the named meters into prometheus-net collectors on one
/// <see cref="CollectorRegistry"/>, under the names <see cref="PrometheusNames"/> gives (today's contract:
/// <c>dgon_heartbeats_total</c>, <c>http_server_request_duration_seconds</c>, <c>dotnet_gc_collections_total</c>, …).
/// Counters become prometheus-net counters (observable counters follow the reported total), up-down counters and gauges
/// become gauges, histograms become histograms with the instrument's advised buckets (else
/// <see cref="DefaultBuckets"/>). Observable instruments are polled before each collection; a series an observable
/// callback stops reporting is removed. prometheus-net's own <c>MeterAdapter</c> is not used: it prefixes the meter
/// name (<c>dgon_api_dgon_heartbeats_total</c>), exposes counters as gauges, has no unit suffixes and drops series idle
/// for 5 minutes, which would change every name and type that the dashboard and the tests rely on.
/// A measurement that prometheus-net refuses (a name already taken by another metric type, a reserved label such as
/// <c>le</c> on a histogram) is dropped; nothing is thrown into the instrumented code.
/// </summary>
internal sealed class MeterBridge : IDisposable
{
    /// <summary>Prometheus client libraries' default buckets, in seconds.</summary>
    public static readonly IReadOnlyList<double> DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly IMetricFactory _factory;
    private readonly HashSet<string> _meterNames;
    private readonly IMeterFactory? _scope;
    private readonly MeterListener _listener;
    private readonly ConcurrentBag<Sink> _observed = [];
    private readonly Lock _observing = new();
    private long _round;
    private volatile bool _disposed;

    /// <summary>Starts listening to the instruments of <paramref name="meterNames"/> (also those published later).</summary>
    /// <param name="registry">Where the collectors go.</param>
    /// <param name="meterNames">Meter names, e.g. <c>Dgon.Api</c>, <c>Microsoft.AspNetCore.Hosting</c>.</param>
    /// <param name="scope">
    /// The <see cref="IMeterFactory"/> of this host: meters it created, and static meters (no scope), are exported;
    /// meters of other hosts in the same process (tests) are not. Null: every meter with a listed name.
    /// </param>
    public MeterBridge(CollectorRegistry registry, IEnumerable<string> meterNames, IMeterFactory? scope)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(meterNames);
        _factory = Metrics.WithCustomRegistry(registry);
        _meterNames = new HashSet<string>(meterNames, StringComparer.Ordinal);
        _scope = scope;
        _listener = new MeterListener { InstrumentPublished = OnInstrumentPublished };
        _listener.SetMeasurementEventCallback<double>((_, m, t, s) => Record(s, m, t));
        _listener.SetMeasurementEventCallback<float>((_, m, t, s) => Record(s, m, t));
        _listener.SetMeasurementEventCallback<long>((_, m, t, s) => Record(s, m, t));
        _listener.SetMeasurementEventCallback<int>((_, m, t, s) => Record(s, m, t));
        _listener.SetMeasurementEventCallback<short>((_, m, t, s) => Record(s, m, t));
        _listener.SetMeasurementEventCallback<byte>((_, m, t, s) => Record(s, m, t));
        _listener.SetMeasurementEventCallback<decimal>((_, m, t, s) => Record(s, (double)m, t));
        _listener.Start();
        registry.AddBeforeCollectCallback(Observe);
    }

    private enum Kind
    {
        Counter,
        ObservableCounter,
        UpDownCounter,
        Gauge,
        ObservableGauge,
        Histogram,
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _disposed = true; // the registry keeps the callback; it becomes a no-op
        _listener.Dispose();
    }

    // Polls the observable instruments, then drops the series no callback reported in this round (e.g. a deleted node).
    private void Observe()
    {
        if (_disposed)
        {
            return;
        }

        lock (_observing)
        {
            _round++;
            _listener.RecordObservableInstruments();
            foreach (var sink in _observed)
            {
                sink.Sweep(_round);
            }
        }
    }

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        if (!_meterNames.Contains(instrument.Meter.Name)
            || (_scope is not null && instrument.Meter.Scope is not null && !ReferenceEquals(instrument.Meter.Scope, _scope))
            || KindOf(instrument) is not { } kind)
        {
            return;
        }

        var type = kind switch
        {
            Kind.Counter or Kind.ObservableCounter => PrometheusType.Counter,
            Kind.Histogram => PrometheusType.Histogram,
            _ => PrometheusType.Gauge,
        };
        var name = PrometheusNames.MetricName(instrument.Name, instrument.Unit, type);
        listener.EnableMeasurementEvents(instrument, new Family(this, name, instrument.Description ?? name, kind, BucketsOf(instrument)));
    }

    private void Record(object? state, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (state is not Family family)
        {
            return;
        }

        var names = new string[tags.Length];
        var values = new string[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            names[i] = PrometheusNames.LabelName(tags[i].Key);
            values[i] = PrometheusNames.LabelValue(tags[i].Value);
        }

        // Tags arrive in any order; a prometheus-net collector has fixed label names in a fixed order.
        Array.Sort(names, values, StringComparer.Ordinal);
        if (family.SinkFor(names) is { } sink)
        {
            try
            {
                sink.Record(values, value, _round);
            }
            catch (ArgumentException)
            {
                // e.g. a negative increment of a counter; never thrown into the instrumented code.
            }
        }
    }

    private static Kind? KindOf(Instrument instrument)
    {
        var type = instrument.GetType();
        if (!type.IsGenericType)
        {
            return null;
        }

        var definition = type.GetGenericTypeDefinition();
        return definition switch
        {
            _ when definition == typeof(Counter<>) => Kind.Counter,
            _ when definition == typeof(ObservableCounter<>) => Kind.ObservableCounter,
            _ when definition == typeof(UpDownCounter<>) => Kind.UpDownCounter,
            _ when definition == typeof(Gauge<>) => Kind.Gauge,
            _ when definition == typeof(ObservableGauge<>) || definition == typeof(ObservableUpDownCounter<>) => Kind.ObservableGauge,
            _ when definition == typeof(Histogram<>) => Kind.Histogram,
            _ => null,
        };
    }

    private static double[]? BucketsOf(Instrument instrument)
    {
        IEnumerable<double>? advised = instrument switch
        {
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries,
            Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<short> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<byte> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            Histogram<decimal> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b),
            _ => null,
        };
        return instrument.GetType().IsGenericType && instrument.GetType().GetGenericTypeDefinition() == typeof(Histogram<>)
            ? [.. (advised ?? DefaultBuckets).Where(double.IsFinite).Distinct().Order()]
            : null;
    }

    private static string Key(string[] parts) => string.Join('\0', parts);

    // One instrument: a sink per set of label names it was measured with (prometheus-net keeps them in one family).
    private sealed class Family(MeterBridge bridge, string name, string help, Kind kind, double[]? buckets)
    {
        private readonly ConcurrentDictionary<string, Sink?> _sinks = new(StringComparer.Ordinal);

        public Sink? SinkFor(string[] labelNames) =>
            _sinks.TryGetValue(Key(labelNames), out var sink) ? sink : _sinks.GetOrAdd(Key(labelNames), _ => Create(labelNames));

        private Sink? Create(string[] labelNames)
        {
            try
            {
                var factory = bridge._factory;
                Sink sink = kind switch
                {
                    Kind.Counter => Sink.Of(factory.CreateCounter(name, help, labelNames), (c, v) => c.Inc(v), observed: false),
                    Kind.ObservableCounter => Sink.Of(factory.CreateCounter(name, help, labelNames), (c, v) => c.IncTo(v), observed: true),
                    Kind.UpDownCounter => Sink.Of(factory.CreateGauge(name, help, labelNames), (g, v) => g.Inc(v), observed: false),
                    Kind.Gauge => Sink.Of(factory.CreateGauge(name, help, labelNames), (g, v) => g.Set(v), observed: false),
                    Kind.ObservableGauge => Sink.Of(factory.CreateGauge(name, help, labelNames), (g, v) => g.Set(v), observed: true),
                    _ => Sink.Of(factory.CreateHistogram(name, help, labelNames, new HistogramConfiguration { Buckets = buckets }), (h, v) => h.Observe(v), observed: false),
                };
                if (sink.Observed)
                {
                    bridge._observed.Add(sink);
                }

                return sink;
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                // The name is taken by a metric of another type, or a label name is reserved: not exportable.
                return null;
            }
        }
    }

    // The label sets of one collector; for observable instruments, the round in which each was last reported.
    private sealed class Sink
    {
        private readonly Action<string[], double> _record;
        private readonly Action<string[]>? _remove;
        private readonly Dictionary<string, (string[] Values, long Round)> _seen = new(StringComparer.Ordinal);

        private Sink(Action<string[], double> record, Action<string[]>? remove)
        {
            _record = record;
            _remove = remove;
        }

        public bool Observed => _remove is not null;

        public static Sink Of<TChild>(Collector<TChild> collector, Action<TChild, double> apply, bool observed)
            where TChild : ChildBase
        {
            void Record(string[] values, double value) => apply(values.Length == 0 ? ((ICollector<TChild>)collector).Unlabelled : collector.WithLabels(values), value);
            return new Sink(Record, observed ? values => collector.RemoveLabelled(values) : null);
        }

        // Observable measurements arrive only inside Observe (under its lock), so _seen needs no lock of its own.
        public void Record(string[] values, double value, long round)
        {
            if (Observed)
            {
                _seen[Key(values)] = (values, round);
            }

            _record(values, value);
        }

        public void Sweep(long round)
        {
            foreach (var (key, (values, seen)) in _seen.Where(s => s.Value.Round != round).ToList())
            {
                _remove!(values);
                _seen.Remove(key);
            }
        }
    }
}
