using System.Net;
using System.Text.RegularExpressions;
using Dgon.Dashboard.Tests.Support;
using Dgon.Testing;
using Xunit.Abstractions;

namespace Dgon.Dashboard.Tests.Server;

/// <summary>The built dashboard process over plain HTTP (no browser).</summary>
public sealed partial class DashboardServerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Pages_and_fragments_answer_200_with_a_banner_when_the_api_is_down()
    {
        var closedPort = FreePort.Next();
        await using var dashboard = await DashboardHost.StartAsync(new Uri($"http://127.0.0.1:{closedPort}"));
        try
        {
            foreach (var path in new[] { "", "nodes", "nodes?status=active", "fragments/summary", "fragments/nodes", "fragments/nodes?status=offline&region=eu" })
            {
                using var response = await dashboard.Client.GetAsync(new Uri(path, UriKind.Relative));
                var html = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"/{path} → {(int)response.StatusCode}");
                Assert.Contains("data-testid=\"api-unreachable\"", html, StringComparison.Ordinal);
                Assert.Contains($"Cannot reach the DGON API at http://127.0.0.1:{closedPort}", html, StringComparison.Ordinal);
                Assert.Contains("retrying every 1 s", html, StringComparison.Ordinal);
            }
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task Healthz_and_front_end_files_are_served_from_the_build_output()
    {
        await using var dashboard = await DashboardHost.StartAsync(new Uri("http://127.0.0.1:9"));
        using var health = await dashboard.Client.GetAsync(new Uri("healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        // htmx comes from npm (node_modules → wwwroot/lib) at build time, not from the repository.
        foreach (var path in new[] { "lib/htmx/htmx.min.js", "js/dashboard.js", "css/site.css", "favicon.svg" })
        {
            using var response = await dashboard.Client.GetAsync(new Uri(path, UriKind.Relative));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/{path} → {(int)response.StatusCode}");
        }

        var htmx = await dashboard.Client.GetStringAsync(new Uri("lib/htmx/htmx.min.js", UriKind.Relative));
        Assert.Contains("htmx", htmx, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fragments_poll_themselves_and_are_not_cached()
    {
        await using var dashboard = await DashboardHost.StartAsync(new Uri("http://127.0.0.1:9"));
        foreach (var (path, fragment) in new[] { ("", "fragments/summary"), ("nodes?status=active", "fragments/nodes?status=active") })
        {
            var page = await dashboard.Client.GetStringAsync(new Uri(path, UriKind.Relative));
            Assert.Contains($"hx-get=\"{fragment}\" hx-trigger=\"every 1s\" hx-swap=\"outerHTML\"", page, StringComparison.Ordinal);

            using var response = await dashboard.Client.GetAsync(new Uri(fragment, UriKind.Relative));
            Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
            var html = await response.Content.ReadAsStringAsync();
            Assert.StartsWith("<section", html.TrimStart(), StringComparison.Ordinal);
            Assert.Contains($"hx-get=\"{fragment}\"", html, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_nodes_table_holds_every_page_of_the_api()
    {
        // GET /v1/nodes answers 500 nodes per page by default: 501 nodes take two pages and a Link header.
        const int count = 501;
        var pg = await SharedPostgres.GetAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = await pg.CreateDatabaseAsync() });
        using (var gate = new SemaphoreSlim(8))
        {
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    await TestNode.RegisterAsync(api.Client, $"node-{i:D4}", i % 2 == 0 ? "ap-southeast" : "eu-west");
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        using (var firstPage = await api.Client.GetAsync(new Uri("/v1/nodes", UriKind.Relative)))
        {
            Assert.True(firstPage.Headers.Contains("Link"), "the API should page 501 nodes");
        }

        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            var html = await dashboard.Client.GetStringAsync(new Uri("fragments/nodes", UriKind.Relative));
            var ids = NodeRowPattern().Matches(html).Select(m => m.Groups[1].Value).ToList();
            Assert.Equal(count, ids.Count);
            Assert.Equal(count, ids.Distinct(StringComparer.Ordinal).Count());
            Assert.Contains("node-0500", ids);
            Assert.Contains($"{count} nodes", html, StringComparison.Ordinal);

            var summary = await dashboard.Client.GetStringAsync(new Uri("fragments/summary", UriKind.Relative));
            Assert.Matches("data-testid=\"total-nodes\">501<", summary);

            var filtered = await dashboard.Client.GetStringAsync(new Uri("fragments/nodes?region=eu-west", UriKind.Relative));
            Assert.Equal(count / 2, NodeRowPattern().Matches(filtered).Count);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [GeneratedRegex("data-node-id=\"([^\"]+)\"")]
    private static partial Regex NodeRowPattern();
}
