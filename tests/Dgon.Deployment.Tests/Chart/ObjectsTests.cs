using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Every object each component needs is rendered, and nothing it must not have.</summary>
public sealed class ObjectsTests
{
    [Fact]
    public void Default_values_render_the_api_operator_dashboard_and_bundled_postgresql()
    {
        var chart = Helm.Template();

        foreach (var name in new[] { Names.Api, Names.Operator, Names.Dashboard })
        {
            chart.Get("Deployment", name);
            chart.Get("Service", name);
            chart.Get("ServiceAccount", name);
        }

        foreach (var name in new[] { Names.Api, Names.Operator })
        {
            chart.Get("Role", name);
            chart.Get("RoleBinding", name);
            chart.Get("PodDisruptionBudget", name);
        }

        chart.Get("Ingress", Names.Api);
        Assert.False(chart.Has("Ingress", Names.Dashboard), "the dashboard ingress is off by default");
        chart.Get("StatefulSet", Names.Postgresql);
        chart.Get("Service", Names.Postgresql);
        chart.Get("Secret", Names.Postgresql);
        chart.Get("Secret", Names.DatabaseUrlSecret);
        chart.Get("Secret", Names.AdminSecret);
        chart.Get("ConfigMap", Names.GrafanaDashboard);
        chart.Get("Pod", Names.TestPod);
        Assert.Equal(2, chart.Get("Deployment", Names.Operator)["spec"]!["replicas"]!.GetValue<long>());
        Assert.Equal(2, chart.Get("Deployment", Names.Api)["spec"]!["replicas"]!.GetValue<long>());
    }

    [Fact]
    public void External_postgresql_renders_no_database_objects()
    {
        var chart = Helm.Production();

        Assert.Empty(chart.OfKind("StatefulSet"));
        Assert.Equal([Names.AdminSecret], chart.OfKind("Secret").Select(Name));
        Assert.False(chart.Has("Service", Names.Postgresql));
        chart.Get("Deployment", Names.Api);
        chart.Get("Deployment", Names.Operator);
        chart.Get("Ingress", Names.Dashboard);
        Assert.Equal(3, chart.Get("Deployment", Names.Api)["spec"]!["replicas"]!.GetValue<long>());
    }

    [Fact]
    public void Disabling_the_dashboard_removes_all_of_its_objects()
    {
        var chart = Helm.Template("--set", "dashboard.enabled=false");

        Assert.DoesNotContain(chart.Objects, o => Name(o) == Names.Dashboard);
        chart.Get("Deployment", Names.Api);
    }

    [Fact]
    public void Services_select_the_pods_of_their_own_component_on_port_http()
    {
        var chart = Helm.Template();

        foreach (var (name, port) in new[] { (Names.Api, 8001L), (Names.Operator, 8002L), (Names.Dashboard, 3000L) })
        {
            var service = chart.Get("Service", name);
            var podLabels = PodTemplateMetadata(chart.Get("Deployment", name))["labels"]!.AsObject();
            var selector = service["spec"]!["selector"]!.AsObject();
            Assert.NotEmpty(selector);
            foreach (var (key, value) in selector)
            {
                Assert.Equal(Str(value), Str(podLabels[key]));
            }

            // Port http (the API's Service and container also have "metrics", its management port: ManagementPortTests).
            var servicePort = service["spec"]!["ports"]!.AsArray().Single(p => Str(p!["name"]) == "http")!;
            Assert.Equal(port, servicePort["port"]!.GetValue<long>());
            Assert.Equal("http", Str(servicePort["targetPort"]));
            var containerPort = Container(chart.Get("Deployment", name), name["dgon-".Length..])["ports"]!.AsArray().Single(p => Str(p!["name"]) == "http")!;
            Assert.Equal(port, containerPort["containerPort"]!.GetValue<long>());
        }

        // The Service of other components must not catch the API's pods (and so on).
        var apiSelector = chart.Get("Service", Names.Api)["spec"]!["selector"]!;
        Assert.Equal("api", Str(apiSelector["app.kubernetes.io/component"]));
    }

    [Fact]
    public void Every_object_carries_the_standard_labels_and_lives_in_the_release_namespace()
    {
        var chart = Helm.Production();
        string[] required =
        [
            "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/component",
            "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart",
        ];

        foreach (var obj in chart.Objects)
        {
            var labels = obj["metadata"]!["labels"]?.AsObject() ?? [];
            foreach (var label in required)
            {
                Assert.True(labels.ContainsKey(label), $"{Kind(obj)}/{Name(obj)} lacks label {label}");
            }

            Assert.Equal("dgon", Str(labels["app.kubernetes.io/instance"]));
            Assert.Equal("dgon-0.1.0", Str(labels["helm.sh/chart"]));
            Assert.Equal("dgon-console", Str(labels["app.kubernetes.io/part-of"]));
            Assert.Equal(Helm.Namespace, Str(obj["metadata"]!["namespace"]));
        }
    }

    [Fact]
    public void Selector_labels_do_not_depend_on_the_version_so_upgrades_keep_them()
    {
        var before = Helm.Template();
        var after = Helm.Template("--set-string", "image.tag=9.9.9");

        foreach (var workload in before.Objects.Where(o => Kind(o) is "Deployment" or "StatefulSet"))
        {
            var selector = workload["spec"]!["selector"]!.ToJsonString();
            Assert.Equal(selector, after.Get(Kind(workload), Name(workload))["spec"]!["selector"]!.ToJsonString());
            Assert.DoesNotContain("version", selector, StringComparison.Ordinal);
            Assert.DoesNotContain("helm.sh/chart", selector, StringComparison.Ordinal);
        }

        Assert.Equal("9.9.9", Str(after.Get("Deployment", Names.Api)["metadata"]!["labels"]!["app.kubernetes.io/version"]));
    }

    [Fact]
    public void The_api_pod_disruption_budget_keeps_one_pod_and_is_configurable()
    {
        var pdb = Helm.Template().Get("PodDisruptionBudget", Names.Api);
        Assert.Equal(1, pdb["spec"]!["minAvailable"]!.GetValue<long>());
        Assert.Equal("api", Str(pdb["spec"]!["selector"]!["matchLabels"]!["app.kubernetes.io/component"]));

        var single = Helm.Template("--set", "api.replicas=1");
        Assert.False(single.Has("PodDisruptionBudget", Names.Api), "one replica: a PDB would block every node drain");

        var custom = Helm.Template("--set", "api.podDisruptionBudget.maxUnavailable=1").Get("PodDisruptionBudget", Names.Api);
        Assert.Equal(1, custom["spec"]!["maxUnavailable"]!.GetValue<long>());
        Assert.Null(custom["spec"]!["minAvailable"]);

        Assert.False(Helm.Template("--set", "api.podDisruptionBudget.enabled=false").Has("PodDisruptionBudget", Names.Api));
    }

    [Fact]
    public void Api_and_operator_prefer_spreading_over_nodes_and_zones()
    {
        var chart = Helm.Template();

        foreach (var (name, component) in new[] { (Names.Api, "api"), (Names.Operator, "operator") })
        {
            var terms = PodSpecOf(chart.Get("Deployment", name))!["affinity"]!["podAntiAffinity"]!
                ["preferredDuringSchedulingIgnoredDuringExecution"]!.AsArray();
            Assert.Contains(terms, t => Str(t!["podAffinityTerm"]!["topologyKey"]) == "kubernetes.io/hostname");
            Assert.Contains(terms, t => Str(t!["podAffinityTerm"]!["topologyKey"]) == "topology.kubernetes.io/zone");
            Assert.All(terms, t => Assert.Equal(component, Str(t!["podAffinityTerm"]!["labelSelector"]!["matchLabels"]!["app.kubernetes.io/component"])));
        }

        var none = Helm.Template("--set", "api.podAntiAffinityPreset=none");
        Assert.Null(PodSpecOf(none.Get("Deployment", Names.Api))!["affinity"]);
    }

    [Fact]
    public void Scheduling_values_and_pull_secrets_reach_the_pod_specs()
    {
        var chart = Helm.Template(
            "--set", "api.nodeSelector.pool=control",
            "--set", "operator.tolerations[0].key=dedicated,operator.tolerations[0].operator=Exists",
            "--set", "dashboard.podAnnotations.team=ops",
            "--set", "imagePullSecrets[0].name=regcred");

        var api = PodSpecOf(chart.Get("Deployment", Names.Api))!;
        Assert.Equal("control", Str(api["nodeSelector"]!["pool"]));
        Assert.Equal("dedicated", Str(PodSpecOf(chart.Get("Deployment", Names.Operator))!["tolerations"]![0]!["key"]));
        Assert.Equal("ops", Str(PodTemplateMetadata(chart.Get("Deployment", Names.Dashboard))["annotations"]!["team"]));
        foreach (var (owner, spec) in chart.PodSpecs())
        {
            Assert.True(spec["imagePullSecrets"] is JsonArray { Count: 1 } secrets && Str(secrets[0]!["name"]) == "regcred",
                $"{Kind(owner)}/{Name(owner)} lacks imagePullSecrets regcred");
        }
    }

    [Fact]
    public void A_release_name_without_dgon_gets_the_chart_name_appended()
    {
        var result = Helm.Run("template", "console", Helm.ChartDir).EnsureSuccess();
        var chart = RenderedChart.Parse(result.Stdout);

        chart.Get("Deployment", "console-dgon-api");
        chart.Get("StatefulSet", "console-dgon-postgresql");
        Assert.Equal("http://console-dgon-api:8001/", Str(Env(Container(chart.Get("Deployment", "console-dgon-dashboard"), "dashboard"), "DGON_API_BASE")["value"]));
    }
}
