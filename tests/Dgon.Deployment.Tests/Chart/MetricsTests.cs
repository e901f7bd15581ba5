using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// Prometheus scraping: ServiceMonitors when the Prometheus Operator is there, else pod annotations; the API's
/// /metrics is on its management port (api.managementPort, 9090) unless that is off.
/// </summary>
public sealed class MetricsTests
{
    private const string ServiceMonitorApi = "monitoring.coreos.com/v1/ServiceMonitor";

    [Fact]
    public void Service_monitors_scrape_the_api_management_port_and_the_operator_http_port()
    {
        var chart = Helm.Template("--api-versions", ServiceMonitorApi);

        var monitors = chart.OfKind("ServiceMonitor").ToList();
        Assert.Equal([Names.Api, Names.Operator], monitors.Select(Name).Order());
        foreach (var (monitorName, port) in new[] { (Names.Api, "metrics"), (Names.Operator, "http") })
        {
            var monitor = chart.Get("ServiceMonitor", monitorName);
            Assert.Equal("monitoring.coreos.com/v1", Str(monitor["apiVersion"]));
            var endpoint = Assert.Single(monitor["spec"]!["endpoints"]!.AsArray())!;
            Assert.Equal(port, Str(endpoint["port"]));
            Assert.Equal("/metrics", Str(endpoint["path"]));
            Assert.Equal("30s", Str(endpoint["interval"]));
            Assert.Equal([Helm.Namespace], monitor["spec"]!["namespaceSelector"]!["matchNames"]!.AsArray().Select(Str));

            // Each selects exactly its own Service of this release, and that Service has the named port.
            var service = Assert.Single(chart.OfKind("Service"), s => Selects(monitor, s));
            Assert.Equal(monitorName, Name(service));
            Assert.Contains(service["spec"]!["ports"]!.AsArray(), p => Str(p!["name"]) == port);
        }

        // The api Service's "metrics" port is the container's management port, 9090.
        var apiPort = chart.Get("Service", Names.Api)["spec"]!["ports"]!.AsArray().Single(p => Str(p!["name"]) == "metrics")!;
        Assert.Equal(9090, apiPort["port"]!.GetValue<long>());
        Assert.Equal("metrics", Str(apiPort["targetPort"]));

        foreach (var name in new[] { Names.Api, Names.Operator, Names.Dashboard })
        {
            var annotations = PodTemplateMetadata(chart.Get("Deployment", name))["annotations"]?.AsObject() ?? [];
            Assert.DoesNotContain(annotations, a => a.Key.StartsWith("prometheus.io/", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("--set", "api.managementPort=null")]
    [InlineData("--set", "api.managementPort=0")]
    public void Without_a_management_port_the_api_service_monitor_scrapes_http(params string[] args)
    {
        var chart = Helm.Template(["--api-versions", ServiceMonitorApi, .. args]);

        var endpoint = Assert.Single(chart.Get("ServiceMonitor", Names.Api)["spec"]!["endpoints"]!.AsArray())!;
        Assert.Equal("http", Str(endpoint["port"]));
        Assert.Equal(["http"], chart.Get("Service", Names.Api)["spec"]!["ports"]!.AsArray().Select(p => Str(p!["name"])));
    }

    [Fact]
    public void Service_monitor_is_rendered_when_only_the_group_version_is_known()
    {
        // Helm's capabilities hold "monitoring.coreos.com/v1" for a live cluster's discovery and for
        // `--api-versions monitoring.coreos.com/v1` (Argo CD, offline renders), not always the kind string.
        var chart = Helm.Template("--api-versions", "monitoring.coreos.com/v1");

        Assert.Equal([Names.Api, Names.Operator], chart.OfKind("ServiceMonitor").Select(Name).Order());
        Assert.All(chart.OfKind("ServiceMonitor"), m => Assert.Equal("monitoring.coreos.com/v1", Str(m["apiVersion"])));
        var annotations = PodTemplateMetadata(chart.Get("Deployment", Names.Api))["annotations"]!.AsObject();
        Assert.DoesNotContain(annotations, a => a.Key.StartsWith("prometheus.io/", StringComparison.Ordinal));

        // Another version of the group is not enough.
        Assert.Empty(Helm.Template("--api-versions", "monitoring.coreos.com/v1alpha1").OfKind("ServiceMonitor"));
    }

    [Fact]
    public void Service_monitor_takes_extra_labels_for_the_prometheus_selector()
    {
        var monitors = Helm.Production().OfKind("ServiceMonitor").ToList();

        Assert.Equal(2, monitors.Count);
        Assert.All(monitors, m => Assert.Equal("kube-prometheus-stack", Str(m["metadata"]!["labels"]!["release"])));
    }

    [Theory]
    [InlineData("9090", "--set", "metrics.serviceMonitor.enabled=true")]
    [InlineData("9090", "--api-versions", ServiceMonitorApi, "--set", "metrics.serviceMonitor.enabled=false")]
    [InlineData("9191", "--set", "api.managementPort=9191")]
    [InlineData("8001", "--set", "api.managementPort=null")]
    public void Without_a_service_monitor_api_and_operator_pods_carry_prometheus_annotations(string apiPort, params string[] args)
    {
        var chart = Helm.Template(args);

        Assert.Empty(chart.OfKind("ServiceMonitor"));
        foreach (var (name, port) in new[] { (Names.Api, apiPort), (Names.Operator, "8002") })
        {
            var annotations = PodTemplateMetadata(chart.Get("Deployment", name))["annotations"]!;
            Assert.Equal("true", Str(annotations["prometheus.io/scrape"]));
            Assert.Equal(port, Str(annotations["prometheus.io/port"]));
            Assert.Equal("/metrics", Str(annotations["prometheus.io/path"]));
        }

        var dashboard = PodTemplateMetadata(chart.Get("Deployment", Names.Dashboard))["annotations"]?.AsObject() ?? [];
        Assert.DoesNotContain(dashboard, a => a.Key.StartsWith("prometheus.io/", StringComparison.Ordinal));
    }

    [Fact]
    public void Grafana_dashboard_config_map_carries_the_sidecar_label_and_the_json()
    {
        var chart = Helm.Template();
        var map = chart.Get("ConfigMap", Names.GrafanaDashboard);

        Assert.Equal("1", Str(map["metadata"]!["labels"]!["grafana_dashboard"]));
        var json = Str(map["data"]!["dgon.json"])!;
        Assert.Equal(File.ReadAllText(Path.Combine(Helm.ChartDir, "dashboards", "dgon.json")).TrimEnd(), json.TrimEnd());
        Assert.Equal("DGON Console", Str(JsonNode.Parse(json)!["title"]));

        var relabelled = Helm.Template(
            "--set", "metrics.grafanaDashboard.labels.grafana_dashboard=null",
            "--set", "metrics.grafanaDashboard.labels.dashboards=dgon",
            "--set", "metrics.grafanaDashboard.namespace=monitoring").Get("ConfigMap", Names.GrafanaDashboard);
        Assert.Equal("dgon", Str(relabelled["metadata"]!["labels"]!["dashboards"]));
        Assert.Null(relabelled["metadata"]!["labels"]!["grafana_dashboard"]);
        Assert.Equal("monitoring", Str(relabelled["metadata"]!["namespace"]));

        Assert.Empty(Helm.Template("--set", "metrics.grafanaDashboard.enabled=false").OfKind("ConfigMap"));
    }

    /// <summary>Whether a ServiceMonitor's matchLabels and In-expressions select a Service by its labels.</summary>
    private static bool Selects(JsonNode monitor, JsonObject service)
    {
        var labels = service["metadata"]!["labels"]!.AsObject();
        var selector = monitor["spec"]!["selector"]!;
        var matchLabels = selector["matchLabels"]?.AsObject() ?? [];
        if (matchLabels.Any(kv => Str(labels[kv.Key]) != Str(kv.Value)))
        {
            return false;
        }

        foreach (var expression in selector["matchExpressions"]?.AsArray() ?? [])
        {
            Assert.Equal("In", Str(expression!["operator"]));
            var values = expression["values"]!.AsArray().Select(Str).ToHashSet();
            if (!values.Contains(Str(labels[Str(expression["key"])!])))
            {
                return false;
            }
        }

        return true;
    }
}
