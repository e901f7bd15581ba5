namespace Dgon.Deployment.Tests.Chart;

/// <summary>`helm lint --strict` (also validates values against values.schema.json).</summary>
public sealed class LintTests
{
    [Theory]
    [InlineData("default-values.yaml")]
    [InlineData("production-values.yaml")]
    public void Lint_strict_passes_with_the_ci_values(string valuesFile)
    {
        var result = Helm.Run("lint", "--strict", Helm.ChartDir, "-f", Helm.CiValues(valuesFile));

        Assert.True(result.ExitCode == 0, $"{result.CommandLine} failed:\n{result.Stdout}\n{result.Stderr}");
        Assert.Contains("0 chart(s) failed", result.Stdout);
        Assert.DoesNotContain("[WARNING]", result.Stdout);
    }

    [Fact]
    public void Lint_strict_fails_on_a_value_the_schema_rejects()
    {
        // Proves that the lint above would notice a broken configuration.
        var result = Helm.Run("lint", "--strict", Helm.ChartDir, "--set", "postgresql.mode=sqlite");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("postgresql/mode", result.Stdout + result.Stderr);
    }
}
