using System.Globalization;
using System.Security.Cryptography;

namespace Dgon.Testing;

/// <summary>Options of <see cref="ApiHost"/>.</summary>
public sealed record ApiHostOptions
{
    /// <summary>DATABASE_URL for the API (required).</summary>
    public required string DatabaseUrl { get; init; }

    /// <summary>DGON_HEARTBEAT_GRACE_SECONDS; null keeps the API default (30 s).</summary>
    public double? GraceSeconds { get; init; }

    /// <summary>Port on 127.0.0.1; a free one when null (set it to restart on the same address).</summary>
    public int? Port { get; init; }

    /// <summary>Additional environment variables (null removes one).</summary>
    public IDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
}

/// <summary>
/// The real DGON API (<c>api/bin/{cfg}/net10.0/Dgon.Api.dll</c>) as a child process on loopback, started with
/// <c>dotnet</c>; ready once <c>/readyz</c> answers 200.
/// </summary>
public sealed class ApiHost : IAsyncDisposable
{
    /// <summary>The encryption key every API started by this test process uses (base64 of 32 random bytes), so restarts can read secrets.</summary>
    public static readonly string SecretKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private ApiHost(ManagedProcess process, Uri baseAddress, ApiHostOptions options)
    {
        Process = process;
        BaseAddress = baseAddress;
        Options = options;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The API's base URL, e.g. <c>http://127.0.0.1:41235</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>A client with <see cref="BaseAddress"/> set.</summary>
    public HttpClient Client { get; }

    /// <summary>The process (output, kill).</summary>
    public ManagedProcess Process { get; }

    /// <summary>The options it was started with.</summary>
    public ApiHostOptions Options { get; }

    /// <summary>Starts the API and waits (≤ 60 s) for <c>/readyz</c>.</summary>
    /// <exception cref="InvalidOperationException">It exited or did not become ready; the message holds its output.</exception>
    public static async Task<ApiHost> StartAsync(ApiHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var port = options.Port ?? FreePort.Next();
        var dll = RepoPaths.BuiltAssembly("api", "Dgon.Api");
        var env = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = options.DatabaseUrl,
            ["DGON_SECRET_KEY"] = SecretKey,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Logging__Console__FormatterName"] = "simple",
        };
        if (options.GraceSeconds is { } grace)
        {
            env["DGON_HEARTBEAT_GRACE_SECONDS"] = grace.ToString(CultureInfo.InvariantCulture);
        }

        foreach (var (k, v) in options.Environment)
        {
            env[k] = v;
        }

        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var process = await ManagedProcess.StartServiceAsync(dll, [], env, new Uri(baseAddress, "/readyz"));
        var host = new ApiHost(process, baseAddress, options);
        return host;
    }

    /// <summary>Stops the API gracefully (SIGTERM).</summary>
    public Task StopAsync() => Process.StopAsync();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Process.DisposeAsync();
    }
}
