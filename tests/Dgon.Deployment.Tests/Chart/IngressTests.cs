using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Agents reach the API from outside through an Ingress that exposes only /v1, over TLS unless told otherwise.</summary>
public sealed class IngressTests
{
    /// <summary>Plain HTTP on the API ingress, explicitly allowed.</summary>
    private static readonly string[] InsecureHttp = ["--set", "ingress.api.tls.enabled=false", "--set", "ingress.api.allowInsecureHttp=true"];

    private static JsonObject OnlyPath(JsonObject ingress)
    {
        var rule = Assert.Single(ingress["spec"]!["rules"]!.AsArray())!;
        return Assert.Single(rule["http"]!["paths"]!.AsArray())!.AsObject();
    }

    [Fact]
    public void Api_ingress_routes_only_the_v1_prefix_to_the_api_service_port_http()
    {
        var ingress = Helm.Template().Get("Ingress", Names.Api);

        Assert.Equal("networking.k8s.io/v1", Str(ingress["apiVersion"]));
        Assert.Equal("dgon.example.com", Str(ingress["spec"]!["rules"]![0]!["host"]));
        var path = OnlyPath(ingress);
        Assert.Equal("/v1", Str(path["path"]));
        Assert.Equal("Prefix", Str(path["pathType"]));
        Assert.Equal(Names.Api, Str(path["backend"]!["service"]!["name"]));
        Assert.Equal("http", Str(path["backend"]!["service"]!["port"]!["name"]));
        Assert.Null(ingress["spec"]!["ingressClassName"]);
    }

    [Fact]
    public void Default_values_put_tls_on_the_api_ingress_with_the_release_scoped_secret()
    {
        var ingress = Helm.Template().Get("Ingress", Names.Api);

        var tls = Assert.Single(ingress["spec"]!["tls"]!.AsArray())!;
        Assert.Equal(["dgon.example.com"], tls["hosts"]!.AsArray().Select(Str));
        Assert.Equal(Names.ApiTlsSecret, Str(tls["secretName"]));
        Assert.Null(ingress["metadata"]!["annotations"]);
    }

    [Fact]
    public void Api_ingress_without_tls_fails_with_a_message_naming_the_way_out()
    {
        var result = Helm.TryTemplate("--set", "ingress.api.tls.enabled=false");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("ingress.api.enabled is true but ingress.api.tls.enabled is false", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("node's token", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("ingress.api.allowInsecureHttp=true", result.Stderr, StringComparison.Ordinal);

        // The same refusal from `helm install` (offline; helm lint only logs a template's `fail`).
        var install = Helm.Run("install", Helm.Release, Helm.ChartDir, "--namespace", Helm.Namespace, "--dry-run=client",
            "--set", "ingress.api.tls.enabled=false");
        Assert.NotEqual(0, install.ExitCode);
        Assert.Contains("ingress.api.tls.enabled is false", install.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Api_ingress_without_tls_renders_when_insecure_http_is_allowed()
    {
        var ingress = Helm.Template(InsecureHttp).Get("Ingress", Names.Api);

        Assert.Null(ingress["spec"]!["tls"]);
        Assert.Equal("/v1", Str(OnlyPath(ingress)["path"]));
    }

    [Fact]
    public void Tls_off_needs_no_permission_when_the_api_ingress_is_disabled()
    {
        var chart = Helm.Template("--set", "ingress.api.enabled=false", "--set", "ingress.api.tls.enabled=false");

        Assert.False(chart.Has("Ingress", Names.Api));
        chart.Get("Deployment", Names.Api);
    }

    [Fact]
    public void Class_name_tls_and_annotations_appear_when_set()
    {
        var chart = Helm.Production();
        var ingress = chart.Get("Ingress", Names.Api);

        Assert.Equal("nginx", Str(ingress["spec"]!["ingressClassName"]));
        var tls = Assert.Single(ingress["spec"]!["tls"]!.AsArray())!;
        Assert.Equal(["dgon.example.com"], tls["hosts"]!.AsArray().Select(Str));
        Assert.Equal("dgon-example-com-tls", Str(tls["secretName"]));
        Assert.Equal("letsencrypt", Str(ingress["metadata"]!["annotations"]!["cert-manager.io/cluster-issuer"]));
    }

    [Fact]
    public void Tls_without_a_secret_name_uses_a_release_scoped_default()
    {
        var ingress = Helm.Template("--set", "ingress.api.host=agents.example.org").Get("Ingress", Names.Api);

        var tls = Assert.Single(ingress["spec"]!["tls"]!.AsArray())!;
        Assert.Equal("dgon-api-tls", Str(tls["secretName"]));
        Assert.Equal(["agents.example.org"], tls["hosts"]!.AsArray().Select(Str));
        Assert.Equal("agents.example.org", Str(ingress["spec"]!["rules"]![0]!["host"]));
    }

    [Fact]
    public void Empty_host_gives_a_rule_for_any_host()
    {
        var ingress = Helm.Template(["--set", "ingress.api.host=", .. InsecureHttp]).Get("Ingress", Names.Api);

        Assert.Null(ingress["spec"]!["rules"]![0]!["host"]);
        Assert.Equal("/v1", Str(OnlyPath(ingress)["path"]));
    }

    [Fact]
    public void Tls_without_host_fails_with_a_message()
    {
        var result = Helm.TryTemplate("--set", "ingress.api.host=", "--set", "ingress.api.tls.enabled=true");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("ingress.api.host is empty", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Api_ingress_can_be_disabled()
    {
        Assert.Empty(Helm.Template("--set", "ingress.api.enabled=false").OfKind("Ingress"));
    }

    [Fact]
    public void Dashboard_ingress_exists_only_when_enabled_and_routes_everything_to_the_dashboard()
    {
        Assert.False(Helm.Template().Has("Ingress", Names.Dashboard));

        var ingress = Helm.Production().Get("Ingress", Names.Dashboard);
        var path = OnlyPath(ingress);
        Assert.Equal("/", Str(path["path"]));
        Assert.Equal(Names.Dashboard, Str(path["backend"]!["service"]!["name"]));
        Assert.Equal("http", Str(path["backend"]!["service"]!["port"]!["name"]));
        Assert.Equal("console.example.com", Str(ingress["spec"]!["rules"]![0]!["host"]));
        Assert.Equal("console-example-com-tls", Str(ingress["spec"]!["tls"]![0]!["secretName"]));
    }

    [Fact]
    public void Dashboard_ingress_without_the_dashboard_fails_with_a_message()
    {
        var result = Helm.TryTemplate("--set", "dashboard.enabled=false", "--set", "ingress.dashboard.enabled=true");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("dashboard.enabled is false", result.Stderr, StringComparison.Ordinal);
    }
}
