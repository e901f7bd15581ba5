using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Image references: {registry}/{repository}:{tag}, the tag defaulting to the chart's appVersion.</summary>
public sealed class ImageTests
{
    private static string ImageOf(RenderedChart chart, string name) =>
        Str(Container(chart.Get("Deployment", name), name["dgon-".Length..])["image"])!;

    [Fact]
    public void Default_images_are_the_app_version_from_ghcr()
    {
        var chart = Helm.Template();

        Assert.Equal("ghcr.io/dgon-console/dgon-api:0.4.0", ImageOf(chart, Names.Api));
        Assert.Equal("ghcr.io/dgon-console/dgon-operator:0.4.0", ImageOf(chart, Names.Operator));
        Assert.Equal("ghcr.io/dgon-console/dgon-dashboard:0.4.0", ImageOf(chart, Names.Dashboard));
        Assert.Equal("IfNotPresent", Str(Container(chart.Get("Deployment", Names.Api), "api")["imagePullPolicy"]));
    }

    [Fact]
    public void Chart_app_version_is_the_default_tag()
    {
        var chartYaml = File.ReadAllText(Path.Combine(Helm.ChartDir, "Chart.yaml"));

        Assert.Contains("appVersion: \"0.4.0\"", chartYaml, StringComparison.Ordinal);
        Assert.Contains("version: 0.1.0", chartYaml, StringComparison.Ordinal);
        Assert.Contains("apiVersion: v2", chartYaml, StringComparison.Ordinal);
        Assert.Contains("kubeVersion: \">=1.27.0-0\"", chartYaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Global_tag_applies_to_every_component()
    {
        var chart = Helm.Template("--set", "image.tag=1.2.3");

        Assert.Equal("ghcr.io/dgon-console/dgon-api:1.2.3", ImageOf(chart, Names.Api));
        Assert.Equal("ghcr.io/dgon-console/dgon-operator:1.2.3", ImageOf(chart, Names.Operator));
        Assert.Equal("ghcr.io/dgon-console/dgon-dashboard:1.2.3", ImageOf(chart, Names.Dashboard));
    }

    [Fact]
    public void Component_tag_wins_over_the_global_tag()
    {
        var chart = Helm.Template("--set", "image.tag=1.2.3", "--set", "operator.image.tag=1.2.4-hotfix");

        Assert.Equal("ghcr.io/dgon-console/dgon-api:1.2.3", ImageOf(chart, Names.Api));
        Assert.Equal("ghcr.io/dgon-console/dgon-operator:1.2.4-hotfix", ImageOf(chart, Names.Operator));
        Assert.Equal("1.2.4-hotfix", Str(chart.Get("Deployment", Names.Operator)["metadata"]!["labels"]!["app.kubernetes.io/version"]));
    }

    [Fact]
    public void Custom_registry_and_repository()
    {
        var chart = Helm.Template(
            "--set", "image.registry=registry.example.com:5000/team/",
            "--set", "dashboard.image.repository=console-ui",
            "--set", "image.pullPolicy=Always");

        Assert.Equal("registry.example.com:5000/team/dgon-api:0.4.0", ImageOf(chart, Names.Api));
        Assert.Equal("registry.example.com:5000/team/console-ui:0.4.0", ImageOf(chart, Names.Dashboard));
        Assert.Equal("Always", Str(Container(chart.Get("Deployment", Names.Operator), "operator")["imagePullPolicy"]));
    }

    [Fact]
    public void Production_values_use_their_registry_and_tag()
    {
        var chart = Helm.Production();

        Assert.Equal("registry.example.com/dgon/dgon-api:0.4.1", ImageOf(chart, Names.Api));
        Assert.Equal("registry.example.com/dgon/dgon-dashboard:0.4.1", ImageOf(chart, Names.Dashboard));
    }

    [Fact]
    public void Postgresql_and_test_images_are_configurable()
    {
        var chart = Helm.Template(
            "--set", "postgresql.bundled.image.repository=mirror.example.com/postgres",
            "--set-string", "postgresql.bundled.image.tag=15.8",
            "--set", "tests.image.repository=mirror.example.com/busybox");

        Assert.Equal("mirror.example.com/postgres:15.8", Str(Container(chart.Get("StatefulSet", Names.Postgresql), "postgresql")["image"]));
        Assert.StartsWith("mirror.example.com/busybox:", Str(AllContainers(PodSpecOf(chart.Get("Pod", Names.TestPod))!).Single()["image"]), StringComparison.Ordinal);
        Assert.Equal("docker.io/library/postgres:15", Str(Container(Helm.Template().Get("StatefulSet", Names.Postgresql), "postgresql")["image"]));
    }
}
