using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Dgon.Testing;

/// <summary>One sample of an instant-query vector: the series' labels and its value.</summary>
/// <param name="Labels">Label name → value, including <c>__name__</c>, <c>job</c> and <c>instance</c>.</param>
/// <param name="Value">The sample value.</param>
public sealed record PromSample(IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// A real Prometheus server (Debian's <c>/usr/bin/prometheus</c>, PLATFORM.md) on a free loopback port, scraping the
/// given targets every second, with its TSDB in a temporary folder. Queried through its HTTP API.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    /// <summary>Where Prometheus is expected (override with <c>PROMETHEUS</c>).</summary>
    public static string Binary => Environment.GetEnvironmentVariable("PROMETHEUS") ?? "/usr/bin/prometheus";

    private readonly DirectoryInfo _dir;

    private PrometheusServer(ManagedProcess process, Uri baseAddress, DirectoryInfo dir)
    {
        Process = process;
        BaseAddress = baseAddress;
        _dir = dir;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(15) };
    }

    /// <summary>The server process.</summary>
    public ManagedProcess Process { get; }

    /// <summary>http://127.0.0.1:port/</summary>
    public Uri BaseAddress { get; }

    /// <summary>A client for its HTTP API.</summary>
    public HttpClient Client { get; }

    /// <summary>Starts Prometheus with one scrape job per entry of <paramref name="jobs"/> (job name → target URLs' host:port) and waits until ready.</summary>
    /// <exception cref="InvalidOperationException">The binary is missing, or Prometheus exited or did not become ready in 60 s.</exception>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyDictionary<string, Uri[]> jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: apt-get install prometheus (see .ci/run)");
        }

        var dir = Directory.CreateTempSubdirectory("dgon-prometheus-");
        var config = new System.Text.StringBuilder("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
        foreach (var (job, targets) in jobs)
        {
            config.Append("  - job_name: ").Append(job).Append("\n    metrics_path: /metrics\n    static_configs:\n      - targets: [")
                .Append(string.Join(", ", targets.Select(t => $"'{t.Authority}'"))).Append("]\n");
        }

        var configPath = Path.Combine(dir.FullName, "prometheus.yml");
        await File.WriteAllTextAsync(configPath, config.ToString());
        var port = FreePort.Next();
        var process = ManagedProcess.Start(Binary, [
            "--config.file=" + configPath,
            "--storage.tsdb.path=" + Path.Combine(dir.FullName, "data"),
            "--web.listen-address=127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture),
            "--log.level=warn",
        ]);
        var server = new PrometheusServer(process, new Uri($"http://127.0.0.1:{port}/"), dir);
        try
        {
            await Eventually.Until(
                async () =>
                {
                    if (process.HasExited)
                    {
                        throw new InvalidOperationException($"prometheus exited with {process.ExitCode}:\n{process.Dump()}");
                    }

                    try
                    {
                        using var ready = await server.Client.GetAsync(new Uri("-/ready", UriKind.Relative));
                        return ready.IsSuccessStatusCode;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(60),
                "prometheus /-/ready");
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Runs an instant query (<c>GET /api/v1/query</c>) and returns the vector's samples.</summary>
    /// <exception cref="InvalidOperationException">The query failed or did not return a vector.</exception>
    public async Task<IReadOnlyList<PromSample>> QueryAsync(string promql)
    {
        using var response = await Client.GetAsync(new Uri("api/v1/query?query=" + Uri.EscapeDataString(promql), UriKind.Relative));
        var body = await response.Content.ReadAsStringAsync();
        var json = JsonNode.Parse(body);
        if (!response.IsSuccessStatusCode || json?["status"]?.GetValue<string>() != "success" || json["data"]?["resultType"]?.GetValue<string>() != "vector")
        {
            throw new InvalidOperationException($"query {promql} failed: {(int)response.StatusCode} {body}");
        }

        return [.. json["data"]!["result"]!.AsArray().Select(r => new PromSample(
            r!["metric"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal),
            double.Parse(r["value"]![1]!.GetValue<string>(), CultureInfo.InvariantCulture)))];
    }

    /// <summary>The scrape targets' health as Prometheus sees them (job, scrapeUrl, health, lastError).</summary>
    public async Task<string> TargetsAsync()
    {
        using var response = await Client.GetAsync(new Uri("api/v1/targets", UriKind.Relative));
        return await response.Content.ReadAsStringAsync();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Process.DisposeAsync();
        try
        {
            _dir.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary><c>promtool</c> (Debian's <c>/usr/bin/promtool</c>): the exposition-format lint and the rule-file (PromQL) check.</summary>
public static class Promtool
{
    /// <summary>Where promtool is expected (override with <c>PROMTOOL</c>).</summary>
    public static string Binary => Environment.GetEnvironmentVariable("PROMTOOL") ?? "/usr/bin/promtool";

    /// <summary>Feeds <paramref name="exposition"/> to <c>promtool check metrics</c>.</summary>
    /// <returns>Exit code (0 = clean) and everything promtool printed.</returns>
    /// <exception cref="InvalidOperationException">promtool is missing or did not finish in 60 s (it is killed then).</exception>
    public static Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition) => RunAsync(["check", "metrics"], exposition);

    /// <summary>
    /// Writes <paramref name="rulesYaml"/> (a Prometheus rule file) to a temporary folder of its own, runs
    /// <c>promtool check rules</c> on it and deletes the folder.
    /// </summary>
    /// <returns>Exit code (0 = every expression parses) and everything promtool printed.</returns>
    /// <exception cref="InvalidOperationException">promtool is missing or did not finish in 60 s (it is killed then).</exception>
    public static async Task<(int ExitCode, string Output)> CheckRulesAsync(string rulesYaml)
    {
        var dir = Directory.CreateTempSubdirectory("dgon-promtool-");
        try
        {
            var file = Path.Combine(dir.FullName, "rules.yaml");
            await File.WriteAllTextAsync(file, rulesYaml);
            return await RunAsync(["check", "rules", file], null);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string[] args, string? stdin)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: apt-get install prometheus (see .ci/run), or set PROMTOOL to its path");
        }

        using var process = System.Diagnostics.Process.Start(new ProcessStartInfo(Binary, args)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"promtool {string.Join(' ', args)} did not finish within 60 s");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
