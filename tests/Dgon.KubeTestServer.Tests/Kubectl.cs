using System.Text;
using Dgon.Testing;

namespace Dgon.KubeTestServer.Tests;

/// <summary>kubectl against a test server, with a kubeconfig the server writes into kubectl's HOME.</summary>
public static class TestKubectl
{
    public static Kubectl For(KubeApiTestServer server, string? token = null, string? clientCert = null, string? clientKey = null, string? ca = null) =>
        new(home => server.WriteKubeconfig(Path.Combine(home, "kubeconfig.yaml"), token: token, clientCertificatePemPath: clientCert, clientKeyPemPath: clientKey, certificateAuthorityPemPath: ca));
}

/// <summary>Test data shared by the suites.</summary>
public static class Manifests
{
    public static string DgonNode(string name, string runtime = "ollama", string region = "eu-west-1", string extraSpec = "", string labels = "") =>
        new StringBuilder()
            .AppendLine("apiVersion: dgon.io/v1alpha1")
            .AppendLine("kind: DgonNode")
            .AppendLine("metadata:")
            .AppendLine($"  name: {name}")
            .Append(labels.Length > 0 ? $"  labels:\n{labels}" : "")
            .AppendLine("spec:")
            .AppendLine($"  region: {region}")
            .AppendLine($"  runtime: {runtime}")
            .Append(extraSpec)
            .ToString();

    public static string CrdDirectory => Path.Combine(RepoPaths.Root, "crds");

    public static string CrdFile => Path.Combine(CrdDirectory, "dgonnodes.dgon.io.yaml");
}
