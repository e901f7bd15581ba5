using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>`helm test`: a hook pod that asks the API Service for /readyz and /v1/summary.</summary>
public sealed class TestHookTests
{
    [Fact]
    public void Test_pod_is_a_helm_test_hook_checking_readyz_and_summary_over_the_service()
    {
        var pod = Helm.Template().Get("Pod", Names.TestPod);

        var annotations = pod["metadata"]!["annotations"]!;
        Assert.Equal("test", Str(annotations["helm.sh/hook"]));
        Assert.Contains("before-hook-creation", Str(annotations["helm.sh/hook-delete-policy"]), StringComparison.Ordinal);
        var spec = PodSpecOf(pod)!;
        Assert.Equal("Never", Str(spec["restartPolicy"]));

        var container = Assert.Single(AllContainers(spec));
        Assert.StartsWith("docker.io/library/busybox:", Str(container["image"]), StringComparison.Ordinal);
        var script = string.Join('\n', container["command"]!.AsArray().Select(Str));
        Assert.Contains("http://dgon-api:8001/readyz", script, StringComparison.Ordinal);
        Assert.Contains("http://dgon-api:8001/v1/summary", script, StringComparison.Ordinal);
        Assert.Contains("total_nodes", script, StringComparison.Ordinal);
    }

    [Fact]
    public void Helm_template_skip_tests_leaves_it_out()
    {
        Assert.False(Helm.Template("--skip-tests").Has("Pod", Names.TestPod));
    }
}
