using System.Diagnostics;
using System.Text;
using Dgon.Agent.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Dgon.Agent.Tests;

public sealed class OllamaProbeTests
{
    private static async Task<OllamaStatus> ProbeAsync(Action<WebApplication> map)
    {
        await using var server = await LoopbackServer.StartAsync(map);
        using var http = new HttpClient();
        return await new OllamaProbe(http, server.BaseAddress).ProbeAsync(CancellationToken.None);
    }

    private static Action<WebApplication> Tags(string json, int status = 200) =>
        app => app.MapGet("/api/tags", () => Results.Text(json, "application/json", Encoding.UTF8, status));

    [Fact]
    public async Task Ready_when_tags_lists_a_model()
    {
        var status = await ProbeAsync(Tags("""
            {"models":[{"name":"llama3.1:8b","model":"llama3.1:8b","digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","size":4920753328},
                       {"name":"qwen2.5:7b","model":"qwen2.5:7b"}]}
            """));
        Assert.True(status.Ready);
        Assert.Null(status.Reason);
        Assert.Equal(["llama3.1:8b", "qwen2.5:7b"], status.Models.Select(m => m.Name).ToArray());
        Assert.Equal("a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72", status.FirstModel?.Digest);
    }

    [Fact]
    public async Task Not_ready_when_no_model_is_listed()
    {
        var status = await ProbeAsync(Tags("""{"models":[]}"""));
        Assert.False(status.Ready);
        Assert.Contains("no model", status.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"error":"boom"}""")]
    [InlineData("""{"models":null}""")]
    [InlineData("[]")]
    [InlineData("not json")]
    public async Task Not_ready_on_unexpected_bodies(string body) =>
        Assert.False((await ProbeAsync(Tags(body))).Ready);

    [Fact]
    public async Task Not_ready_on_http_error()
    {
        var status = await ProbeAsync(Tags("""{"models":[{"name":"x"}]}""", 500));
        Assert.False(status.Ready);
        Assert.Contains("500", status.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Not_ready_when_nothing_listens()
    {
        Uri closed;
        await using (var server = await LoopbackServer.StartAsync(_ => { }))
        {
            closed = server.BaseAddress;
        }

        using var http = new HttpClient();
        var status = await new OllamaProbe(http, closed).ProbeAsync(CancellationToken.None);
        Assert.False(status.Ready);
        Assert.Contains("unreachable", status.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Not_ready_after_the_2_second_timeout()
    {
        var watch = Stopwatch.StartNew();
        var status = await ProbeAsync(app => app.MapGet("/api/tags", async (HttpContext c) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(10), c.RequestAborted);
            return Results.Text("""{"models":[{"name":"late"}]}""", "application/json");
        }));
        Assert.False(status.Ready);
        Assert.Contains("did not answer within 2 s", status.Reason, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task Caller_cancellation_is_not_swallowed()
    {
        await using var server = await LoopbackServer.StartAsync(Tags("""{"models":[]}"""));
        using var http = new HttpClient();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new OllamaProbe(http, server.BaseAddress).ProbeAsync(cts.Token));
    }

    [Fact]
    public void Model_without_name_falls_back_to_model_field()
    {
        var status = OllamaProbe.Parse("""{"models":[{"model":"phi3:mini"}]}"""u8);
        Assert.True(status.Ready);
        Assert.Equal("phi3:mini", status.FirstModel?.Name);
    }
}
