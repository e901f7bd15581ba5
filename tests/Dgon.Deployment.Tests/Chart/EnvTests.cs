using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Environment of the api, operator and dashboard containers (the contract with their configuration).</summary>
public sealed class EnvTests
{
    private static JsonObject Api(RenderedChart chart) => Container(chart.Get("Deployment", Names.Api), "api");

    private static JsonObject Operator(RenderedChart chart) => Container(chart.Get("Deployment", Names.Operator), "operator");

    private static void AssertFromSecret(JsonObject container, string env, string secret, string key)
    {
        var reference = Env(container, env)["valueFrom"]?["secretKeyRef"]
            ?? throw new Xunit.Sdk.XunitException($"{env} of {Str(container["name"])} is not read from a Secret");
        Assert.Equal(secret, Str(reference["name"]));
        Assert.Equal(key, Str(reference["key"]));
    }

    private static void AssertFieldRef(JsonObject container, string env, string path) =>
        Assert.Equal(path, Str(Env(container, env)["valueFrom"]?["fieldRef"]?["fieldPath"]));

    [Fact]
    public void Api_runs_in_kubernetes_mode_in_its_pod_namespace()
    {
        var api = Api(Helm.Template());

        Assert.Equal("kubernetes", Str(Env(api, "DGON_REGISTRY")["value"]));
        AssertFieldRef(api, "DGON_NAMESPACE", "metadata.namespace");
        Assert.Equal("30", Str(Env(api, "DGON_HEARTBEAT_GRACE_SECONDS")["value"]));
        Assert.Equal("10", Str(Env(api, "DGON_STATUS_REFRESH_SECONDS")["value"]));
        Assert.Equal("500", Str(Env(api, "DGON_STATUS_WRITES_PER_SECOND")["value"]));
        Assert.Equal("5", Str(Env(api, "DGON_AUTH_FAILURE_THRESHOLD")["value"]));
        Assert.Equal("600", Str(Env(api, "DGON_AUTH_FAILURE_WINDOW_SECONDS")["value"]));
        Assert.Equal("http://localhost:3000", Str(Env(api, "CORS_ORIGIN")["value"]));
        Assert.DoesNotContain(api["env"]!.AsArray(), e => Str(e!["name"]) is "DGON_SECRET_KEY" or "KUBECONFIG");
    }

    [Fact]
    public void Bundled_mode_reads_database_url_from_the_chart_secret()
    {
        var chart = Helm.Template();

        AssertFromSecret(Api(chart), "DATABASE_URL", Names.DatabaseUrlSecret, "DATABASE_URL");
        AssertFromSecret(Operator(chart), "DATABASE_URL", Names.DatabaseUrlSecret, "DATABASE_URL");
        Assert.True(chart.Get("Secret", Names.DatabaseUrlSecret)["data"]?["DATABASE_URL"] is not null);
    }

    [Fact]
    public void External_mode_reads_database_url_from_the_existing_secret_and_key()
    {
        var chart = Helm.Template(
            "--set", "postgresql.mode=external",
            "--set", "postgresql.external.existingSecret=pg-credentials",
            "--set", "postgresql.external.key=url");

        AssertFromSecret(Api(chart), "DATABASE_URL", "pg-credentials", "url");
        AssertFromSecret(Operator(chart), "DATABASE_URL", "pg-credentials", "url");
        Assert.Equal([Names.AdminSecret], chart.OfKind("Secret").Select(Name));
    }

    [Fact]
    public void Operator_identifies_itself_by_pod_name_in_the_lease()
    {
        var chart = Helm.Template();
        var op = Operator(chart);

        AssertFieldRef(op, "POD_NAME", "metadata.name");
        AssertFieldRef(op, "DGON_NAMESPACE", "metadata.namespace");
        Assert.Equal("dgon-operator", Str(Env(op, "DGON_LEASE_NAME")["value"]));
        Assert.Equal("10", Str(Env(op, "DGON_LEADER_LEASE_SECONDS")["value"]));
        Assert.Equal("7", Str(Env(op, "DGON_LEADER_RENEW_SECONDS")["value"]));
        Assert.Equal("2", Str(Env(op, "DGON_LEADER_RETRY_SECONDS")["value"]));
        Assert.Equal(2, chart.Get("Deployment", Names.Operator)["spec"]!["replicas"]!.GetValue<long>());
    }

    [Fact]
    public void Lifecycle_timing_is_the_same_for_api_and_operator()
    {
        var chart = Helm.Template("--set", "lifecycle.heartbeatGraceSeconds=45", "--set", "lifecycle.statusRefreshSeconds=20");

        foreach (var container in new[] { Api(chart), Operator(chart) })
        {
            Assert.Equal("45", Str(Env(container, "DGON_HEARTBEAT_GRACE_SECONDS")["value"]));
        }

        // The refresh interval is the API's alone (one writer of lastHeartbeatTime); the operator does not read it.
        Assert.Equal("20", Str(Env(Api(chart), "DGON_STATUS_REFRESH_SECONDS")["value"]));
        Assert.DoesNotContain(Operator(chart)["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_STATUS_REFRESH_SECONDS");
    }

    [Fact]
    public void The_status_write_budget_goes_to_the_api_only_and_must_be_a_positive_integer()
    {
        var chart = Helm.Template("--set", "lifecycle.statusWritesPerSecond=2000");
        Assert.Equal("2000", Str(Env(Api(chart), "DGON_STATUS_WRITES_PER_SECOND")["value"]));
        Assert.DoesNotContain(Operator(chart)["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_STATUS_WRITES_PER_SECOND");
        Assert.NotEqual(0, Helm.TryTemplate("--set", "lifecycle.statusWritesPerSecond=0").ExitCode);
    }

    [Fact]
    public void A_refresh_interval_over_half_the_grace_period_is_refused()
    {
        var result = Helm.TryTemplate("--set", "lifecycle.heartbeatGraceSeconds=30", "--set", "lifecycle.statusRefreshSeconds=16");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("at most half of lifecycle.heartbeatGraceSeconds", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, Helm.TryTemplate("--set", "lifecycle.heartbeatGraceSeconds=30", "--set", "lifecycle.statusRefreshSeconds=15").ExitCode);
    }

    [Fact]
    public void Dashboard_reads_the_api_service_by_name_and_port()
    {
        var dashboard = Container(Helm.Template().Get("Deployment", Names.Dashboard), "dashboard");

        Assert.Equal("http://dgon-api:8001/", Str(Env(dashboard, "DGON_API_BASE")["value"]));
        Assert.Equal("5", Str(Env(dashboard, "DGON_REFRESH_SECONDS")["value"]));
        Assert.Null(dashboard["env"]!.AsArray().FirstOrDefault(e => Str(e!["name"]) == "DATABASE_URL"));

        var moved = Container(Helm.Template("--set", "api.service.port=80").Get("Deployment", Names.Dashboard), "dashboard");
        Assert.Equal("http://dgon-api:80/", Str(Env(moved, "DGON_API_BASE")["value"]));
    }

    [Fact]
    public void Cors_origin_follows_the_dashboard_ingress_unless_set()
    {
        Assert.Equal("https://console.example.com", Str(Env(Api(Helm.Template(
            "--set", "ingress.dashboard.enabled=true", "--set", "ingress.dashboard.tls.enabled=true")), "CORS_ORIGIN")["value"]));
        Assert.Equal("https://a.example,https://b.example", Str(Env(Api(Helm.Template(
            "--set", "api.corsOrigin=https://a.example\\,https://b.example")), "CORS_ORIGIN")["value"]));
    }

    [Fact]
    public void Api_reads_the_admin_token_from_the_generated_secret_and_nothing_else_gets_it()
    {
        var chart = Helm.Template();

        AssertFromSecret(Api(chart), "DGON_ADMIN_TOKEN", Names.AdminSecret, "token");
        foreach (var other in new[] { Operator(chart), Container(chart.Get("Deployment", Names.Dashboard), "dashboard") })
        {
            Assert.DoesNotContain(other["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_ADMIN_TOKEN");
        }
    }

    [Fact]
    public void Api_reads_the_admin_token_from_an_existing_secret_and_key()
    {
        var chart = Helm.Template("--set", "admin.existingSecret=ops-admin", "--set", "admin.existingSecretKey=bearer");

        AssertFromSecret(Api(chart), "DGON_ADMIN_TOKEN", "ops-admin", "bearer");

        // The key alone does not move the reference away from the generated Secret's "token".
        AssertFromSecret(Api(Helm.Template("--set", "admin.existingSecretKey=bearer")), "DGON_ADMIN_TOKEN", Names.AdminSecret, "token");
    }

    [Fact]
    public void Hsts_is_on_while_the_api_ingress_has_tls_unless_turned_off()
    {
        static string? Hsts(params string[] args) => Str(Env(Api(Helm.Template(args)), "DGON_HSTS")["value"]);

        Assert.Equal("true", Hsts());
        Assert.Equal("true", Hsts("-f", Helm.CiValues("production-values.yaml")));
        Assert.Equal("false", Hsts("--set", "api.hsts=false"));
        Assert.Equal("false", Hsts("--set", "ingress.api.tls.enabled=false", "--set", "ingress.api.allowInsecureHttp=true"));
        Assert.Equal("false", Hsts("--set", "ingress.api.enabled=false"));
    }

    [Fact]
    public void Trusted_proxies_default_to_the_private_ranges_and_are_configurable()
    {
        static string? Proxies(params string[] args) => Str(Env(Api(Helm.Template(args)), "DGON_TRUSTED_PROXIES")["value"]);

        Assert.Equal("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", Proxies());
        Assert.Equal("10.42.0.0/16,fd00:10:42::/56,10.43.7.9", Proxies("--set", "api.trustedProxies={10.42.0.0/16,fd00:10:42::/56,10.43.7.9}"));
        Assert.Equal("", Proxies("--set-json", "api.trustedProxies=[]"));
        Assert.DoesNotContain(Operator(Helm.Template())["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_TRUSTED_PROXIES");
    }

    [Fact]
    public void Values_and_chart_readme_say_to_narrow_the_trusted_proxies_on_a_shared_pod_network()
    {
        // The comments of values.yaml as running text.
        var values = File.ReadAllText(Path.Combine(Helm.ChartDir, "values.yaml")).Replace("\n  # ", " ", StringComparison.Ordinal);
        var readme = File.ReadAllText(Path.Combine(Helm.ChartDir, "README.md"));

        Assert.Contains("Where the cluster's pod network is shared with workloads you do not trust, narrow it to the ingress controller's pod CIDR", values, StringComparison.Ordinal);
        Assert.Contains("narrow it to the ingress controller's pod CIDR", readme, StringComparison.Ordinal);
    }

    [Fact]
    public void Rate_limits_are_switched_off_only_on_request()
    {
        Assert.DoesNotContain(Api(Helm.Template())["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_RATE_LIMITS");
        Assert.DoesNotContain(Api(Helm.Production())["env"]!.AsArray(), e => Str(e!["name"]) == "DGON_RATE_LIMITS");

        Assert.Equal("off", Str(Env(Api(Helm.Template("--set", "api.rateLimits.enabled=false")), "DGON_RATE_LIMITS")["value"]));
    }

    [Fact]
    public void Extra_env_is_appended()
    {
        var chart = Helm.Template("--set", "api.extraEnv[0].name=Logging__LogLevel__Default,api.extraEnv[0].value=Debug");

        Assert.Equal("Debug", Str(Env(Api(chart), "Logging__LogLevel__Default")["value"]));
    }

    [Fact]
    public void Database_url_checksum_rolls_the_pods_only_when_the_url_changes()
    {
        static string? Checksum(RenderedChart chart, string name) =>
            Str(PodTemplateMetadata(chart.Get("Deployment", name))["annotations"]?["checksum/database-url"]);

        var a = Helm.Template("--set", "postgresql.bundled.password=first");
        var a2 = Helm.Template("--set", "postgresql.bundled.password=first", "--set", "api.replicas=3");
        var b = Helm.Template("--set", "postgresql.bundled.password=second");

        Assert.Matches("^[0-9a-f]{64}$", Checksum(a, Names.Api));
        Assert.Equal(Checksum(a, Names.Api), Checksum(a, Names.Operator));
        Assert.Equal(Checksum(a, Names.Api), Checksum(a2, Names.Api));
        Assert.NotEqual(Checksum(a, Names.Api), Checksum(b, Names.Api));

        var external = Helm.Template("--set", "postgresql.mode=external", "--set", "postgresql.external.existingSecret=one");
        var otherSecret = Helm.Template("--set", "postgresql.mode=external", "--set", "postgresql.external.existingSecret=two");
        Assert.NotEqual(Checksum(external, Names.Api), Checksum(otherSecret, Names.Api));
    }
}
