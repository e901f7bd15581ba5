using System.Diagnostics;

namespace Dgon.Testing;

/// <summary>Result of one kubectl run.</summary>
/// <param name="ExitCode">Exit code.</param>
/// <param name="StdOut">Standard output.</param>
/// <param name="StdErr">Standard error.</param>
public sealed record KubectlResult(int ExitCode, string StdOut, string StdErr)
{
    /// <summary>Throws with both streams when the exit code is not 0.</summary>
    public KubectlResult EnsureSuccess(string what) =>
        ExitCode == 0 ? this : throw new InvalidOperationException($"kubectl {what} exited {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}");
}

/// <summary>
/// The real kubectl (<c>/usr/bin/kubectl</c>, 1.32 on this image) against a kubeconfig, with its own HOME so the
/// discovery cache is per test run. Each run is bounded (30 s).
/// </summary>
public sealed class Kubectl(string kubeconfig, string home)
{
    /// <summary>The kubectl binary.</summary>
    public const string Binary = "/usr/bin/kubectl";

    /// <summary>Runs kubectl with the arguments (no shell) and returns its streams.</summary>
    /// <exception cref="TimeoutException">It ran longer than 30 s (it is killed).</exception>
    public async Task<KubectlResult> RunAsync(params string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--kubeconfig");
        psi.ArgumentList.Add(kubeconfig);
        psi.ArgumentList.Add("--request-timeout=20s");
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["HOME"] = home;
        psi.Environment.Remove("KUBECONFIG");
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} ran longer than 30 s");
        }

        return new KubectlResult(process.ExitCode, await stdout, await stderr);
    }
}
