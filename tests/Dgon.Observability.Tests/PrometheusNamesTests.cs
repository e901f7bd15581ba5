using Dgon.Observability.Exposition;

namespace Dgon.Observability.Tests;

public sealed class PrometheusNamesTests
{
    [Theory]
    [InlineData("http.server.request.duration", "s", PrometheusType.Histogram, "http_server_request_duration_seconds")]
    [InlineData("dgon_reconcile_duration_seconds", "s", PrometheusType.Histogram, "dgon_reconcile_duration_seconds")]
    [InlineData("dgon_heartbeats_total", null, PrometheusType.Counter, "dgon_heartbeats_total")]
    [InlineData("dgon_reconcile_total", null, PrometheusType.Counter, "dgon_reconcile_total")]
    [InlineData("dotnet.gc.collections", "{collection}", PrometheusType.Counter, "dotnet_gc_collections_total")]
    [InlineData("dotnet.process.cpu.time", "s", PrometheusType.Counter, "dotnet_process_cpu_time_seconds_total")]
    [InlineData("dotnet.gc.heap.total_allocated", "By", PrometheusType.Counter, "dotnet_gc_heap_total_allocated_bytes_total")]
    [InlineData("dgon_node_memory_used_bytes", "By", PrometheusType.Gauge, "dgon_node_memory_used_bytes")]
    [InlineData("dgon_node_gpu_utilization_ratio", "1", PrometheusType.Gauge, "dgon_node_gpu_utilization_ratio")]
    [InlineData("cache.hit", "1", PrometheusType.Gauge, "cache_hit_ratio")]
    [InlineData("dotnet.assembly.count", "{assembly}", PrometheusType.Gauge, "dotnet_assembly_count_current")]
    [InlineData("queue-depth", null, PrometheusType.Gauge, "queue_depth")]
    [InlineData("9lives", null, PrometheusType.Gauge, "_9lives")]
    [InlineData("rpc:latency", "ms", PrometheusType.Histogram, "rpc:latency_milliseconds")]
    public void Metric_names_follow_the_prometheus_conventions(string name, string? unit, PrometheusType type, string expected) =>
        Assert.Equal(expected, PrometheusNames.MetricName(name, unit, type));

    [Theory]
    [InlineData("http.request.method", "http_request_method")]
    [InlineData("phase", "phase")]
    [InlineData("a:b", "a_b")]
    public void Label_names_are_sanitised(string key, string expected) => Assert.Equal(expected, PrometheusNames.LabelName(key));

    [Fact]
    public void Tag_values_are_rendered_in_the_invariant_culture()
    {
        Assert.Equal("0.5", PrometheusNames.LabelValue(0.5));
        Assert.Equal("true", PrometheusNames.LabelValue(true));
        Assert.Equal("", PrometheusNames.LabelValue(null));
        Assert.Equal("404", PrometheusNames.LabelValue(404));
    }
}
