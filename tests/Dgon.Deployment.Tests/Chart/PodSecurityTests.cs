using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Restricted pod security for every container the chart renders, probes and resources.</summary>
public sealed class PodSecurityTests
{
    public static TheoryData<string> Renders() => new() { "default", "production" };

    private static RenderedChart Render(string which) => which == "production" ? Helm.Production() : Helm.Template();

    [Theory]
    [MemberData(nameof(Renders))]
    public void Every_container_is_non_root_read_only_without_privilege_escalation_or_capabilities(string values)
    {
        var pods = Render(values).PodSpecs().ToList();
        Assert.True(pods.Count >= 4, $"expected the api, operator, dashboard and test pods at least, got {pods.Count}");

        foreach (var (owner, spec) in pods)
        {
            var where = $"{Kind(owner)}/{Name(owner)}";
            Assert.Equal("RuntimeDefault", Str(spec["securityContext"]?["seccompProfile"]?["type"]));
            Assert.True(spec["securityContext"]?["runAsNonRoot"]?.GetValue<bool>() == true, $"{where}: pod runAsNonRoot");
            Assert.NotEqual(0, spec["securityContext"]?["runAsUser"]?.GetValue<long>() ?? 0);
            Assert.True(spec["hostNetwork"] is null && spec["hostPID"] is null && spec["hostIPC"] is null, $"{where}: host namespaces");

            var containers = AllContainers(spec).ToList();
            Assert.NotEmpty(containers);
            foreach (var container in containers)
            {
                var what = $"{where} container {Str(container["name"])}";
                var sc = container["securityContext"] ?? throw new Xunit.Sdk.XunitException($"{what}: no securityContext");
                Assert.True(sc["runAsNonRoot"]?.GetValue<bool>() == true, $"{what}: runAsNonRoot");
                Assert.True(sc["readOnlyRootFilesystem"]?.GetValue<bool>() == true, $"{what}: readOnlyRootFilesystem");
                Assert.True(sc["allowPrivilegeEscalation"]?.GetValue<bool>() == false, $"{what}: allowPrivilegeEscalation false");
                Assert.True(sc["privileged"] is null || !sc["privileged"]!.GetValue<bool>(), $"{what}: privileged");
                Assert.Equal(["ALL"], sc["capabilities"]?["drop"]?.AsArray().Select(Str) ?? []);
                Assert.Null(sc["capabilities"]?["add"]);

                foreach (var kind in new[] { "requests", "limits" })
                {
                    foreach (var resource in new[] { "cpu", "memory" })
                    {
                        Assert.True(container["resources"]?[kind]?[resource] is not null, $"{what}: resources.{kind}.{resource}");
                    }
                }

                AssertTmpIsAnEmptyDir(spec, container, what);
            }
        }
    }

    [Theory]
    [InlineData(Names.Api)]
    [InlineData(Names.Operator)]
    [InlineData(Names.Dashboard)]
    public void App_pods_run_as_the_image_user_10001(string name)
    {
        var security = PodSpecOf(Helm.Template().Get("Deployment", name))!["securityContext"]!;

        Assert.Equal(10001, security["runAsUser"]!.GetValue<long>());
        Assert.Equal(10001, security["runAsGroup"]!.GetValue<long>());
        Assert.Equal(10001, security["fsGroup"]!.GetValue<long>());
    }

    [Theory]
    [InlineData(Names.Api, "api", 8001, "/healthz", "/readyz/without-database", 120)]
    [InlineData(Names.Operator, "operator", 8002, "/healthz", "/readyz", 120)]
    [InlineData(Names.Dashboard, "dashboard", 3000, "/healthz", "/healthz", 60)]
    public void App_containers_probe_the_right_paths_on_their_http_port(
        string name, string container, long port, string liveness, string readiness, long startupSeconds)
    {
        var c = Container(Helm.Template().Get("Deployment", name), container);
        var ports = c["ports"]!.AsArray();
        var http = Assert.Single(ports, p => Str(p!["name"]) == "http")!;
        Assert.Equal(port, http["containerPort"]!.GetValue<long>());

        AssertHttpProbe(c, "livenessProbe", liveness);
        AssertHttpProbe(c, "readinessProbe", readiness);
        // Liveness and readiness wait for the startup probe: the api and operator migrate the database before
        // serving (at least 2 minutes allowed), the dashboard only starts (at least 1 minute).
        AssertHttpProbe(c, "startupProbe", "/healthz");
        var probe = c["startupProbe"]!;
        Assert.True(probe["periodSeconds"]!.GetValue<long>() * probe["failureThreshold"]!.GetValue<long>() >= startupSeconds);

        Assert.Equal($"http://+:{port}", Str(Env(c, "ASPNETCORE_URLS")["value"]));
        Assert.Equal("0", Str(Env(c, "DOTNET_EnableDiagnostics")["value"]));
    }

    [Fact]
    public void Api_readiness_leaves_postgresql_out_while_the_helm_test_still_checks_it()
    {
        // Kubernetes mode: nodes live in the Kubernetes API, so a PostgreSQL outage must not empty the API Service;
        // /readyz/without-database is every ready check but the database's (api/Configuration).
        var chart = Helm.Template();
        var api = Container(chart.Get("Deployment", Names.Api), "api");
        Assert.Equal("kubernetes", Str(Env(api, "DGON_REGISTRY")["value"]));
        AssertHttpProbe(api, "readinessProbe", "/readyz/without-database");

        var script = Str(AllContainers(PodSpecOf(chart.Get("Pod", Names.TestPod))!).Single()["command"]![2])!;
        Assert.Contains("-O - http://dgon-api:8001/readyz\n", script, StringComparison.Ordinal); // the full check, database included
    }

    [Fact]
    public void Dashboard_startup_probe_is_configurable()
    {
        var probe = Container(Helm.Template("--set", "dashboard.startupProbe.failureThreshold=90").Get("Deployment", Names.Dashboard), "dashboard")["startupProbe"]!;

        Assert.Equal(90, probe["failureThreshold"]!.GetValue<long>());
        Assert.Equal(2, probe["periodSeconds"]!.GetValue<long>());
    }

    [Fact]
    public void Resources_are_configurable_per_component()
    {
        var chart = Helm.Template("--set", "operator.resources.limits.memory=1Gi");

        Assert.Equal("1Gi", Str(Container(chart.Get("Deployment", Names.Operator), "operator")["resources"]!["limits"]!["memory"]));
        Assert.Equal("512Mi", Str(Container(chart.Get("Deployment", Names.Api), "api")["resources"]!["limits"]!["memory"]));
    }

    private static void AssertHttpProbe(JsonObject container, string probe, string path)
    {
        var get = container[probe]?["httpGet"] ?? throw new Xunit.Sdk.XunitException($"container {Str(container["name"])} has no {probe}.httpGet");
        Assert.Equal(path, Str(get["path"]));
        Assert.Equal("http", Str(get["port"]));
    }

    private static void AssertTmpIsAnEmptyDir(JsonObject podSpec, JsonObject container, string what)
    {
        var mount = container["volumeMounts"]?.AsArray().SingleOrDefault(m => Str(m!["mountPath"]) == "/tmp")
            ?? throw new Xunit.Sdk.XunitException($"{what}: nothing mounted on /tmp (the root filesystem is read-only)");
        var volume = podSpec["volumes"]!.AsArray().Single(v => Str(v!["name"]) == Str(mount["name"]))!;
        Assert.True(volume["emptyDir"] is not null, $"{what}: /tmp is not an emptyDir");
    }
}
