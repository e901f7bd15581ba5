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

    private const string BusyboxDigest = "sha256:73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662";

    [Fact]
    public void Third_party_images_are_pulled_by_digest_when_one_is_set()
    {
        var digest = "sha256:" + new string('a', 64);
        var chart = Helm.Template("--set", "postgresql.bundled.image.digest=" + digest, "--set", "tests.image.digest=");

        Assert.Equal("docker.io/library/postgres:15@" + digest, Str(Container(chart.Get("StatefulSet", Names.Postgresql), "postgresql")["image"]));
        Assert.Equal("docker.io/library/busybox:1.36.1", Str(AllContainers(PodSpecOf(chart.Get("Pod", Names.TestPod))!).Single()["image"]));
        // The version label keeps the tag.
        Assert.Equal("15", Str(chart.Get("StatefulSet", Names.Postgresql)["metadata"]!["labels"]!["app.kubernetes.io/version"]));
    }

    [Fact]
    public void The_test_image_is_pinned_by_default_and_the_floating_postgres_tag_is_not()
    {
        var chart = Helm.Template();

        // busybox:1.36.1's image index on Docker Hub; postgres:15 moves with each minor release, so its digest is the
        // operator's to pin (postgresql.bundled.image.digest).
        Assert.Equal("docker.io/library/busybox:1.36.1@" + BusyboxDigest, Str(AllContainers(PodSpecOf(chart.Get("Pod", Names.TestPod))!).Single()["image"]));
        Assert.Equal("docker.io/library/postgres:15", Str(Container(chart.Get("StatefulSet", Names.Postgresql), "postgresql")["image"]));
    }

    [Theory]
    [InlineData("postgresql.bundled.image.digest=sha256:abc")]
    [InlineData("postgresql.bundled.image.digest=73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662")]
    [InlineData("tests.image.digest=sha256:73AAF090F3D85AA34EE199857F03FA3A95C8EDE2FFD4CC2CDB5B94E566B11662")]
    public void A_malformed_digest_fails(string set)
    {
        var result = Helm.TryTemplate("--set", set);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/image/digest", result.Stderr, StringComparison.Ordinal);
    }
}
