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
    public async Task Follows_next_links_across_pages_and_forwards_the_filter()
    {
        var requested = new List<Uri>();
        using var http = Client(request =>
        {
            requested.Add(request.RequestUri!);
            return request.RequestUri!.Query switch
            {
                "?status=active&region=ap-southeast" => Json(Nodes("a", "b"), "</v1/nodes?limit=2&cursor=c1&status=active&region=ap-southeast>; rel=\"next\""),
                "?limit=2&cursor=c1&status=active&region=ap-southeast" => Json(Nodes("c", "d"), "<http://api.test/v1/nodes?limit=2&cursor=c2&status=active&region=ap-southeast>; rel=\"next\""),
                "?limit=2&cursor=c2&status=active&region=ap-southeast" => Json(Nodes("e")),
                _ => new HttpResponseMessage(HttpStatusCode.BadRequest),
            };
        });

        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodesAsync("active", "ap-southeast", default);

        Assert.True(result.Succeeded, result.Failure?.Detail);
        Assert.Equal(["a", "b", "c", "d", "e"], result.Value.Nodes.Select(n => n.Id));
        Assert.False(result.Value.Truncated);
        Assert.Equal(3, requested.Count);
        Assert.All(requested, uri => Assert.Equal("/v1/nodes", uri.AbsolutePath));
    }

    [Fact]
    public async Task A_failing_later_page_fails_the_whole_list()
    {
        using var http = Client(request => request.RequestUri!.Query.Length == 0
            ? Json(Nodes("a"), "</v1/nodes?cursor=c1>; rel=\"next\"")
            : new HttpResponseMessage(HttpStatusCode.BadGateway));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodesAsync(null, null, default);
        Assert.Equal(ApiFailureKind.Unreachable, result.Failure?.Kind);
    }

    [Fact]
    public async Task A_next_link_to_another_origin_is_not_followed()
    {
        var calls = 0;
        using var http = Client(_ =>
        {
            calls++;
            return Json(Nodes("a"), "<http://elsewhere.test/v1/nodes?cursor=c1>; rel=\"next\"");
        });
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodesAsync(null, null, default);
        Assert.Equal(ApiFailureKind.BadResponse, result.Failure?.Kind);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task A_next_link_loop_stops()
    {
        using var http = Client(request => Json(Nodes("a"), "</v1/nodes?cursor=same>; rel=\"next\""));
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodesAsync(null, null, default);
        Assert.Equal(ApiFailureKind.BadResponse, result.Failure?.Kind);
        Assert.Contains("repeats", result.Failure?.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stops_after_the_page_limit_and_says_so()
    {
        var page = 0;
        using var http = Client(_ =>
        {
            page++;
            return Json(Nodes($"n{page}"), $"</v1/nodes?cursor=c{page}>; rel=\"next\"");
        });
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodesAsync(null, null, default);
        Assert.True(result.Succeeded);
        Assert.True(result.Value.Truncated);
        Assert.Equal(DgonApiClient.MaxPages, result.Value.Nodes.Count);
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
        var result = await new DgonApiClient(http, NullLogger<DgonApiClient>.Instance).GetNodesAsync(null, null, default);
        Assert.True(result.Succeeded);
        Assert.Equal(new Uri("http://gateway.test/dgon/v1/nodes"), seen);
    }

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
