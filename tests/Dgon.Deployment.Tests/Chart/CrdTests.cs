namespace Dgon.Deployment.Tests.Chart;

/// <summary>The chart ships the repository's one CRD file unchanged.</summary>
public sealed class CrdTests
{
    [Fact]
    public void Chart_crd_is_a_byte_identical_copy_of_the_repository_crd()
    {
        var source = Path.Combine(Dgon.Testing.RepoPaths.Root, "crds", "dgonnodes.dgon.io.yaml");
        var copy = Path.Combine(Helm.ChartDir, "crds", "dgonnodes.dgon.io.yaml");

        Assert.True(
            File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(copy)),
            $"{copy} differs from {source}, the single source of the CRD. Re-copy it: cp crds/dgonnodes.dgon.io.yaml charts/dgon/crds/");
        Assert.Equal(["dgonnodes.dgon.io.yaml"], Directory.GetFiles(Path.Combine(Helm.ChartDir, "crds")).Select(Path.GetFileName));
    }

    [Fact]
    public void Helm_installs_the_crd_from_the_crds_folder()
    {
        var crd = Helm.Template("--include-crds").Get("CustomResourceDefinition", "dgonnodes.dgon.io");

        Assert.Equal("apiextensions.k8s.io/v1", RenderedChart.Str(crd["apiVersion"]));
        Assert.Empty(Helm.Template().OfKind("CustomResourceDefinition"));
    }
}
