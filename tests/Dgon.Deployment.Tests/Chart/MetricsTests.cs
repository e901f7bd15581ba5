using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Prometheus scraping: a ServiceMonitor when the Prometheus Operator is there, else pod annotations.</summary>
public sealed class MetricsTests
{
    private const string ServiceMonitorApi = "monitoring.coreos.com/v1/ServiceMonitor";

    [Fact]
    public void Service_monitor_scrapes_api_and_operator_when_the_cluster_serves_the_kind()
    {
        var chart = Helm.Template("--api-versions", ServiceMonitorApi);

        var monitor = Assert.Single(chart.OfKind("ServiceMonitor"));
        Assert.Equal("monitoring.coreos.com/v1", Str(monitor["apiVersion"]));
        var endpoint = Assert.Single(monitor["spec"]!["endpoints"]!.AsArray())!;
        Assert.Equal("http", Str(endpoint["port"]));
        Assert.Equal("/metrics", Str(endpoint["path"]));
        Assert.Equal("30s", Str(endpoint["interval"]));
        Assert.Equal([Helm.Namespace], monitor["spec"]!["namespaceSelector"]!["matchNames"]!.AsArray().Select(Str));

        // The selector picks exactly the api and operator Services of this release.
        var selected = chart.OfKind("Service").Where(s => Selects(monitor, s)).Select(Name).Order();
        Assert.Equal([Names.Api, Names.Operator], selected);

        foreach (var name in new[] { Names.Api, Names.Operator, Names.Dashboard })
        {
            var annotations = PodTemplateMetadata(chart.Get("Deployment", name))["annotations"]?.AsObject() ?? [];
            Assert.DoesNotContain(annotations, a => a.Key.StartsWith("prometheus.io/", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Service_monitor_is_rendered_when_only_the_group_version_is_known()
    {
        // Helm's capabilities hold "monitoring.coreos.com/v1" for a live cluster's discovery and for
        // `--api-versions monitoring.coreos.com/v1` (Argo CD, offline renders), not always the kind string.
        var chart = Helm.Template("--api-versions", "monitoring.coreos.com/v1");

        var monitor = Assert.Single(chart.OfKind("ServiceMonitor"));
        Assert.Equal("monitoring.coreos.com/v1", Str(monitor["apiVersion"]));
        var annotations = PodTemplateMetadata(chart.Get("Deployment", Names.Api))["annotations"]!.AsObject();
        Assert.DoesNotContain(annotations, a => a.Key.StartsWith("prometheus.io/", StringComparison.Ordinal));

        // Another version of the group is not enough.
        Assert.Empty(Helm.Template("--api-versions", "monitoring.coreos.com/v1alpha1").OfKind("ServiceMonitor"));
    }

    [Fact]
    public void Service_monitor_takes_extra_labels_for_the_prometheus_selector()
    {
        var monitor = Assert.Single(Helm.Production().OfKind("ServiceMonitor"));

        Assert.Equal("kube-prometheus-stack", Str(monitor["metadata"]!["labels"]!["release"]));
    }

    [Theory]
    [InlineData("--set", "metrics.serviceMonitor.enabled=true")]
    [InlineData("--api-versions", ServiceMonitorApi, "--set", "metrics.serviceMonitor.enabled=false")]
    public void Without_a_service_monitor_api_and_operator_pods_carry_prometheus_annotations(params string[] args)
    {
        var chart = Helm.Template(args);

        Assert.Empty(chart.OfKind("ServiceMonitor"));
        foreach (var (name, port) in new[] { (Names.Api, "8001"), (Names.Operator, "8002") })
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
