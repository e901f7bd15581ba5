namespace Dgon.Dashboard.Tests.Support;

/// <summary>Environment variables for the real API (<see cref="Dgon.Testing.ApiHostOptions.Environment"/>).</summary>
public static class ApiEnvironment
{
    /// <summary><c>DGON_OPEN_READS=true</c>: anonymous <c>GET /v1/nodes</c> and <c>/v1/summary</c>, the v1 dev-open mode (issue 12).</summary>
    public static Dictionary<string, string?> OpenReads() => new(StringComparer.Ordinal) { ["DGON_OPEN_READS"] = "true" };
}
