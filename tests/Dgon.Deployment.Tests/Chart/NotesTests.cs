namespace Dgon.Deployment.Tests.Chart;

/// <summary>What an operator reads after `helm install`: the agents' API URL, first-node enrollment, the dashboard.</summary>
public sealed class NotesTests
{
    private const string ReadAdminToken = "kubectl get secret dgon-admin -n dgon -o jsonpath='{.data.token}' | base64 -d";

    [Fact]
    public void Notes_name_the_https_ingress_url_for_agents_and_its_tls_secret()
    {
        var notes = Notes.Render();

        Assert.Contains("Agents connect to:  https://dgon.example.com", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("WARNING: ingress.api.tls.enabled is false", notes, StringComparison.Ordinal);
        Assert.Contains("kubectl create secret tls dgon-api-tls -n dgon --cert=", notes, StringComparison.Ordinal);
        Assert.Contains("DGON_API=https://dgon.example.com DGON_JOIN_TOKEN=<token> NODE_ID=", notes, StringComparison.Ordinal);
        Assert.Contains("kubectl get dgonnodes -n dgon", notes, StringComparison.Ordinal);
        Assert.Contains("kubectl port-forward -n dgon svc/dgon-dashboard 3000:3000", notes, StringComparison.Ordinal);
        Assert.Contains("helm test dgon -n dgon", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_warn_when_plain_http_is_allowed()
    {
        var notes = Notes.Render("--set", "ingress.api.tls.enabled=false", "--set", "ingress.api.allowInsecureHttp=true");

        Assert.Contains("Agents connect to:  http://dgon.example.com", notes, StringComparison.Ordinal);
        Assert.Contains("WARNING: ingress.api.tls.enabled is false (ingress.api.allowInsecureHttp=true)", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("kubectl create secret tls", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_say_how_to_read_the_admin_token_and_create_a_join_token()
    {
        var notes = Notes.Render();

        Assert.Contains($"ADMIN_TOKEN=$({ReadAdminToken})", notes, StringComparison.Ordinal);
        Assert.Contains(
            "curl -s https://dgon.example.com/v1/admin/join-tokens -H \"Authorization: Bearer $ADMIN_TOKEN\" \\\n"
            + "       -H 'Content-Type: application/json' -d '{}'",
            notes, StringComparison.Ordinal);
        Assert.Contains(
            "kubectl create secret generic dgon-join-token-<id> -n dgon --type=dgon.io/join-token \\\n"
            + "       --from-literal=token-id=<id> --from-literal=token-secret=<secret> --from-literal=expiration=<RFC3339>",
            notes, StringComparison.Ordinal);
        Assert.Contains("DGON_JOIN_TOKEN=<token>", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_read_the_admin_token_from_an_existing_secret_and_key()
    {
        var notes = Notes.Render("--set", "admin.existingSecret=ops-admin", "--set", "admin.existingSecretKey=admin.token");

        Assert.Contains("kubectl get secret ops-admin -n dgon -o jsonpath='{.data.admin\\.token}' | base64 -d", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("secret dgon-admin", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_use_https_and_the_dashboard_host_in_production()
    {
        var notes = Notes.Render("-f", Helm.CiValues("production-values.yaml"));

        Assert.Contains("Agents connect to:  https://dgon.example.com", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("WARNING: ingress.api.tls.enabled is false", notes, StringComparison.Ordinal);
        Assert.Contains("DGON_API=https://dgon.example.com DGON_JOIN_TOKEN=<token> NODE_ID=", notes, StringComparison.Ordinal);
        Assert.Contains("cert-manager fills the Secret dgon-example-com-tls", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("kubectl create secret tls", notes, StringComparison.Ordinal);
        Assert.Contains("https://console.example.com", notes, StringComparison.Ordinal);
        Assert.Contains("Secret \"dgon-database\"", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_explain_port_forwarding_when_the_api_ingress_is_off()
    {
        var notes = Notes.Render("--set", "ingress.api.enabled=false");

        Assert.Contains("kubectl port-forward -n dgon svc/dgon-api 8001:8001", notes, StringComparison.Ordinal);
        Assert.Contains("DGON_API=http://127.0.0.1:8001 DGON_JOIN_TOKEN=<token> NODE_ID=", notes, StringComparison.Ordinal);
        Assert.Contains("curl -s http://127.0.0.1:8001/v1/admin/join-tokens ", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("Agents connect to:", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_say_how_to_sign_in_to_the_dashboard_the_first_time()
    {
        var notes = Notes.Render();

        Assert.Contains("Sign in: the first time with the admin token (ADMIN_TOKEN above): choose \"admin token\" on the login page.", notes, StringComparison.Ordinal);
        Assert.Contains("create accounts under Admin -> Users", notes, StringComparison.Ordinal);
        Assert.Contains("signs\n   everyone out; set dashboard.dataDir.existingClaim", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("single sign-on", notes, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("openReads is true", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("has no login of its own", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_name_the_single_sign_on_button_and_warn_about_open_reads_and_sign_up()
    {
        var notes = Notes.Render(
            "--set", "oidc.authority=https://idp.example.com", "--set", "oidc.clientId=dgon-dashboard", "--set", "oidc.displayName=Example SSO",
            "--set", "accounts.openReads=true", "--set", "accounts.signup.enabled=true");

        Assert.Contains("Single sign-on: the \"Example SSO\" button signs in through https://idp.example.com", notes, StringComparison.Ordinal);
        Assert.Contains("dgon-admin = admin, dgon-operator = operator, else viewer", notes, StringComparison.Ordinal);
        Assert.Contains("WARNING: accounts.openReads is true", notes, StringComparison.Ordinal);
        Assert.Contains("Self sign-up is ON (accounts.signup.enabled): anyone who reaches the API can create a viewer account.", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_say_where_the_api_metrics_are()
    {
        Assert.Contains("The API serves /metrics on its management port 9090 only", Notes.Render(), StringComparison.Ordinal);
        Assert.DoesNotContain("management port", Notes.Render("--set", "api.managementPort=0"), StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_say_when_a_service_monitor_was_asked_for_but_cannot_exist()
    {
        // `helm install --dry-run=client` has no --api-versions, so only the fallback branch can be rendered offline.
        var notes = Notes.Render();

        Assert.Contains("does not serve monitoring.coreos.com/v1 ServiceMonitor", notes, StringComparison.Ordinal);
        Assert.Contains("carry prometheus.io/scrape", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("does not serve", Notes.Render("--set", "metrics.serviceMonitor.enabled=false"), StringComparison.Ordinal);
    }
}
