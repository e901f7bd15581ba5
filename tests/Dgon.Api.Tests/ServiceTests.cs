using System.Net;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>Health, readiness, OpenAPI, CORS, and behaviour when PostgreSQL goes away.</summary>
public sealed class ServiceTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Liveness_and_readiness_answer_200()
    {
        using var live = await fx.Client.GetAsync("/healthz");
        using var ready = await fx.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task The_OpenAPI_document_describes_the_v1_contract()
    {
        var doc = await Json.ReadAsync(await fx.Client.GetAsync("/openapi/v1.json"));
        var paths = doc.GetProperty("paths");
        foreach (var path in new[] { "/v1/nodes/register", "/v1/nodes/heartbeat", "/v1/receipts", "/v1/summary", "/v1/nodes" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"OpenAPI lacks {path}");
        }

        var register = paths.GetProperty("/v1/nodes/register").GetProperty("post");
        Assert.True(register.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.True(register.GetProperty("responses").TryGetProperty("422", out _));
    }

    [Theory]
    [InlineData("http://localhost:3000", true)]
    [InlineData("http://127.0.0.1:3000", true)]
    [InlineData("https://evil.example", false)]
    public async Task CORS_allows_only_the_configured_origins(string origin, bool allowed)
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/summary");
        preflight.Headers.Add("Origin", origin);
        preflight.Headers.Add("Access-Control-Request-Method", "GET");
        using var response = await fx.Client.SendAsync(preflight);
        var hasHeader = response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values);
        Assert.Equal(allowed, hasHeader && values!.Contains(origin));
    }

    [Fact]
    public async Task Without_its_database_the_API_is_unready_and_answers_503_problems_not_500()
    {
        await using var pg = await PostgresServer.StartAsync();
        var url = await pg.CreateDatabaseAsync();
        await using var api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = url });
        var node = await TestNode.RegisterAsync(api.Client, "db-outage-1");

        pg.Process.Kill();

        await Eventually.Until(
            async () => (await api.Client.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable,
            TimeSpan.FromSeconds(30),
            "/readyz to report 503");
        using var withoutDatabase = await api.Client.GetAsync("/readyz/without-database"); // the chart's probe: stays in the Service
        Assert.Equal(HttpStatusCode.OK, withoutDatabase.StatusCode);
        using var heartbeat = await node.HeartbeatAsync(ready: true);
        await Json.AssertProblemAsync(heartbeat, 503, "unavailable");
        Assert.NotNull(heartbeat.Headers.RetryAfter);
        using var liveness = await api.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, liveness.StatusCode); // alive, just not ready: no restart loop
    }

    [Fact]
    public async Task The_API_refuses_to_start_without_a_valid_secret_key()
    {
        var dll = RepoPaths.BuiltAssembly("api", "Dgon.Api");
        await using var process = ManagedProcess.Start("dotnet", [dll], new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = fx.DatabaseUrl,
            ["DGON_SECRET_KEY"] = "c2hvcnQ=",
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{FreePort.Next()}",
        });
        Assert.NotEqual(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains(process.Output, l => l.Contains("DGON_SECRET_KEY key 1 decodes to 5 bytes", StringComparison.Ordinal));
    }
}
