using System.Globalization;
using System.Security.Cryptography;

namespace Dgon.Testing;

/// <summary>Options of <see cref="ApiHost"/>.</summary>
public sealed record ApiHostOptions
{
    /// <summary>DATABASE_URL for the API (required).</summary>
    public required string DatabaseUrl { get; init; }

    /// <summary>
    /// Whether the API's rate limits stay on (default false: functional tests register hundreds of nodes from one
    /// loopback address; the rate-limit tests turn them on).
    /// </summary>
    public bool RateLimits { get; init; }

    /// <summary>DGON_HEARTBEAT_GRACE_SECONDS; null keeps the API default (30 s).</summary>
    public double? GraceSeconds { get; init; }

    /// <summary>Port on 127.0.0.1; a free one when null (set it to restart on the same address).</summary>
    public int? Port { get; init; }

    /// <summary>Additional environment variables (null removes one).</summary>
    public IDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
}

/// <summary>
/// The real DGON API (<c>api/bin/{cfg}/net10.0/Dgon.Api.dll</c>) as a child process on loopback, started with
/// <c>dotnet</c>; ready once <c>/readyz</c> answers 200. For tests where the process boundary is what is tested
/// (a crash, exit codes, another component's tests); the API's own tests otherwise host it in-process
/// (<c>tests/Dgon.Api.Tests/InProcessApiHost.cs</c>).
/// </summary>
public sealed class ApiHost : IAsyncDisposable
{
    /// <summary>The encryption key every API started by this test process uses (base64 of 32 random bytes), so restarts can read secrets.</summary>
    public static readonly string SecretKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>The admin token (<c>DGON_ADMIN_TOKEN</c>) every API started by this test process uses.</summary>
    public static readonly string AdminToken = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>Creates a join token through <c>POST /v1/admin/join-tokens</c> with <see cref="AdminToken"/>.</summary>
    /// <param name="api">A client whose base address is the API.</param>
    /// <param name="body">The JSON body (default <c>{}</c>: 24 h, unlimited uses).</param>
    /// <returns>The token <c>id.secret</c>.</returns>
    /// <exception cref="HttpRequestException">The API did not answer 201.</exception>
    public static async Task<string> CreateJoinTokenAsync(HttpClient api, string body = "{}")
    {
        ArgumentNullException.ThrowIfNull(api);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/join-tokens") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        using var response = await api.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != System.Net.HttpStatusCode.Created)
        {
            throw new HttpRequestException($"create join token → {(int)response.StatusCode}: {text}");
        }

        return System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>Creates a join token on this API (see <see cref="CreateJoinTokenAsync(HttpClient, string)"/>).</summary>
    public Task<string> CreateJoinTokenAsync(string body = "{}") => CreateJoinTokenAsync(Client, body);

    /// <summary>Creates a join token on this API with a use limit (null: unlimited).</summary>
    public Task<string> CreateJoinTokenAsync(int? maxUses) =>
        CreateJoinTokenAsync(Client, maxUses is { } n ? $"{{\"max_uses\":{n.ToString(CultureInfo.InvariantCulture)}}}" : "{}");

    private ApiHost(ManagedProcess process, Uri baseAddress, ApiHostOptions options)
    {
        Process = process;
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
            ["DGON_ADMIN_TOKEN"] = AdminToken,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Logging__Console__FormatterName"] = "simple",
        };
        if (!options.RateLimits)
        {
            env["DGON_RATE_LIMITS"] = "off";
        }

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
        Admin.Dispose();
        await Process.DisposeAsync();
    }
}
