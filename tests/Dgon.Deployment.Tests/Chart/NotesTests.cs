namespace Dgon.Deployment.Tests.Chart;

/// <summary>What an operator reads after `helm install`: the agents' API URL, first-node enrollment, the dashboard.</summary>
public sealed class NotesTests
{
    [Fact]
    public void Notes_name_the_ingress_url_for_agents_and_warn_without_tls()
    {
        var notes = Notes.Render();

        Assert.Contains("Agents connect to:  http://dgon.example.com", notes, StringComparison.Ordinal);
        Assert.Contains("WARNING: ingress.api.tls.enabled is false", notes, StringComparison.Ordinal);
        Assert.Contains("DGON_API=http://dgon.example.com NODE_ID=", notes, StringComparison.Ordinal);
        Assert.Contains("kubectl get dgonnodes -n dgon", notes, StringComparison.Ordinal);
        Assert.Contains("kubectl port-forward -n dgon svc/dgon-dashboard 3000:3000", notes, StringComparison.Ordinal);
        Assert.Contains("helm test dgon -n dgon", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_use_https_and_the_dashboard_host_in_production()
    {
        var notes = Notes.Render("-f", Helm.CiValues("production-values.yaml"));

        Assert.Contains("Agents connect to:  https://dgon.example.com", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("WARNING: ingress.api.tls.enabled is false", notes, StringComparison.Ordinal);
        Assert.Contains("DGON_API=https://dgon.example.com NODE_ID=", notes, StringComparison.Ordinal);
        Assert.Contains("https://console.example.com", notes, StringComparison.Ordinal);
        Assert.Contains("Secret \"dgon-database\"", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_explain_port_forwarding_when_the_api_ingress_is_off()
    {
        var notes = Notes.Render("--set", "ingress.api.enabled=false");

        Assert.Contains("kubectl port-forward -n dgon svc/dgon-api 8001:8001", notes, StringComparison.Ordinal);
        Assert.Contains("DGON_API=http://127.0.0.1:8001 NODE_ID=", notes, StringComparison.Ordinal);
        Assert.DoesNotContain("Agents connect to:", notes, StringComparison.Ordinal);
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
