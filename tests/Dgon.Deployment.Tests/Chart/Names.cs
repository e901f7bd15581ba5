namespace Dgon.Deployment.Tests.Chart;

/// <summary>Object names for release "dgon" (fullname = the release name, since it contains the chart name).</summary>
public static class Names
{
    public const string Api = "dgon-api";
    public const string Operator = "dgon-operator";
    public const string Dashboard = "dgon-dashboard";
    public const string Postgresql = "dgon-postgresql";
    public const string DatabaseUrlSecret = "dgon-database-url";
    public const string AdminSecret = "dgon-admin";
    public const string ApiTlsSecret = "dgon-api-tls";
    public const string GrafanaDashboard = "dgon-grafana-dashboard";
    public const string TestPod = "dgon-test-api";
}
