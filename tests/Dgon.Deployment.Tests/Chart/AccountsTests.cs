using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.NetworkPolicyModel;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// Accounts, roles and API keys (issue 12): the accounts.* and oidc.* values reach the API and the dashboard as the
/// environment their configuration reads (api/Accounts/AccountOptions.cs, OidcOptions.cs), with the secure defaults;
/// the OIDC client secret reaches the dashboard from a Secret only.
/// </summary>
public sealed class AccountsTests
{
    private const string Authority = "https://idp.example.com/realms/dgon";
    private const string ClientSecret = "oidc-client-secret-Zq8vK2mW";

    private static readonly string[] Oidc = ["--set", "oidc.authority=" + Authority, "--set", "oidc.clientId=dgon-dashboard"];

    private static readonly string[] SharedOidcEnv =
    [
        "DGON_OIDC_AUTHORITY", "DGON_OIDC_CLIENT_ID", "DGON_OIDC_ROLE_CLAIM", "DGON_OIDC_ADMIN_VALUES",
        "DGON_OIDC_OPERATOR_VALUES", "DGON_OIDC_DISPLAY_NAME",
    ];

    private static JsonObject Api(RenderedChart chart) => Container(chart.Get("Deployment", Names.Api), "api");

    private static JsonObject Dashboard(RenderedChart chart) => Container(chart.Get("Deployment", Names.Dashboard), "dashboard");

    private static JsonObject Operator(RenderedChart chart) => Container(chart.Get("Deployment", Names.Operator), "operator");

    private static string? Value(JsonObject container, string env) => Str(Env(container, env)["value"]);

    private static IEnumerable<string> EnvNames(JsonObject container) => container["env"]!.AsArray().Select(e => Str(e!["name"])!);

    [Fact]
    public void Api_gets_the_secure_account_defaults()
    {
        var api = Api(Helm.Template());

        Assert.Equal("false", Value(api, "DGON_OPEN_READS"));
        Assert.Equal("false", Value(api, "DGON_SIGNUP"));
        Assert.Equal("viewer", Value(api, "DGON_SIGNUP_ROLE"));
        Assert.Equal("12", Value(api, "DGON_SESSION_HOURS"));
        Assert.Equal("20", Value(api, "DGON_AUTO_BAN_FAILURES"));
        Assert.Equal("600", Value(api, "DGON_AUTO_BAN_WINDOW_SECONDS"));
        Assert.Equal("3600", Value(api, "DGON_AUTO_BAN_SECONDS"));
        Assert.Equal("10/10", Value(api, "DGON_RATE_LIMIT_LOGIN"));
        Assert.Equal("3/3", Value(api, "DGON_RATE_LIMIT_SIGNUP"));
        Assert.DoesNotContain(EnvNames(api), n => n.StartsWith("DGON_OIDC_", StringComparison.Ordinal));
    }

    [Fact]
    public void Account_values_reach_the_api_and_open_reads_the_dashboard_too()
    {
        var chart = Helm.Template(
            "--set", "accounts.openReads=true",
            "--set", "accounts.signup.enabled=true",
            "--set", "accounts.signup.role=operator",
            "--set-json", "accounts.sessionHours=1.5",
            "--set", "accounts.autoBan.failures=0",
            "--set", "accounts.autoBan.windowSeconds=60",
            "--set", "accounts.autoBan.banSeconds=86400",
            "--set", "api.rateLimits.login=5/2",
            "--set", "api.rateLimits.signup=1/1");
        var api = Api(chart);

        Assert.Equal("true", Value(api, "DGON_OPEN_READS"));
        Assert.Equal("true", Value(api, "DGON_SIGNUP"));
        Assert.Equal("operator", Value(api, "DGON_SIGNUP_ROLE"));
        Assert.Equal("1.5", Value(api, "DGON_SESSION_HOURS"));
        Assert.Equal("0", Value(api, "DGON_AUTO_BAN_FAILURES"));
        Assert.Equal("60", Value(api, "DGON_AUTO_BAN_WINDOW_SECONDS"));
        Assert.Equal("86400", Value(api, "DGON_AUTO_BAN_SECONDS"));
        Assert.Equal("5/2", Value(api, "DGON_RATE_LIMIT_LOGIN"));
        Assert.Equal("1/1", Value(api, "DGON_RATE_LIMIT_SIGNUP"));

        // The dashboard shows anonymous pages exactly when the API allows anonymous reads.
        Assert.Equal("true", Value(Dashboard(chart), "DGON_OPEN_READS"));
        Assert.Equal("false", Value(Dashboard(Helm.Template()), "DGON_OPEN_READS"));
        Assert.DoesNotContain(EnvNames(Dashboard(chart)), n => n.StartsWith("DGON_SIGNUP", StringComparison.Ordinal) || n.StartsWith("DGON_AUTO_BAN", StringComparison.Ordinal));
        Assert.DoesNotContain(EnvNames(Operator(chart)), n => n is "DGON_OPEN_READS" or "DGON_SIGNUP" or "DGON_SESSION_HOURS");
    }

    [Fact]
    public void Large_integers_are_written_as_integers_not_in_exponent_form()
    {
        // A values file's numbers reach the templates as floats; 100000 must not become "1e+05".
        var values = Path.Combine(Directory.CreateTempSubdirectory("dgon-values-").FullName, "values.yaml");
        File.WriteAllText(values, "accounts:\n  autoBan:\n    failures: 100000\n    windowSeconds: 86400\n    banSeconds: 86400\n");

        var api = Api(Helm.Template("-f", values));

        Assert.Equal("100000", Value(api, "DGON_AUTO_BAN_FAILURES"));
        Assert.Equal("86400", Value(api, "DGON_AUTO_BAN_WINDOW_SECONDS"));
    }

    [Fact]
    public void The_dashboard_keeps_its_key_ring_in_a_writable_data_dir_an_empty_dir_by_default()
    {
        var deployment = Helm.Template().Get("Deployment", Names.Dashboard);
        var dashboard = Container(deployment, "dashboard");

        var dataDir = Value(dashboard, "DGON_DASHBOARD_DATA_DIR");
        var mount = Assert.Single(dashboard["volumeMounts"]!.AsArray(), m => Str(m!["mountPath"]) == dataDir)!;
        Assert.NotEqual(true, mount["readOnly"]?.GetValue<bool>());
        var volume = PodSpecOf(deployment)!["volumes"]!.AsArray().Single(v => Str(v!["name"]) == Str(mount["name"]))!;
        Assert.NotNull(volume["emptyDir"]);

        var claimed = Helm.Template("--set", "dashboard.dataDir.existingClaim=dashboard-keys", "--set", "dashboard.replicas=3").Get("Deployment", Names.Dashboard);
        var claimedVolume = PodSpecOf(claimed)!["volumes"]!.AsArray().Single(v => Str(v!["name"]) == Str(mount["name"]))!;
        Assert.Equal("dashboard-keys", Str(claimedVolume["persistentVolumeClaim"]!["claimName"]));
        Assert.Null(claimedVolume["emptyDir"]);
        Assert.Equal(3, claimed["spec"]!["replicas"]!.GetValue<long>());
    }

    [Fact]
    public void Several_dashboard_replicas_without_a_shared_key_ring_are_refused()
    {
        var result = Helm.TryTemplate("--set", "dashboard.replicas=2");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("dashboard.replicas is 2 but dashboard.dataDir.existingClaim is empty", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, Helm.TryTemplate("--set", "dashboard.replicas=2", "--set", "dashboard.enabled=false").ExitCode);
    }

    [Fact]
    public void Oidc_settings_go_to_both_the_api_and_the_dashboard()
    {
        var chart = Helm.Template([.. Oidc,
            "--set", "oidc.roleClaim=groups",
            "--set", "oidc.adminValues={platform-admins,sre}",
            "--set", "oidc.operatorValues={gpu-owners}",
            "--set", "oidc.displayName=Example SSO"]);

        foreach (var container in new[] { Api(chart), Dashboard(chart) })
        {
            Assert.Equal(Authority, Value(container, "DGON_OIDC_AUTHORITY"));
            Assert.Equal("dgon-dashboard", Value(container, "DGON_OIDC_CLIENT_ID"));
            Assert.Equal("groups", Value(container, "DGON_OIDC_ROLE_CLAIM"));
            Assert.Equal("platform-admins,sre", Value(container, "DGON_OIDC_ADMIN_VALUES"));
            Assert.Equal("gpu-owners", Value(container, "DGON_OIDC_OPERATOR_VALUES"));
            Assert.Equal("Example SSO", Value(container, "DGON_OIDC_DISPLAY_NAME"));
        }

        Assert.DoesNotContain(EnvNames(Operator(chart)), n => n.StartsWith("DGON_OIDC_", StringComparison.Ordinal));

        // Defaults of the claim mapping (the API's own defaults).
        var defaults = Api(Helm.Template(Oidc));
        Assert.Equal("roles", Value(defaults, "DGON_OIDC_ROLE_CLAIM"));
        Assert.Equal("dgon-admin", Value(defaults, "DGON_OIDC_ADMIN_VALUES"));
        Assert.Equal("dgon-operator", Value(defaults, "DGON_OIDC_OPERATOR_VALUES"));
        Assert.Equal("single sign-on", Value(defaults, "DGON_OIDC_DISPLAY_NAME"));
    }

    [Fact]
    public void An_inline_client_secret_goes_into_a_chart_secret_and_never_into_a_deployment()
    {
        var chart = Helm.Template([.. Oidc, "--set", "oidc.clientSecret=" + ClientSecret]);

        var secret = chart.Get("Secret", "dgon-oidc");
        Assert.Equal(ClientSecret, System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(Str(secret["data"]!["client-secret"])!)));

        var reference = Env(Dashboard(chart), "DGON_OIDC_CLIENT_SECRET")["valueFrom"]!["secretKeyRef"]!;
        Assert.Equal("dgon-oidc", Str(reference["name"]));
        Assert.Equal("client-secret", Str(reference["key"]));
        Assert.Null(Env(Dashboard(chart), "DGON_OIDC_CLIENT_SECRET")["value"]);

        // The API validates ID tokens without it; no workload carries the value itself.
        Assert.DoesNotContain("DGON_OIDC_CLIENT_SECRET", EnvNames(Api(chart)));
        foreach (var (owner, _) in chart.PodSpecs())
        {
            Assert.DoesNotContain(ClientSecret, owner.ToJsonString(), StringComparison.Ordinal);
        }

        // A new value rolls the dashboard.
        static string? Checksum(RenderedChart c) =>
            Str(PodTemplateMetadata(c.Get("Deployment", Names.Dashboard))["annotations"]!["checksum/oidc-client-secret"]);
        Assert.NotEqual(Checksum(chart), Checksum(Helm.Template([.. Oidc, "--set", "oidc.clientSecret=another-one"])));
    }

    [Fact]
    public void An_existing_secret_is_referenced_and_the_chart_writes_none()
    {
        var chart = Helm.Template([.. Oidc, "--set", "oidc.existingSecret=idp-client", "--set", "oidc.existingSecretKey=secret"]);

        var reference = Env(Dashboard(chart), "DGON_OIDC_CLIENT_SECRET")["valueFrom"]!["secretKeyRef"]!;
        Assert.Equal("idp-client", Str(reference["name"]));
        Assert.Equal("secret", Str(reference["key"]));
        Assert.False(chart.Has("Secret", "dgon-oidc"));
        Assert.DoesNotContain("DGON_OIDC_CLIENT_SECRET", EnvNames(Api(chart)));
    }

    [Fact]
    public void Without_a_client_secret_the_dashboard_gets_none()
    {
        var chart = Helm.Template(Oidc);

        Assert.DoesNotContain("DGON_OIDC_CLIENT_SECRET", EnvNames(Dashboard(chart)));
        Assert.False(chart.Has("Secret", "dgon-oidc"));
        Assert.Equal(Authority, Value(Dashboard(chart), "DGON_OIDC_AUTHORITY"));
    }

    [Fact]
    public void Without_an_authority_nothing_of_oidc_is_rendered()
    {
        var chart = Helm.Template("--set", "oidc.clientId=dgon-dashboard", "--set", "oidc.clientSecret=" + ClientSecret);

        foreach (var container in new[] { Api(chart), Dashboard(chart) })
        {
            Assert.DoesNotContain(EnvNames(container), n => n.StartsWith("DGON_OIDC_", StringComparison.Ordinal));
        }

        Assert.False(chart.Has("Secret", "dgon-oidc"));
    }

    [Theory]
    [InlineData("oidc.clientId=", "oidc.authority is set but oidc.clientId is empty")]
    [InlineData("oidc.existingSecret=idp-client,oidc.clientSecret=x", "oidc.existingSecret and oidc.clientSecret are both set")]
    public void Inconsistent_oidc_values_are_refused(string set, string message)
    {
        var result = Helm.TryTemplate([.. Oidc, "--set", set]);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void With_oidc_the_api_and_dashboard_may_reach_the_identity_provider_on_443_only()
    {
        var idp = AddressEndpoint.Of("203.0.113.50");
        static PodEndpoint Pod(string component) =>
            PodEndpoint.In(Helm.Namespace, "app.kubernetes.io/name=dgon", "app.kubernetes.io/instance=dgon", "app.kubernetes.io/component=" + component);

        // Production values narrow the API server's addresses, so 443 to the internet is not open otherwise.
        var off = Helm.Production();
        var on = Helm.Template(["-f", Helm.CiValues("production-values.yaml"), .. Oidc]);
        var narrowed = Helm.Template(["-f", Helm.CiValues("production-values.yaml"), .. Oidc, "--set", "networkPolicy.oidc.cidrs={198.51.100.0/24}"]);
        foreach (var component in new[] { "api", "dashboard" })
        {
            Assert.False(Allows([.. off.OfKind("NetworkPolicy")], Pod(component), idp, "TCP", 443), $"{component} without oidc");
            Assert.True(Allows([.. on.OfKind("NetworkPolicy")], Pod(component), idp, "TCP", 443), $"{component} with oidc");
            Assert.False(Allows([.. on.OfKind("NetworkPolicy")], Pod(component), idp, "TCP", 80), $"{component} port 80");
            Assert.False(Allows([.. narrowed.OfKind("NetworkPolicy")], Pod(component), idp, "TCP", 443), $"{component} narrowed");
            Assert.True(Allows([.. narrowed.OfKind("NetworkPolicy")], Pod(component), AddressEndpoint.Of("198.51.100.9"), "TCP", 443), $"{component} narrowed, in range");
        }

        Assert.False(Allows([.. on.OfKind("NetworkPolicy")], Pod("operator"), idp, "TCP", 443), "the operator needs no identity provider");
    }
}
