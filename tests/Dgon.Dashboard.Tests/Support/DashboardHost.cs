using System.Globalization;
using Dgon.Testing;

namespace Dgon.Dashboard.Tests.Support;

/// <summary>The built dashboard (<c>dashboard/bin/{cfg}/net10.0/Dgon.Dashboard.dll</c>) as a child process on loopback.</summary>
public sealed class DashboardHost : IAsyncDisposable
{
    private DashboardHost(ManagedProcess process, int port)
    {
        Process = process;
        Port = port;
        BaseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>Base URL with a trailing slash, e.g. <c>http://127.0.0.1:41000/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The port (to restart on the same address).</summary>
    public int Port { get; }

    /// <summary>A client for <see cref="BaseAddress"/>.</summary>
    public HttpClient Client { get; }

    /// <summary>The process and its output.</summary>
    public ManagedProcess Process { get; }

    /// <summary>
    /// Starts the dashboard against <paramref name="apiBase"/> with a 1 s refresh; waits (≤ 60 s) for <c>/healthz</c>.
    /// <paramref name="openReads"/> sets <c>DGON_OPEN_READS</c> (default true: the v1 dev-open mode the pre-issue-12
    /// tests run in); <paramref name="environment"/> adds or removes (null) variables.
    /// </summary>
    public static async Task<DashboardHost> StartAsync(Uri apiBase, int? port = null, bool openReads = true, IDictionary<string, string?>? environment = null)
    {
        var dll = RepoPaths.BuiltAssembly("dashboard", "Dgon.Dashboard");
        var chosen = port ?? FreePort.Next();
        var env = new Dictionary<string, string?>
        {
            ["DGON_API_BASE"] = apiBase.ToString(),
            ["DGON_REFRESH_SECONDS"] = "1",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_URLS"] = null,
            ["DGON_OPEN_READS"] = openReads ? "true" : "false",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            env[key] = value;
        }

        var process = await ManagedProcess.StartServiceAsync(
            dll,
            ["--urls", $"http://127.0.0.1:{chosen.ToString(CultureInfo.InvariantCulture)}"],
            env,
            new Uri($"http://127.0.0.1:{chosen.ToString(CultureInfo.InvariantCulture)}/healthz"));
        var host = new DashboardHost(process, chosen);
        return host;
    }

    /// <summary>Absolute URL of a dashboard path, e.g. <c>Url("nodes")</c>.</summary>
    public string Url(string relative) => new Uri(BaseAddress, relative).ToString();

    /// <summary>Stops the dashboard (SIGTERM).</summary>
    public Task StopAsync() => Process.StopAsync();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Process.DisposeAsync();
    }
}
