using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Renders against the oldest supported and a recent Kubernetes, with only current (non-deprecated) APIs.</summary>
public sealed class KubeVersionTests
{
    /// <summary>The one apiVersion each kind the chart may render must use (GA, not deprecated, served by 1.27+).</summary>
    private static readonly Dictionary<string, string> Expected = new()
    {
        ["Deployment"] = "apps/v1",
        ["StatefulSet"] = "apps/v1",
        ["Service"] = "v1",
        ["ServiceAccount"] = "v1",
        ["Secret"] = "v1",
        ["ConfigMap"] = "v1",
        ["Pod"] = "v1",
        ["Role"] = "rbac.authorization.k8s.io/v1",
        ["RoleBinding"] = "rbac.authorization.k8s.io/v1",
        ["Ingress"] = "networking.k8s.io/v1",
        ["NetworkPolicy"] = "networking.k8s.io/v1",
        ["PodDisruptionBudget"] = "policy/v1",
        ["ServiceMonitor"] = "monitoring.coreos.com/v1",
        ["CustomResourceDefinition"] = "apiextensions.k8s.io/v1",
    };

    [Theory]
    [InlineData("1.27.0")]
    [InlineData("1.35.0")]
    public void Everything_renders_with_current_api_versions(string kubeVersion)
    {
        foreach (var values in new[] { "default-values.yaml", "production-values.yaml" })
        {
            var chart = Helm.Template(
                "--kube-version", kubeVersion, "--include-crds", "-f", Helm.CiValues(values),
                "--set", "ingress.dashboard.enabled=true", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor");

            Assert.NotEmpty(chart.Objects);
            foreach (var obj in chart.Objects)
            {
                var kind = Kind(obj);
                Assert.True(Expected.TryGetValue(kind, out var apiVersion), $"{kind}/{Name(obj)}: kind not known to this test; add its current apiVersion");
                Assert.Equal(apiVersion, Str(obj["apiVersion"]));
            }
        }
    }

    [Fact]
    public void Kubernetes_older_than_1_27_is_refused()
    {
        var result = Helm.TryTemplate("--kube-version", "1.26.9");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(">=1.27.0-0", result.Stderr, StringComparison.Ordinal);
    }
}
