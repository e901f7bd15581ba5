using System.Text.Json.Nodes;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>
/// templates/NOTES.txt as helm prints it after an install: `helm template` does not render NOTES, but
/// `helm install --dry-run=client -o json` does, offline (no cluster is contacted), in .info.notes.
/// </summary>
public static class Notes
{
    public static string Render(params string[] args)
    {
        var result = Helm.Run(["install", Helm.Release, Helm.ChartDir, "--namespace", Helm.Namespace, "--dry-run=client", "-o", "json", .. args])
            .EnsureSuccess();
        return (string?)JsonNode.Parse(result.Stdout)!["info"]!["notes"]
            ?? throw new InvalidOperationException($"{result.CommandLine} printed no notes");
    }
}
