using System.Diagnostics.Metrics;
using Dgon.Observability.Exposition;
using Dgon.Testing;
using Microsoft.Extensions.DependencyInjection;
using Scrape = Dgon.Testing.Exposition;

namespace Dgon.Observability.Tests;

/// <summary>
/// <see cref="HostMetrics"/>: System.Diagnostics.Metrics instruments exported through prometheus-net under today's
/// names, each test on its own meter and registry; the output is checked by parsing and by the real promtool.
/// </summary>
public sealed class HostMetricsTests : IDisposable
{
    private readonly string _meterName = "Test." + Guid.NewGuid().ToString("N");
    private readonly Meter _meter;
    private readonly HostMetrics _metrics;

    public HostMetricsTests()
    {
        _meter = new Meter(_meterName);
        _metrics = new HostMetrics("test", typeof(HostMetricsTests).Assembly, [_meterName], scope: null);
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _meter.Dispose();
    }

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    private async Task<Scrape> ScrapeAsync() => Scrape.Parse(await _metrics.CollectAsync());

    [Fact]
    public async Task Counters_sum_per_label_set_with_help_and_type()
    {
        var counter = _meter.CreateCounter<long>("jobs_total", description: "Jobs done.");
        counter.Add(2, Tag("result", "ok"));
        counter.Add(3, Tag("result", "ok"));
        counter.Add(1, Tag("result", "failed"));

        var text = await _metrics.CollectAsync();
        var m = Scrape.Parse(text);

        Assert.Contains("# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n", text, StringComparison.Ordinal);
        Assert.Equal(5, Assert.Single(m.Find("jobs_total", ("result", "ok"))).Value);
        Assert.Equal(1, Assert.Single(m.Find("jobs_total", ("result", "failed"))).Value);
    }

    [Fact]
    public async Task A_counter_added_zero_is_exported_at_zero()
    {
        _meter.CreateCounter<long>("errors_total").Add(0, Tag("controller", "dgonnode"));

        Assert.Equal(0, Assert.Single((await ScrapeAsync()).Find("errors_total", ("controller", "dgonnode"))).Value);
    }

    [Fact]
    public async Task Label_order_does_not_split_a_series_and_values_are_escaped()
    {
        var counter = _meter.CreateCounter<long>("calls_total");
        counter.Add(1, Tag("b", "x"), Tag("a", "say \"hi\"\n"));
        counter.Add(1, Tag("a", "say \"hi\"\n"), Tag("b", "x"));

        var text = await _metrics.CollectAsync();

        Assert.Contains("calls_total{a=\"say \\\"hi\\\"\\n\",b=\"x\"} 2\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_names_and_values_become_prometheus_labels()
    {
        _meter.CreateCounter<long>("http.requests").Add(1, Tag("http.request.method", "GET"), Tag("code", 404), Tag("ok", false), Tag("ratio", 0.5));

        var sample = Assert.Single((await ScrapeAsync()).Find("http_requests_total"));

        Assert.Equal("GET", sample.Labels["http_request_method"]);
        Assert.Equal("404", sample.Labels["code"]);
        Assert.Equal("false", sample.Labels["ok"]);
        Assert.Equal("0.5", sample.Labels["ratio"]);
    }

    [Fact]
    public async Task Histograms_use_the_advised_buckets_cumulatively_with_sum_and_count()
    {
        var histogram = _meter.CreateHistogram("work_duration_seconds", unit: "s", description: "Work.", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 10] });
        foreach (var v in new[] { 0.05, 0.1, 0.5, 5, 50 })
        {
            histogram.Record(v, Tag("kind", "a"));
        }

        var text = await _metrics.CollectAsync();
        var m = Scrape.Parse(text);
        double Bucket(string le) => Assert.Single(m.Find("work_duration_seconds_bucket", ("kind", "a"), ("le", le))).Value;

        Assert.Contains("# TYPE work_duration_seconds histogram\n", text, StringComparison.Ordinal);
        Assert.Equal(2, Bucket("0.1")); // le is inclusive
        Assert.Equal(3, Bucket("1"));
        Assert.Equal(4, Bucket("10"));
        Assert.Equal(5, Bucket("+Inf"));
        Assert.Equal(4, m.Find("work_duration_seconds_bucket").Count());
        Assert.Equal(55.65, Assert.Single(m.Find("work_duration_seconds_sum")).Value, 9);
        Assert.Equal(5, Assert.Single(m.Find("work_duration_seconds_count")).Value);
    }

    [Fact]
    public async Task Histograms_without_advice_use_the_prometheus_default_buckets()
    {
        _meter.CreateHistogram<double>("plain", unit: "s").Record(0.003);

        var buckets = (await ScrapeAsync()).Find("plain_seconds_bucket").ToList();

        Assert.Equal(MeterBridge.DefaultBuckets.Count + 1, buckets.Count);
        Assert.All(buckets, b => Assert.Equal(1, b.Value));
    }

    [Fact]
    public async Task Observable_series_that_stop_being_reported_disappear()
    {
        var live = new List<string> { "n1", "n2" };
        _meter.CreateObservableGauge("members", () => live.Select(n => new Measurement<int>(1, Tag("node", n))));

        var first = await ScrapeAsync();
        live.Remove("n1");
        var second = await ScrapeAsync();

        Assert.Equal(2, first.Find("members").Count());
        Assert.Empty(second.Find("members", ("node", "n1")));
        Assert.Equal(1, Assert.Single(second.Find("members", ("node", "n2"))).Value);
    }

    [Fact]
    public async Task Observable_counters_report_their_total_and_up_down_counters_and_gauges_their_value()
    {
        var cpu = 1.25;
        _meter.CreateObservableCounter("process.cpu.time", () => cpu, unit: "s");
        var inFlight = _meter.CreateUpDownCounter<int>("in_flight");
        inFlight.Add(5);
        inFlight.Add(-2);
        var temperature = _meter.CreateGauge<double>("temperature_celsius");
        temperature.Record(20);
        temperature.Record(21.5);

        var first = await ScrapeAsync();
        cpu = 2.5;
        var second = await ScrapeAsync();

        Assert.Equal(1.25, Assert.Single(first.Find("process_cpu_time_seconds_total")).Value);
        Assert.Equal(2.5, Assert.Single(second.Find("process_cpu_time_seconds_total")).Value);
        Assert.Equal(3, Assert.Single(second.Find("in_flight")).Value);
        Assert.Equal(21.5, Assert.Single(second.Find("temperature_celsius")).Value);
    }

    [Fact]
    public async Task Other_meters_are_not_exported()
    {
        using var other = new Meter("Other." + Guid.NewGuid().ToString("N"));
        other.CreateCounter<long>("foreign_total").Add(1);

        Assert.Empty((await ScrapeAsync()).Find("foreign_total"));
    }

    [Fact]
    public async Task Each_host_has_its_own_registry_and_ignores_same_named_meters_of_other_hosts()
    {
        using var mine = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var theirs = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var myFactory = mine.GetRequiredService<IMeterFactory>();
        using var metrics = new HostMetrics("test", typeof(HostMetricsTests).Assembly, [_meterName], myFactory);
        myFactory.Create(_meterName).CreateCounter<long>("scoped_total").Add(1, Tag("host", "mine"));
        theirs.GetRequiredService<IMeterFactory>().Create(_meterName).CreateCounter<long>("scoped_total").Add(1, Tag("host", "theirs"));
        _meter.CreateCounter<long>("static_total").Add(1); // unscoped (static) meters are exported too

        var scoped = Scrape.Parse(await metrics.CollectAsync());
        var unscoped = await ScrapeAsync();

        Assert.Equal(1, Assert.Single(scoped.Find("scoped_total")).Value);
        Assert.Equal("mine", Assert.Single(scoped.Find("scoped_total")).Labels["host"]);
        Assert.Equal(1, Assert.Single(scoped.Find("static_total")).Value);
        Assert.Equal(2, unscoped.Find("scoped_total").Count()); // _metrics has no scope: both hosts' meters
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

        var m = await ScrapeAsync();
        Assert.Equal(100_000, Assert.Single(m.Find("hits_total", ("shard", "0"))).Value);
        Assert.Equal(100_000, Assert.Single(m.Find("hits_total", ("shard", "1"))).Value);
    }

    [Fact]
    public async Task Unexportable_measurements_are_dropped_without_throwing()
    {
        _meter.CreateHistogram<double>("reserved").Record(1, Tag("le", "x")); // le is the bucket label
        _meter.CreateGauge<double>("clash_total").Record(1);
        _meter.CreateCounter<long>("clash").Add(1); // also clash_total, but a counter
        _meter.CreateCounter<long>("kept_total").Add(1);

        var m = await ScrapeAsync();

        Assert.Empty(m.Find("reserved_bucket"));
        Assert.Equal(1, Assert.Single(m.Find("clash_total")).Value);
        Assert.Equal(1, Assert.Single(m.Find("kept_total")).Value);
    }

    [Fact]
    public async Task Build_info_is_1_with_component_version_and_runtime()
    {
        var info = Assert.Single((await ScrapeAsync()).Find(HostMetrics.BuildInfoName));

        Assert.Equal(1, info.Value);
        Assert.Equal("test", info.Labels["component"]);
        Assert.Equal(HostMetrics.VersionOf(typeof(HostMetricsTests).Assembly), info.Labels["version"]);
        Assert.NotEqual("unknown", info.Labels["version"]);
        Assert.StartsWith(".NET ", info.Labels["runtime"], StringComparison.Ordinal);
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

        var text = await _metrics.CollectAsync();
        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
        var m = Scrape.Parse(text);

        Assert.True(exitCode == 0, $"promtool check metrics failed ({exitCode}):\n{output}\n--- exposition ---\n{text}");
        Assert.Equal(1.5e6, Assert.Single(m.Find("io_transferred_bytes_total")).Value);
        Assert.Equal(12, Assert.Single(m.Find("assembly_count_current")).Value);
        Assert.Single(m.Find("op_duration_seconds_count"));
    }

    [Fact]
    public async Task Promtool_is_a_real_check()
    {
        // The lint must be able to fail: a counter without _total and a gauge named like a histogram part.
        var (exitCode, output) = await Promtool.CheckMetricsAsync("# HELP things Things.\n# TYPE things counter\nthings 1\n# HELP a_count A.\n# TYPE a_count gauge\na_count 1\n");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("_total", output, StringComparison.Ordinal);
    }
}
