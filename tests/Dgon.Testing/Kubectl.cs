using System.Diagnostics;

namespace Dgon.Testing;

/// <summary>Result of one kubectl run.</summary>
public sealed record KubectlResult(int ExitCode, string Stdout, string Stderr)
{
    public string All => Stdout + Stderr;

    /// <summary>Throws with both streams unless the exit code is 0.</summary>
    /// <exception cref="InvalidOperationException">kubectl failed.</exception>
    public KubectlResult EnsureSuccess(string what) =>
        ExitCode == 0 ? this : throw new InvalidOperationException($"kubectl {what} failed ({ExitCode}):\n{Stdout}\n{Stderr}");
}

/// <summary>
/// The real kubectl (/usr/bin/kubectl; .ci/run installs it when missing) against an API server: its own HOME (so the
/// discovery and OpenAPI caches are per test), a kubeconfig, and a timeout per invocation.
/// </summary>
public sealed class Kubectl : IDisposable
{
    public const string Binary = "/usr/bin/kubectl";

    /// <summary>Creates a temporary HOME and asks <paramref name="kubeconfigIn"/> for the kubeconfig to use (given that HOME).</summary>
    public Kubectl(Func<string, string> kubeconfigIn)
    {
        ArgumentNullException.ThrowIfNull(kubeconfigIn);
        Home = Directory.CreateTempSubdirectory("kubectl-home-").FullName;
        Kubeconfig = kubeconfigIn(Home);
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

