using System.Security.Cryptography;
using System.Text;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// The admin token of the API's /v1/admin endpoints: a Secret generated once (like Argo CD's
/// argocd-initial-admin-secret) and read back on upgrade, or a Secret of the user's (admin.existingSecret).
/// </summary>
public sealed class AdminTokenTests
{
    private static string Token(RenderedChart chart) =>
        Encoding.UTF8.GetString(Convert.FromBase64String(Str(chart.Get("Secret", Names.AdminSecret)["data"]!["token"])!));

    private static string? Checksum(RenderedChart chart) =>
        Str(PodTemplateMetadata(chart.Get("Deployment", Names.Api))["annotations"]?["checksum/admin-token"]);

    [Fact]
    public void The_generated_secret_holds_a_long_random_token()
    {
        var chart = Helm.Template();
        var secret = chart.Get("Secret", Names.AdminSecret);

        Assert.Equal("Opaque", Str(secret["type"]));
        Assert.Equal(["token"], secret["data"]!.AsObject().Select(p => p.Key));
        var token = Token(chart);
        Assert.True(token.Length >= 43, $"the admin token has {token.Length} characters; at least 43 expected");
        Assert.Matches("^[A-Za-z0-9]{48}$", token);
        Assert.Equal("api", Str(secret["metadata"]!["labels"]!["app.kubernetes.io/component"]));
    }

    [Fact]
    public void Each_fresh_install_gets_its_own_token()
    {
        // Helm.Template caches renders; TryTemplate renders anew. Offline there is nothing to look up.
        var first = Token(RenderedChart.Parse(Helm.TryTemplate().EnsureSuccess().Stdout));
        var second = Token(RenderedChart.Parse(Helm.TryTemplate().EnsureSuccess().Stdout));

        Assert.NotEqual(first, second);
    }

    [Fact]
    public void The_checksum_annotation_is_taken_from_the_token_the_secret_holds()
    {
        var chart = Helm.Template();
        var expected = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Names.AdminSecret}/token/{Token(chart)}")));

        Assert.Equal(expected, Checksum(chart));
        Assert.DoesNotContain(Token(chart), chart.Get("Deployment", Names.Api).ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_token_is_read_back_from_the_cluster_on_upgrade()
    {
        // lookup cannot run without a cluster; check that the template asks for the existing Secret before generating.
        var helpers = File.ReadAllText(Path.Combine(Helm.ChartDir, "templates", "_helpers.tpl"));

        Assert.Contains("lookup \"v1\" \"Secret\" .Release.Namespace (include \"dgon.admin.generatedSecretName\" .)", helpers, StringComparison.Ordinal);
        Assert.Contains("randAlphaNum 48", helpers, StringComparison.Ordinal);
    }

    [Fact]
    public void An_existing_secret_replaces_the_generated_one()
    {
        var chart = Helm.Template("--set", "admin.existingSecret=ops-admin", "--set", "admin.existingSecretKey=bearer");

        Assert.False(chart.Has("Secret", Names.AdminSecret));
        Assert.DoesNotContain(chart.OfKind("Secret"), s => Name(s) == "ops-admin");
        Assert.Matches("^[0-9a-f]{64}$", Checksum(chart));
        var other = Helm.Template("--set", "admin.existingSecret=other-admin", "--set", "admin.existingSecretKey=bearer");
        Assert.NotEqual(Checksum(chart), Checksum(other));
    }

    [Fact]
    public void The_secret_name_follows_the_release_prefix()
    {
        var chart = RenderedChart.Parse(Helm.Run("template", "console", Helm.ChartDir).EnsureSuccess().Stdout);

        chart.Get("Secret", "console-dgon-admin");
        var reference = Env(Container(chart.Get("Deployment", "console-dgon-api"), "api"), "DGON_ADMIN_TOKEN")["valueFrom"]!["secretKeyRef"]!;
        Assert.Equal("console-dgon-admin", Str(reference["name"]));
    }
}
