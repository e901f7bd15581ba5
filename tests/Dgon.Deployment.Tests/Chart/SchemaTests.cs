namespace Dgon.Deployment.Tests.Chart;

/// <summary>values.schema.json and the chart's own checks turn mistakes into errors that name the problem.</summary>
public sealed class SchemaTests
{
    [Theory]
    [InlineData("postgresql.mode=sqlite", "/postgresql/mode")]
    [InlineData("api.replicas=two", "/api/replicas")]
    [InlineData("operator.replicas=-1", "/operator/replicas")]
    [InlineData("ingress.api.tls.enabled=yes", "/ingress/api/tls/enabled")]
    [InlineData("image.pullPolicy=Sometimes", "/image/pullPolicy")]
    [InlineData("api.podAntiAffinityPreset=hard", "/api/podAntiAffinityPreset")]
    [InlineData("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval")]
    [InlineData("postgresql.bundled.password=p@ss word", "/postgresql/bundled/password")]
    [InlineData("ingress.api.allowInsecureHttp=maybe", "/ingress/api/allowInsecureHttp")]
    [InlineData("api.hsts=yes", "/api/hsts")]
    [InlineData("api.trustedProxies[0]=ingress-nginx", "/api/trustedProxies/0")]
    [InlineData("api.trustedProxies[0]=10.0.0.0/8\\,0.0.0.0/0", "/api/trustedProxies/0")]
    [InlineData("api.rateLimits.enabled=sometimes", "/api/rateLimits/enabled")]
    [InlineData("admin.existingSecret=Not_A_Name", "/admin/existingSecret")]
    [InlineData("admin.existingSecretKey=", "/admin/existingSecretKey")]
    [InlineData("networkPolicy.enabled=yes", "/networkPolicy/enabled")]
    [InlineData("networkPolicy.kubeApiServer.cidrs[0]=apiserver", "/networkPolicy/kubeApiServer/cidrs/0")]
    [InlineData("networkPolicy.kubeApiServer.ports[0]=70000", "/networkPolicy/kubeApiServer/ports/0")]
    [InlineData("networkPolicy.externalPostgresql.port=0", "/networkPolicy/externalPostgresql/port")]
    [InlineData("networkPolicy.api.from[0].ipBlock.cidr=10.0.0.0", "/networkPolicy/api/from/0/ipBlock/cidr")]
    [InlineData("networkPolicy.dashboard.startupProbe=1", "/networkPolicy/dashboard")]
    [InlineData("dashboard.startupProbe.failureThreshold=0", "/dashboard/startupProbe/failureThreshold")]
    [InlineData("accounts.openReads=yes", "/accounts/openReads")]
    [InlineData("accounts.signup.role=admin", "/accounts/signup/role")]
    [InlineData("accounts.sessionHours=0", "/accounts/sessionHours")]
    [InlineData("accounts.sessionHours=721", "/accounts/sessionHours")]
    [InlineData("accounts.autoBan.failures=-1", "/accounts/autoBan/failures")]
    [InlineData("accounts.autoBan.banSeconds=86401", "/accounts/autoBan/banSeconds")]
    [InlineData("api.rateLimits.login=10", "/api/rateLimits/login")]
    [InlineData("api.rateLimits.signup=3 per minute", "/api/rateLimits/signup")]
    [InlineData("oidc.authority=http://idp.example.com", "/oidc/authority")]
    [InlineData("oidc.authority=https://idp.example.com/?x=1", "/oidc/authority")]
    [InlineData("oidc.adminValues[0]=a\\,b", "/oidc/adminValues/0")]
    [InlineData("oidc.existingSecret=Not_A_Name", "/oidc/existingSecret")]
    [InlineData("dashboard.dataDir.existingClaim=Bad_Claim", "/dashboard/dataDir/existingClaim")]
    [InlineData("networkPolicy.oidc.ports[0]=0", "/networkPolicy/oidc/ports/0")]
    public void A_wrong_value_fails_and_the_error_names_it(string set, string path)
    {
        var result = Helm.TryTemplate("--set", set);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("don't meet the specifications of the schema", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(path, result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("replica=3", "'replica'")]
    [InlineData("apii.replicas=3", "'apii'")]
    [InlineData("api.replica=3", "'replica'")]
    [InlineData("ingress.api.tlss.enabled=true", "'tlss'")]
    [InlineData("postgresql.external.existingsecret=db", "'existingsecret'")]
    [InlineData("admin.existingsecret=ops-admin", "'existingsecret'")]
    [InlineData("admin.token=abc", "'token'")]
    [InlineData("api.rateLimits.enable=false", "'enable'")]
    [InlineData("api.trustedProxy[0]=10.0.0.0/8", "'trustedProxy'")]
    [InlineData("ingress.api.allowInsecureHTTP=true", "'allowInsecureHTTP'")]
    [InlineData("ingress.api.tls.allowInsecureHttp=true", "'allowInsecureHttp'")]
    [InlineData("ingress.dashboard.allowInsecureHttp=true", "'allowInsecureHttp'")]
    [InlineData("networkPolicy.enable=false", "'enable'")]
    [InlineData("networkPolicy.api.from[0].podselector.matchLabels.app=x", "'podselector'")]
    [InlineData("networkPolicy.dns.to[0].namespaceSelector.matchLabel.a=b", "'matchLabel'")]
    [InlineData("tests.image.sha=abc", "'sha'")]
    [InlineData("accounts.openreads=true", "'openreads'")]
    [InlineData("accounts.signup.allowed=true", "'allowed'")]
    [InlineData("oidc.clientSecretKey=x", "'clientSecretKey'")]
    public void An_unknown_key_fails_and_the_error_names_it(string set, string key)
    {
        var result = Helm.TryTemplate("--set", set);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("additional properties", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(key, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_schema_is_draft_07_and_closed_at_the_top_level()
    {
        var schema = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Helm.ChartDir, "values.schema.json")))!;

        Assert.Equal("http://json-schema.org/draft-07/schema#", (string?)schema["$schema"]);
        Assert.False((bool)schema["additionalProperties"]!);
        Assert.Equal(["bundled", "external"], schema["properties"]!["postgresql"]!["properties"]!["mode"]!["enum"]!.AsArray().Select(v => (string?)v));
    }

    [Fact]
    public void A_network_policy_peer_with_an_ip_block_and_a_selector_fails()
    {
        var result = Helm.TryTemplate(
            "--set", "networkPolicy.api.from[0].ipBlock.cidr=10.0.0.0/8",
            "--set", "networkPolicy.api.from[0].podSelector.matchLabels.app=x");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/networkPolicy/api/from/0", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void External_mode_without_a_secret_fails_with_instructions()
    {
        var result = Helm.TryTemplate("--set", "postgresql.mode=external");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("postgresql.mode is \"external\" but postgresql.external.existingSecret is empty", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("kubectl create secret generic", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Too_long_a_name_prefix_fails_instead_of_being_cut()
    {
        var result = Helm.TryTemplate("--set", "fullnameOverride=a-very-long-name-prefix-for-dgon-console-objects");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("fullnameOverride", result.Stderr, StringComparison.Ordinal);
    }
}
