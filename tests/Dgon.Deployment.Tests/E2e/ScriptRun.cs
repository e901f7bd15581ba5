using System.Diagnostics;
using Dgon.Testing;

namespace Dgon.Deployment.Tests.E2e;

/// <summary>The outcome of one run of tests/e2e/k3d.sh.</summary>
public sealed record ScriptResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    public string Output => Stdout + Stderr;

    public override string ToString() => $"exit code {ExitCode} after {Elapsed.TotalSeconds:F1} s\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>
/// Runs tests/e2e/k3d.sh with bash, a controlled environment and a deadline. Every run gets fresh, empty HOME and
/// TMPDIR directories, so a test can check that the script left nothing behind.
/// </summary>
public sealed class ScriptRun : IDisposable
{
    public static readonly string Script = Path.Combine(RepoPaths.Root, "tests", "e2e", "k3d.sh");

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("dgon-k3d-test-");

    public ScriptRun()
    {
        Home = _root.CreateSubdirectory("home").FullName;
        TempDir = _root.CreateSubdirectory("tmp").FullName;
    }

    /// <summary>HOME of the script: must stay empty.</summary>
    public string Home { get; }

    /// <summary>TMPDIR of the script (where it makes its work directory).</summary>
    public string TempDir { get; }

    /// <summary>A scratch directory of the test itself, outside HOME and TMPDIR.</summary>
    public string Scratch(string name) => _root.CreateSubdirectory(name).FullName;

    /// <summary>Runs the script; environment values of null remove the variable.</summary>
    public async Task<ScriptResult> RunAsync(IReadOnlyDictionary<string, string?> env, TimeSpan deadline)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = RepoPaths.Root,
        };
        psi.ArgumentList.Add(Script);
        // The docker CLI and the script read these; the developer's own settings must not leak into a test.
        foreach (var name in new[] { "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "KUBECONFIG", "CLUSTER_NAME", "HOST_PORT", "KEEP_CLUSTER", "WAIT_SECONDS", "REQUIRE_DOCKER", "INGRESS_HOST", "K3S_IMAGE" })
        {
            psi.Environment.Remove(name);
        }

        psi.Environment["HOME"] = Home;
        psi.Environment["TMPDIR"] = TempDir;
        foreach (var (name, value) in env)
        {
            if (value is null)
            {
                psi.Environment.Remove(name);
            }
            else
            {
                psi.Environment[name] = value;
            }
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("bash did not start");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"k3d.sh did not finish within {deadline.TotalSeconds} s.\nstdout:\n{await stdout}\nstderr:\n{await stderr}");
        }

        return new ScriptResult(process.ExitCode, await stdout, await stderr, stopwatch.Elapsed);
    }

    public void Dispose()
    {
        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp directory
        }
    }
}
