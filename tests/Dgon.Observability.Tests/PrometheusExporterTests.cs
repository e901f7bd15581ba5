using System.Diagnostics.Metrics;
using Dgon.Observability.Exposition;
using Dgon.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Dgon.Observability.Tests;

/// <summary>The exporter against real System.Diagnostics.Metrics instruments, each test on its own meter.</summary>
public sealed class PrometheusExporterTests : IDisposable
{
    private readonly string _meterName = "Test." + Guid.NewGuid().ToString("N");
    private readonly Meter _meter;
    private readonly PrometheusExporter _exporter;

    public PrometheusExporterTests()
    {
        _meter = new Meter(_meterName);
        _exporter = new PrometheusExporter([_meterName]);
    }

    public void Dispose()
    {
        _exporter.Dispose();
        _meter.Dispose();
    }

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    [Fact]
    public void Counters_sum_per_label_set_with_help_and_type()
    {
        var counter = _meter.CreateCounter<long>("jobs_total", description: "Jobs done.");
        counter.Add(2, Tag("result", "ok"));
        counter.Add(3, Tag("result", "ok"));
        counter.Add(1, Tag("result", "failed"));

        var text = _exporter.Collect();

        Assert.Contains("# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("jobs_total{result=\"ok\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("jobs_total{result=\"failed\"} 1\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Label_order_does_not_split_a_series_and_values_are_escaped()
    {
        var counter = _meter.CreateCounter<long>("calls_total");
        counter.Add(1, Tag("b", "x"), Tag("a", "say \"hi\"\n"));
        counter.Add(1, Tag("a", "say \"hi\"\n"), Tag("b", "x"));

        Assert.Contains("calls_total{a=\"say \\\"hi\\\"\\n\",b=\"x\"} 2\n", _exporter.Collect(), StringComparison.Ordinal);
    }

    [Fact]
    public void Histograms_have_cumulative_inclusive_buckets_sum_and_count()
    {
        var histogram = _meter.CreateHistogram("work_duration_seconds", unit: "s", description: "Work.", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 10] });
        foreach (var v in new[] { 0.05, 0.1, 0.5, 5, 50 })
        {
            histogram.Record(v, Tag("kind", "a"));
        }

        var text = _exporter.Collect();

        Assert.Contains("# TYPE work_duration_seconds histogram\n", text, StringComparison.Ordinal);
        Assert.Contains("work_duration_seconds_bucket{kind=\"a\",le=\"0.1\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("work_duration_seconds_bucket{kind=\"a\",le=\"1\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("work_duration_seconds_bucket{kind=\"a\",le=\"10\"} 4\n", text, StringComparison.Ordinal);
        Assert.Contains("work_duration_seconds_bucket{kind=\"a\",le=\"+Inf\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("work_duration_seconds_sum{kind=\"a\"} 55.65\n", text, StringComparison.Ordinal);
        Assert.Contains("work_duration_seconds_count{kind=\"a\"} 5\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Histograms_without_advice_use_the_prometheus_default_buckets()
    {
        _meter.CreateHistogram<double>("plain_seconds", unit: "s").Record(0.003);
        var buckets = _exporter.Collect().Split('\n').Count(l => l.StartsWith("plain_seconds_bucket", StringComparison.Ordinal));
        Assert.Equal(PrometheusExporter.DefaultBuckets.Count + 1, buckets);
    }

    [Fact]
    public void Observable_series_that_stop_being_reported_disappear()
    {
        var live = new List<string> { "n1", "n2" };
        _meter.CreateObservableGauge("members", () => live.Select(n => new Measurement<int>(1, Tag("node", n))));

        var first = _exporter.Collect();
        live.Remove("n1");
        var second = _exporter.Collect();

        Assert.Contains("members{node=\"n1\"} 1\n", first, StringComparison.Ordinal);
        Assert.DoesNotContain("node=\"n1\"", second, StringComparison.Ordinal);
        Assert.Contains("members{node=\"n2\"} 1\n", second, StringComparison.Ordinal);
    }

    [Fact]
    public void Up_down_counters_sum_and_gauges_keep_the_last_value()
    {
        var inFlight = _meter.CreateUpDownCounter<int>("in_flight");
        inFlight.Add(5);
        inFlight.Add(-2);
        var temperature = _meter.CreateGauge<double>("temperature_celsius");
        temperature.Record(20);
        temperature.Record(21.5);

        var text = _exporter.Collect();

        Assert.Contains("# TYPE in_flight gauge\nin_flight 3\n", text, StringComparison.Ordinal);
        Assert.Contains("temperature_celsius 21.5\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Other_meters_are_not_exported()
    {
        using var other = new Meter("Other." + Guid.NewGuid().ToString("N"));
        other.CreateCounter<long>("foreign_total").Add(1);
        Assert.DoesNotContain("foreign_total", _exporter.Collect(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_scoped_exporter_ignores_same_named_meters_of_other_hosts()
    {
        using var mine = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var theirs = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var myFactory = mine.GetRequiredService<IMeterFactory>();
        using var exporter = new PrometheusExporter([_meterName], scope: myFactory);
        myFactory.Create(_meterName).CreateCounter<long>("scoped_total").Add(1, Tag("host", "mine"));
        theirs.GetRequiredService<IMeterFactory>().Create(_meterName).CreateCounter<long>("scoped_total").Add(1, Tag("host", "theirs"));
        _meter.CreateCounter<long>("static_total").Add(1); // unscoped (static) meters are exported too

        var text = exporter.Collect();

        Assert.Contains("scoped_total{host=\"mine\"} 1\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("theirs", text, StringComparison.Ordinal);
        Assert.Contains("static_total 1\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_adds_are_all_counted()
    {
        var counter = _meter.CreateCounter<long>("hits_total");
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 25_000; i++)
            {
                counter.Add(1, Tag("shard", t % 2));
            }
        })));

        var text = _exporter.Collect();
        Assert.Contains("hits_total{shard=\"0\"} 100000\n", text, StringComparison.Ordinal);
        Assert.Contains("hits_total{shard=\"1\"} 100000\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteAsync_runs_scrape_hooks_before_observing()
    {
        var hook = new CountingHook();
        using var exporter = new PrometheusExporter([_meterName], [hook]);
        _meter.CreateObservableGauge("hook_runs", () => hook.Runs);

        using var output = new MemoryStream();
        await exporter.WriteAsync(output, CancellationToken.None);

        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", exporter.ContentType);
        Assert.Contains("hook_runs 1\n", System.Text.Encoding.UTF8.GetString(output.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_large_scrape_with_non_ascii_labels_is_written_as_exact_utf8()
    {
        // Many chunks of the text buffer, and 4-byte characters (surrogate pairs) that may straddle a chunk boundary.
        var counter = _meter.CreateCounter<long>("wide_total");
        for (var i = 0; i < 3000; i++)
        {
            counter.Add(i, Tag("node", $"n{i}-région-🚀"));
        }

        using var output = new MemoryStream();
        await _exporter.WriteAsync(output, CancellationToken.None);

        var written = output.ToArray();
        Assert.True(written.Length > 100_000, $"{written.Length} bytes");
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(_exporter.Collect()), written);
        Assert.Contains("wide_total{node=\"n2999-région-🚀\"} 2999\n", System.Text.Encoding.UTF8.GetString(written), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_instrument_kind_passes_promtool_check_metrics()
    {
        _meter.CreateCounter<long>("requests_total", description: "Requests.").Add(3, Tag("code", "200"));
        _meter.CreateCounter<double>("io.transferred", unit: "By", description: "Bytes moved.").Add(1.5e6);
        _meter.CreateHistogram<double>("op.duration", unit: "s", description: "Op time.").Record(0.2, Tag("op", "x"));
        _meter.CreateObservableGauge("dgon_node_status", () => new Measurement<int>(1, Tag("node", "n\"1"), Tag("phase", "active")), description: "Phase.");
        _meter.CreateObservableCounter("process.cpu.time", () => 1.25, unit: "s", description: "CPU.");
        _meter.CreateObservableUpDownCounter("assembly.count", () => 12, unit: "{assembly}", description: "Assemblies.");

        var text = _exporter.Collect();
        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);

        Assert.True(exitCode == 0, $"promtool check metrics failed ({exitCode}):\n{output}\n--- exposition ---\n{text}");
        Assert.Contains("io_transferred_bytes_total 1500000\n", text, StringComparison.Ordinal);
        Assert.Contains("assembly_count_current 12\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promtool_is_a_real_check()
    {
        // The lint must be able to fail: a counter without _total and a gauge named like a histogram part.
        var (exitCode, output) = await Promtool.CheckMetricsAsync("# HELP things Things.\n# TYPE things counter\nthings 1\n# HELP a_count A.\n# TYPE a_count gauge\na_count 1\n");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("_total", output, StringComparison.Ordinal);
    }

    private sealed class CountingHook : IScrapeHook
    {
        public int Runs { get; private set; }

        public Task BeforeScrapeAsync(CancellationToken cancellationToken)
        {
            Runs++;
            return Task.CompletedTask;
        }
    }
}
