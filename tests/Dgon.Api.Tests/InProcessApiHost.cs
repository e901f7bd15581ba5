using System.Globalization;
using Dgon.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Dgon.Api.Tests;

/// <summary>
/// The real DGON API (its own <c>Program</c>, migrations included) hosted in the test process by
/// <see cref="WebApplicationFactory{TEntryPoint}"/> on real Kestrel at <c>http://127.0.0.1:{port}</c>, so clients
/// speak real HTTP (raw sockets, <c>Connection: close</c>, client addresses for rate limits, Prometheus scrapes).
/// Settings go in as configuration (the same names as <see cref="ApiHost"/>'s environment variables), logs into a
/// <see cref="FakeLogCollector"/>, and a given clock replaces the app's
/// <see cref="TimeProvider"/>. Use <see cref="ApiHost"/> instead where the process is under test (crash, exit code).
/// </summary>
public sealed class InProcessApiHost : IAsyncDisposable
{
    private readonly Factory _factory;

    private InProcessApiHost(Factory factory, Uri baseAddress, ApiHostOptions options)
    {
        _factory = factory;
        BaseAddress = baseAddress;
        Options = options;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        Admin = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var adminToken = options.Environment.TryGetValue("DGON_ADMIN_TOKEN", out var configured) && configured is not null ? configured : ApiHost.AdminToken;
        Admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminToken);
    }

    /// <summary>The API's base URL, e.g. <c>http://127.0.0.1:41235</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>A client with <see cref="BaseAddress"/> set and no credential (what nodes and strangers send).</summary>
    public HttpClient Client { get; }

    /// <summary>
    /// A client that sends the admin token (<see cref="ApiHost.AdminToken"/>, or the <c>DGON_ADMIN_TOKEN</c> the options set) on every request: for node reads, which
    /// need a credential since issue 12, and admin calls. Never use it to register nodes (an admin registration skips
    /// the join token and key proof).
    /// </summary>
    public HttpClient Admin { get; }

    /// <summary>The options it was started with.</summary>
    public ApiHostOptions Options { get; }

    /// <summary>Every log record the API wrote, from start-up on.</summary>
    public FakeLogCollector Logs => _factory.Services.GetFakeLogCollector();

    /// <summary>The log so far as lines <c>Level Category: message</c> (an exception's text follows its message).</summary>
    public IReadOnlyList<string> Output =>
        [.. Logs.GetSnapshot().Select(r => $"{r.Level} {r.Category}: {r.Message}" + (r.Exception is null ? "" : "\n" + r.Exception))];

    /// <summary>All log lines as one string, for assertion messages.</summary>
    public string Dump() => "--- in-process API log ---\n" + string.Join('\n', Output);

    /// <summary>The app's services.</summary>
    public IServiceProvider Services => _factory.Services;

    /// <summary>Creates a join token on this API (see <see cref="ApiHost.CreateJoinTokenAsync(HttpClient, string)"/>).</summary>
    public Task<string> CreateJoinTokenAsync(string body = "{}") => ApiHost.CreateJoinTokenAsync(Client, body);

    /// <summary>
    /// Starts the API in this process with the settings <see cref="ApiHost.StartAsync"/> gives its process
    /// (<see cref="ApiHost.SecretKey"/>, <see cref="ApiHost.AdminToken"/>, rate limits off unless asked for), then
    /// <see cref="ApiHostOptions.Environment"/> (a null value unsets a setting). Returns once Kestrel listens, which
    /// is after the migrations ran.
    /// </summary>
    /// <exception cref="InvalidOperationException">The configuration was refused or start-up failed (the API's own exception).</exception>
    public static async Task<InProcessApiHost> StartAsync(ApiHostOptions options, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["DATABASE_URL"] = options.DatabaseUrl,
            ["DGON_SECRET_KEY"] = ApiHost.SecretKey,
            ["DGON_ADMIN_TOKEN"] = ApiHost.AdminToken,
            ["urls"] = $"http://127.0.0.1:{(options.Port ?? 0).ToString(CultureInfo.InvariantCulture)}",
        };
        if (!options.RateLimits)
        {
            settings["DGON_RATE_LIMITS"] = "off";
        }

        if (options.GraceSeconds is { } grace)
        {
            settings["DGON_HEARTBEAT_GRACE_SECONDS"] = grace.ToString(CultureInfo.InvariantCulture);
        }

        foreach (var (k, v) in options.Environment)
        {
            settings[k] = v;
        }

        var factory = new Factory(settings, clock);
        try
        {
            factory.UseKestrel();
            await Task.Run(factory.StartServer);
        }
        catch
        {
            await factory.DisposeAsync();
            throw;
        }

        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Select(a => new Uri(a))
            .First(a => a.Host == "127.0.0.1");
        return new InProcessApiHost(factory, address, options);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Admin.Dispose();
        await _factory.DisposeAsync();
    }

    private sealed class Factory(IReadOnlyDictionary<string, string?> settings, TimeProvider? clock) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Production");
            foreach (var (key, value) in settings)
            {
                // Host settings reach Program's WebApplicationBuilder as configuration before AddDgonApi reads it.
                // An empty value reads as unset (the API's Settings.Optional), which overrides a process variable.
                builder.UseSetting(key, value ?? "");
            }

            builder.ConfigureLogging(logging => logging.ClearProviders().AddFakeLogging());
            builder.ConfigureTestServices(services =>
            {
                if (clock is not null)
                {
                    services.AddSingleton(clock);
                }
            });
        }
    }
}
