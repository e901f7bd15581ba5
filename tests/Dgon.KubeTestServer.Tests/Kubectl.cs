using System.Diagnostics;
using System.Text;
using Dgon.Testing;

namespace Dgon.KubeTestServer.Tests;

/// <summary>Result of one kubectl run.</summary>
public sealed record KubectlResult(int ExitCode, string Stdout, string Stderr)
{
    public string All => Stdout + Stderr;

    public KubectlResult EnsureSuccess(string what)
    {
        Assert.True(ExitCode == 0, $"kubectl {what} failed ({ExitCode}):\n{Stdout}\n{Stderr}");
        return this;
    }
}

/// <summary>
/// The real kubectl (/usr/bin/kubectl) against a test server: its own HOME (so the discovery and OpenAPI caches are per
/// test), a kubeconfig written by the server, and a timeout per invocation.
/// </summary>
public sealed class Kubectl : IDisposable
{
    public const string Binary = "/usr/bin/kubectl";

    public Kubectl(KubeApiTestServer server, string? token = null, string? clientCert = null, string? clientKey = null, string? ca = null)
    {
        Home = Directory.CreateTempSubdirectory("kubectl-home-").FullName;
        Kubeconfig = server.WriteKubeconfig(Path.Combine(Home, "kubeconfig.yaml"), token: token, clientCertificatePemPath: clientCert, clientKeyPemPath: clientKey, certificateAuthorityPemPath: ca);
    }

    public string Home { get; }

    public string Kubeconfig { get; }

    /// <summary>Writes a file in this kubectl's home and returns its path.</summary>
    public string WriteFile(string name, string content)
    {
        var path = Path.Combine(Home, name);
        File.WriteAllText(path, content);
        return path;
    }

    public IDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["HOME"] = Home,
        ["KUBECONFIG"] = Kubeconfig,
        ["KUBECTL_KUBERC"] = "false",
    };

    public async Task<KubectlResult> RunAsync(params string[] args) => await RunWithTimeoutAsync(TimeSpan.FromSeconds(30), args);

    public async Task<KubectlResult> RunWithTimeoutAsync(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--kubeconfig");
        psi.ArgumentList.Add(Kubeconfig);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in Environment)
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s:\n{await stdout}\n{await stderr}");
        }

        return new KubectlResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts kubectl in the background (e.g. <c>get -w</c>); dispose the result to stop it.</summary>
    public ManagedProcess Start(params string[] args) => ManagedProcess.Start(Binary, ["--kubeconfig", Kubeconfig, .. args], Environment);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
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
