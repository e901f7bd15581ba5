using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// `helm test`: a hook pod that asks the API Service for /readyz and, with the admin token, /v1/summary (reads need a
/// credential since issue 12), and checks that anonymous reads are refused and /metrics is not on the public port.
/// </summary>
public sealed class TestHookTests
{
    private static string Script(params string[] args) =>
        string.Join('\n', Assert.Single(AllContainers(PodSpecOf(Helm.Template(args).Get("Pod", Names.TestPod))!))["command"]!.AsArray().Select(Str));

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
        Assert.Contains("wget -q -T 10 -O - --header \"Authorization: Bearer $DGON_ADMIN_TOKEN\" http://dgon-api:8001/v1/summary", script, StringComparison.Ordinal);
        Assert.Contains("total_nodes", script, StringComparison.Ordinal);
    }

    [Fact]
    public void The_admin_token_comes_from_the_admin_secret_and_is_never_printed()
    {
        var container = Assert.Single(AllContainers(PodSpecOf(Helm.Template().Get("Pod", Names.TestPod))!));
        var reference = Env(container, "DGON_ADMIN_TOKEN")["valueFrom"]!["secretKeyRef"]!;
        Assert.Equal(Names.AdminSecret, Str(reference["name"]));
        Assert.Equal("token", Str(reference["key"]));
        Assert.Null(Env(container, "DGON_ADMIN_TOKEN")["value"]);

        var script = Script();
        var lines = script.Split('\n');
        Assert.DoesNotContain(lines, l => l.TrimStart().StartsWith("echo", StringComparison.Ordinal) && l.Contains("$DGON_ADMIN_TOKEN", StringComparison.Ordinal));
        Assert.Equal(1, lines.Count(l => l.Contains("$DGON_ADMIN_TOKEN", StringComparison.Ordinal)));
        Assert.DoesNotContain("set -x", script, StringComparison.Ordinal);

        var existing = Assert.Single(AllContainers(PodSpecOf(Helm.Template("--set", "admin.existingSecret=ops-admin", "--set", "admin.existingSecretKey=bearer").Get("Pod", Names.TestPod))!));
        Assert.Equal("ops-admin", Str(Env(existing, "DGON_ADMIN_TOKEN")["valueFrom"]!["secretKeyRef"]!["name"]));
        Assert.Equal("bearer", Str(Env(existing, "DGON_ADMIN_TOKEN")["valueFrom"]!["secretKeyRef"]!["key"]));
    }

    [Fact]
    public void It_expects_401_for_anonymous_reads_and_404_for_metrics_on_the_public_port()
    {
        var script = Script();
        Assert.Contains("wget -q -T 10 -O /dev/null http://dgon-api:8001/v1/summary 2>&1", script, StringComparison.Ordinal);
        Assert.Contains("*\" 401 \"*) echo \"401, as expected\"", script, StringComparison.Ordinal);
        Assert.Contains("wget -q -T 10 -O /dev/null http://dgon-api:8001/metrics 2>&1", script, StringComparison.Ordinal);
        Assert.Contains("*\" 404 \"*) echo \"404, as expected\"", script, StringComparison.Ordinal);

        // Open reads: anonymous reads are allowed, so that check goes; the authenticated one stays.
        var open = Script("--set", "accounts.openReads=true");
        Assert.DoesNotContain(" 401 ", open, StringComparison.Ordinal);
        Assert.Contains("--header \"Authorization: Bearer $DGON_ADMIN_TOKEN\"", open, StringComparison.Ordinal);
    }

    [Fact]
    public void Helm_template_skip_tests_leaves_it_out()
    {
        Assert.False(Helm.Template("--skip-tests").Has("Pod", Names.TestPod));
    }
}
