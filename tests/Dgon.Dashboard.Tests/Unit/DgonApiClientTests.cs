using System.Net;
using System.Text;
using Dgon.Dashboard.Api;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dgon.Dashboard.Tests.Unit;

public sealed class DgonApiClientTests
{
    private const string NodeJson =
        """{"id":"{0}","region":"ap-southeast","runtime":"ollama","status":"active","reputation":60,"green_energy":false,"last_heartbeat":"2025-09-30T10:00:00Z"}""";

    [Fact]
    public async Task Reads_the_summary()
    {
        using var http = Client(_ => Json("""{"active_nodes":1,"total_nodes":2,"by_status":{"active":1,"pending":1,"offline":0,"quarantine":0}}"""));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetSummaryAsync(default);
        Assert.True(result.Succeeded);
        Assert.Equal(1, result.Value.ActiveNodes);
        Assert.Equal(2, result.Value.TotalNodes);
        Assert.Equal(1, result.Value.ByStatus["pending"]);
    }

    [Fact]
    public async Task Connection_refused_is_unreachable()
    {
        using var http = Client(_ => throw new HttpRequestException("Connection refused (127.0.0.1:8001)"));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetSummaryAsync(default);
        Assert.Equal(ApiFailureKind.Unreachable, result.Failure?.Kind);
        Assert.Contains("Connection refused", result.Failure?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_timeout_is_unreachable()
    {
        using var http = Client(async (_, ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(30), ct);
            return Json("{}");
        });
        http.Timeout = TimeSpan.FromMilliseconds(200);
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetSummaryAsync(default);
        Assert.Equal(ApiFailureKind.Unreachable, result.Failure?.Kind);
        Assert.Contains("no answer within", result.Failure?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancellation_by_the_caller_is_not_swallowed()
    {
        using var http = Client(async (_, ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(30), ct);
            return Json("{}");
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetSummaryAsync(cts.Token));
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError, ApiFailureKind.Unreachable)]
    [InlineData(HttpStatusCode.ServiceUnavailable, ApiFailureKind.Unreachable)]
    [InlineData(HttpStatusCode.NotFound, ApiFailureKind.BadResponse)]
    [InlineData(HttpStatusCode.BadRequest, ApiFailureKind.BadResponse)]
    public async Task Error_statuses_are_failures(HttpStatusCode status, ApiFailureKind kind)
    {
        using var http = Client(_ => new HttpResponseMessage(status));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetSummaryAsync(default);
        Assert.Equal(kind, result.Failure?.Kind);
        Assert.Contains($"HTTP {(int)status}", result.Failure?.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("null")]
    [InlineData("""{"active_nodes":"one"}""")]
    public async Task Malformed_bodies_are_bad_responses(string body)
    {
        using var http = Client(_ => Json(body));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetSummaryAsync(default);
        Assert.Equal(ApiFailureKind.BadResponse, result.Failure?.Kind);
    }

    [Fact]
    public async Task Reads_one_page_with_the_filter_the_limit_and_the_cursor_and_returns_the_next_cursor()
    {
        var requested = new List<Uri>();
        using var http = Client(request =>
        {
            requested.Add(request.RequestUri!);
            return Json(Nodes("gpu-a", "gpu-b"), "</v1/nodes?limit=2&cursor=Z3B1LWI&status=active>; rel=\"next\"");
        });
        var query = NodesQuery.Create("active", "ap-southeast", "GPU-", "Z3B1LWE", null, "2");

        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodePageAsync(query, 2, default);

        Assert.True(result.Succeeded, result.Failure?.Detail);
        Assert.Equal(["gpu-a", "gpu-b"], result.Value.Nodes.Select(n => n.Id));
        Assert.Equal("Z3B1LWI", result.Value.NextCursor);
        var uri = Assert.Single(requested);
        Assert.Equal("/v1/nodes?status=active&region=ap-southeast&prefix=gpu-&limit=2&cursor=Z3B1LWE", uri.PathAndQuery);
    }

    [Fact]
    public async Task The_last_page_has_no_next_cursor()
    {
        using var http = Client(_ => Json(Nodes("a")));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodePageAsync(FirstPage, 50, default);
        Assert.True(result.Succeeded);
        Assert.Null(result.Value.NextCursor);
    }

    [Fact]
    public async Task A_next_link_without_a_cursor_is_a_bad_response()
    {
        using var http = Client(_ => Json(Nodes("a"), "</v1/nodes?limit=50>; rel=\"next\""));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodePageAsync(FirstPage, 50, default);
        Assert.Equal(ApiFailureKind.BadResponse, result.Failure?.Kind);
        Assert.Contains("cursor", result.Failure?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rejected_cursor_is_a_bad_response()
    {
        using var http = Client(_ => new HttpResponseMessage(HttpStatusCode.BadRequest));
        var query = NodesQuery.Create(null, null, null, "not-ours", null, null);
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodePageAsync(query, 50, default);
        Assert.Equal(ApiFailureKind.BadResponse, result.Failure?.Kind);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1001)]
    public async Task A_limit_outside_the_api_bounds_throws(int limit)
    {
        using var http = Client(_ => Json("[]"));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(
            () => new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodePageAsync(FirstPage, limit, default));
    }

    [Fact]
    public async Task Resolves_paths_under_a_base_address_with_a_path()
    {
        Uri? seen = null;
        using var http = new HttpClient(new StubHandler((request, _) =>
        {
            seen = request.RequestUri;
            return Task.FromResult(Json("[]"));
        }))
        { BaseAddress = new Uri("http://gateway.test/dgon/") };
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodePageAsync(FirstPage, 50, default);
        Assert.True(result.Succeeded);
        Assert.Equal(new Uri("http://gateway.test/dgon/v1/nodes?limit=50"), seen);
    }

    private static NodesQuery FirstPage { get; } = new(NodeFilter.None, NodePagePosition.First);

    private static string Nodes(params string[] ids) =>
        "[" + string.Join(',', ids.Select(id => NodeJson.Replace("{0}", id, StringComparison.Ordinal))) + "]";

    private static HttpResponseMessage Json(string body, string? link = null)
    {
        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (link is not null)
        {
            response.Headers.TryAddWithoutValidation("Link", link);
        }

        return response;
    }

    private static HttpClient Client(Func<HttpRequestMessage, HttpResponseMessage> respond) =>
        Client((request, _) => Task.FromResult(respond(request)));

    private static HttpClient Client(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> respond) =>
        new(new StubHandler(respond)) { BaseAddress = new Uri("http://api.test/") };

    private sealed class StubHandler(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> respond) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            respond(request, cancellationToken);
    }
}
