using System.Text;
using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>The bundled PostgreSQL (for evaluation): StatefulSet, headless Service, password and DATABASE_URL Secrets.</summary>
public sealed class PostgresqlTests
{
    private static string Decode(JsonObject secret, string key) =>
        Encoding.UTF8.GetString(Convert.FromBase64String(Str(secret["data"]![key])!));

    [Fact]
    public void Statefulset_runs_one_postgres_as_uid_999_with_a_read_only_root_and_pg_isready()
    {
        var chart = Helm.Template();
        var set = chart.Get("StatefulSet", Names.Postgresql);

        Assert.Equal(1, set["spec"]!["replicas"]!.GetValue<long>());
        Assert.Equal(Names.Postgresql, Str(set["spec"]!["serviceName"]));
        var pod = PodSpecOf(set)!;
        Assert.Equal(999, pod["securityContext"]!["runAsUser"]!.GetValue<long>());
        Assert.Equal(999, pod["securityContext"]!["fsGroup"]!.GetValue<long>());
        var container = Container(set, "postgresql");
        Assert.True(container["securityContext"]!["readOnlyRootFilesystem"]!.GetValue<bool>());

        var readiness = container["readinessProbe"]!["exec"]!["command"]!.AsArray().Select(Str).ToList();
        Assert.Equal("pg_isready", readiness[0]);
        Assert.Contains("dgon", readiness);

        var mounts = container["volumeMounts"]!.AsArray().ToDictionary(m => Str(m!["mountPath"])!, m => Str(m!["name"])!);
        Assert.Equal("data", mounts["/var/lib/postgresql/data"]);
        var volumes = pod["volumes"]!.AsArray().ToDictionary(v => Str(v!["name"])!, v => v!.AsObject());
        Assert.True(volumes[mounts["/var/run/postgresql"]]["emptyDir"] is not null, "/var/run/postgresql must be an emptyDir");
        Assert.True(volumes[mounts["/tmp"]]["emptyDir"] is not null, "/tmp must be an emptyDir");
        Assert.StartsWith("/var/lib/postgresql/data/", Str(Env(container, "PGDATA")["value"]), StringComparison.Ordinal);
        var password = Env(container, "POSTGRES_PASSWORD")["valueFrom"]!["secretKeyRef"]!;
        Assert.Equal(Names.Postgresql, Str(password["name"]));
        Assert.Equal("password", Str(password["key"]));
    }

    [Fact]
    public void Volume_claim_size_and_storage_class_are_configurable()
    {
        static JsonNode Claim(RenderedChart chart) => chart.Get("StatefulSet", Names.Postgresql)["spec"]!["volumeClaimTemplates"]![0]!;

        var defaults = Claim(Helm.Template());
        Assert.Equal("data", Str(defaults["metadata"]!["name"]));
        Assert.Equal("8Gi", Str(defaults["spec"]!["resources"]!["requests"]!["storage"]));
        Assert.Null(defaults["spec"]!["storageClassName"]);

        var custom = Claim(Helm.Template("--set", "postgresql.bundled.persistence.size=20Gi", "--set", "postgresql.bundled.persistence.storageClass=fast-ssd"));
        Assert.Equal("20Gi", Str(custom["spec"]!["resources"]!["requests"]!["storage"]));
        Assert.Equal("fast-ssd", Str(custom["spec"]!["storageClassName"]));

        var none = Claim(Helm.Template("--set", "postgresql.bundled.persistence.storageClass=-"));
        Assert.Equal("", Str(none["spec"]!["storageClassName"]));
    }

    [Fact]
    public void Service_is_headless_on_5432()
    {
        var service = Helm.Template().Get("Service", Names.Postgresql);

        Assert.Equal("None", Str(service["spec"]!["clusterIP"]));
        var port = Assert.Single(service["spec"]!["ports"]!.AsArray())!;
        Assert.Equal(5432, port["port"]!.GetValue<long>());
        Assert.Equal("postgresql", Str(service["spec"]!["selector"]!["app.kubernetes.io/component"]));
    }

    [Fact]
    public void Database_url_points_at_the_service_with_the_generated_password()
    {
        var chart = Helm.Template();
        var passwordSecret = chart.Get("Secret", Names.Postgresql);
        var password = Decode(passwordSecret, "password");
        var url = Decode(chart.Get("Secret", Names.DatabaseUrlSecret), "DATABASE_URL");

        Assert.Matches("^[A-Za-z0-9]{32}$", password);
        Assert.Equal($"postgres://dgon:{password}@{Names.Postgresql}:5432/dgon?sslmode=disable", url);
        // Kept on uninstall like the volume, so that a reinstall can still open the data.
        Assert.Equal("keep", Str(passwordSecret["metadata"]!["annotations"]!["helm.sh/resource-policy"]));
    }

    [Fact]
    public void An_explicit_password_is_used_as_given()
    {
        var chart = Helm.Template("--set", "postgresql.bundled.password=Evaluation-Only_1");

        Assert.Equal("Evaluation-Only_1", Decode(chart.Get("Secret", Names.Postgresql), "password"));
        Assert.Contains(":Evaluation-Only_1@", Decode(chart.Get("Secret", Names.DatabaseUrlSecret), "DATABASE_URL"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_password_is_read_back_from_the_cluster_on_upgrade()
    {
        // lookup cannot run without a cluster; check that the template asks for the existing Secret first.
        var helpers = File.ReadAllText(Path.Combine(Helm.ChartDir, "templates", "_helpers.tpl"));

        Assert.Contains("lookup \"v1\" \"Secret\" .Release.Namespace (include \"dgon.postgresql.secretName\" .)", helpers, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_and_notes_mark_the_bundled_database_for_evaluation()
    {
        var values = File.ReadAllText(Path.Combine(Helm.ChartDir, "values.yaml"));

        Assert.Contains("FOR EVALUATION ONLY", values, StringComparison.Ordinal);
        Assert.Contains("FOR EVALUATION ONLY", Notes.Render(), StringComparison.Ordinal);
        Assert.DoesNotContain("FOR EVALUATION ONLY", Notes.Render("-f", Helm.CiValues("production-values.yaml")), StringComparison.Ordinal);
    }
}
