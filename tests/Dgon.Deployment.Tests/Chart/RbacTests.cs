using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>Least privilege: the exact namespaced rules the API and the operator need (README "Kubernetes mode").</summary>
public sealed class RbacTests
{
    private static readonly string[] ApiRules =
    [
        "dgon.io|dgonnodes|create,get,list,patch,watch",
        "dgon.io|dgonnodes/status|patch",
        "|secrets|create,get,list,update,watch",
    ];

    private static readonly string[] OperatorRules =
    [
        "dgon.io|dgonnodes|delete,get,list,patch,watch",
        "dgon.io|dgonnodes/status|patch",
        "|secrets|delete,list,watch",
        "events.k8s.io|events|create",
        "coordination.k8s.io|leases|create,get,update",
    ];

    public static TheoryData<string> Renders() => new() { "default", "production" };

    private static RenderedChart Render(string which) => which == "production" ? Helm.Production() : Helm.Template();

    [Theory]
    [MemberData(nameof(Renders))]
    public void Api_role_grants_exactly_what_the_api_uses(string values) =>
        Assert.Equal(ApiRules.Order(), Permissions(Render(values).Get("Role", Names.Api)).Order());

    [Theory]
    [MemberData(nameof(Renders))]
    public void Operator_role_grants_exactly_what_the_operator_uses(string values) =>
        Assert.Equal(OperatorRules.Order(), Permissions(Render(values).Get("Role", Names.Operator)).Order());

    [Theory]
    [MemberData(nameof(Renders))]
    public void Only_namespaced_roles_and_no_wildcards(string values)
    {
        var chart = Render(values);

        Assert.Empty(chart.OfKind("ClusterRole"));
        Assert.Empty(chart.OfKind("ClusterRoleBinding"));
        Assert.Equal([Names.Api, Names.Operator], chart.OfKind("Role").Select(Name).Order());
        foreach (var role in chart.OfKind("Role"))
        {
            foreach (var rule in role["rules"]!.AsArray())
            {
                foreach (var field in new[] { "apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs" })
                {
                    var items = rule![field]?.AsArray().Select(Str) ?? [];
                    Assert.DoesNotContain(items, i => i != null && i.Contains('*', StringComparison.Ordinal));
                }
            }
        }
    }

    [Theory]
    [InlineData(Names.Api)]
    [InlineData(Names.Operator)]
    public void Each_role_is_bound_to_its_own_service_account_used_by_its_pods(string name)
    {
        var chart = Helm.Template();
        var binding = chart.Get("RoleBinding", name);

        Assert.Equal("Role", Str(binding["roleRef"]!["kind"]));
        Assert.Equal(name, Str(binding["roleRef"]!["name"]));
        Assert.Equal("rbac.authorization.k8s.io", Str(binding["roleRef"]!["apiGroup"]));
        var subject = Assert.Single(binding["subjects"]!.AsArray())!;
        Assert.Equal("ServiceAccount", Str(subject["kind"]));
        Assert.Equal(name, Str(subject["name"]));
        Assert.Equal(Helm.Namespace, Str(subject["namespace"]));

        var pod = PodSpecOf(chart.Get("Deployment", name))!;
        Assert.Equal(name, Str(pod["serviceAccountName"]));
        Assert.True(pod["automountServiceAccountToken"]!.GetValue<bool>(), $"{name} talks to the Kubernetes API and needs its token");
        chart.Get("ServiceAccount", name);
    }

    [Fact]
    public void Dashboard_has_its_own_service_account_without_token_or_role()
    {
        var chart = Helm.Production();

        var account = chart.Get("ServiceAccount", Names.Dashboard);
        Assert.False(account["automountServiceAccountToken"]!.GetValue<bool>());
        var pod = PodSpecOf(chart.Get("Deployment", Names.Dashboard))!;
        Assert.Equal(Names.Dashboard, Str(pod["serviceAccountName"]));
        Assert.False(pod["automountServiceAccountToken"]!.GetValue<bool>());
        Assert.False(chart.Has("Role", Names.Dashboard));
        Assert.DoesNotContain(chart.OfKind("RoleBinding"), b => b["subjects"]!.AsArray().Any(s => Str(s!["name"]) == Names.Dashboard));
    }

    [Fact]
    public void Postgresql_and_test_pods_mount_no_service_account_token()
    {
        var chart = Helm.Template();

        Assert.False(PodSpecOf(chart.Get("StatefulSet", Names.Postgresql))!["automountServiceAccountToken"]!.GetValue<bool>());
        Assert.False(PodSpecOf(chart.Get("Pod", Names.TestPod))!["automountServiceAccountToken"]!.GetValue<bool>());
    }

    /// <summary>"group|resource|verb,verb" per (group, resource) of a Role, verbs sorted; fails on duplicates.</summary>
    private static List<string> Permissions(JsonObject role)
    {
        var permissions = new List<string>();
        foreach (var rule in role["rules"]!.AsArray())
        {
            Assert.Null(rule!["resourceNames"]);
            var verbs = string.Join(',', rule["verbs"]!.AsArray().Select(v => Str(v)!).Order());
            foreach (var group in rule["apiGroups"]!.AsArray())
            {
                foreach (var resource in rule["resources"]!.AsArray())
                {
                    permissions.Add($"{Str(group)}|{Str(resource)}|{verbs}");
                }
            }
        }

        Assert.Equal(permissions.Count, permissions.Select(p => p[..p.LastIndexOf('|')]).Distinct().Count());
        return permissions;
    }
}
