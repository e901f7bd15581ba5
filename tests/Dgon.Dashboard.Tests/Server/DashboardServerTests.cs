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
    public async Task A_refresh_asks_the_api_for_one_page_and_the_overview_only_for_the_summary()
    {
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = databaseUrl });
        await Fleet.InsertAsync(pg, databaseUrl, 120, api.Client);
        await using var proxy = await RecordingProxy.StartAsync(api.BaseAddress);
        await using var dashboard = await DashboardHost.StartAsync(proxy.BaseAddress);
        try
        {
            // The Nodes page and its refresh: one GET /v1/nodes of 50 each, whatever the fleet's size.
            foreach (var path in new[] { "nodes", "fragments/nodes" })
            {
                proxy.Clear();
                var html = await dashboard.Client.GetStringAsync(new Uri(path, UriKind.Relative));
                Assert.Equal(["/v1/nodes?limit=50"], proxy.Requests);
                Assert.Equal(Enumerable.Range(1, 50).Select(Fleet.Id), Rows(html));
            }

            // Page 2 through the Next link: the cursor goes to the API, the filter stays.
            proxy.Clear();
            var filtered = await dashboard.Client.GetStringAsync(new Uri("fragments/nodes?status=active&prefix=NODE-0", UriKind.Relative));
            Assert.Equal(["/v1/nodes?status=active&prefix=node-0&limit=50"], proxy.Requests);
            var next = NextHref(filtered);
            Assert.Contains("prefix=node-0", next, StringComparison.Ordinal);
            Assert.Contains("status=active", next, StringComparison.Ordinal);
            Assert.Contains("page=2", next, StringComparison.Ordinal);
            proxy.Clear();
            await dashboard.Client.GetStringAsync(new Uri("fragments/" + next, UriKind.Relative));
            var second = Assert.Single(proxy.Requests);
            Assert.StartsWith("/v1/nodes?status=active&prefix=node-0&limit=50&cursor=", second, StringComparison.Ordinal);

            // The Overview and its refresh: /v1/summary only, never the node list.
            foreach (var path in new[] { "", "fragments/summary" })
            {
                proxy.Clear();
                var html = await dashboard.Client.GetStringAsync(new Uri(path, UriKind.Relative));
                Assert.Equal(["/v1/summary"], proxy.Requests);
                Assert.Matches("data-testid=\"total-nodes\">120<", html);
            }

            // A prefix that cannot start an id is explained, and the API is not asked.
            proxy.Clear();
            var invalid = await dashboard.Client.GetStringAsync(new Uri("nodes?prefix=gpu_1", UriKind.Relative));
            Assert.Empty(proxy.Requests);
            Assert.Contains("aria-invalid=\"true\"", invalid, StringComparison.Ordinal);
            Assert.Contains("data-testid=\"nodes-empty\"", invalid, StringComparison.Ordinal);
            Assert.Empty(Rows(invalid));
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task Next_links_walk_the_whole_list_once_in_id_order()
    {
        const int count = 120; // pages of 50, 50 and 20
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = databaseUrl });
        await Fleet.InsertAsync(pg, databaseUrl, count, api.Client);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            foreach (var (start, expected) in new[] { ("fragments/nodes", Enumerable.Range(1, count)), ("fragments/nodes?region=eu-west", Enumerable.Range(1, count).Where(i => i % 3 == 1)) })
            {
                var seen = new List<string>();
                var pages = 0;
                for (var path = start; path is not null; pages++)
                {
                    Assert.True(pages < 10, "the Next links should end");
                    var html = await dashboard.Client.GetStringAsync(new Uri(path, UriKind.Relative));
                    Assert.Contains($"Page {pages + 1} ·", html, StringComparison.Ordinal);
                    seen.AddRange(Rows(html));
                    path = NextLinkPattern().Match(html) is { Success: true } m ? "fragments/" + WebUtility.HtmlDecode(m.Groups[1].Value) : null;
                }

                Assert.Equal(expected.Select(Fleet.Id), seen);
                Assert.Equal((expected.Count() + 49) / 50, pages);
            }
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    /// <summary>Needs the API's <c>GET /v1/nodes?prefix=</c> (the integrator's change): without it every node is listed.</summary>
    [Fact]
    public async Task The_prefix_search_lists_only_the_nodes_whose_id_starts_with_it()
    {
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = databaseUrl });
        await Fleet.InsertAsync(pg, databaseUrl, 120, api.Client);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            var html = await dashboard.Client.GetStringAsync(new Uri("fragments/nodes?prefix=node-00005", UriKind.Relative));
            Assert.Equal(Enumerable.Range(50, 10).Select(Fleet.Id), Rows(html));
            Assert.DoesNotMatch(NextLinkPattern(), html);

            var none = await dashboard.Client.GetStringAsync(new Uri("fragments/nodes?prefix=gpu-", UriKind.Relative));
            Assert.Empty(Rows(none));
            Assert.Contains("No nodes match this filter.", none, StringComparison.Ordinal);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    private static List<string> Rows(string html) => NodeRowPattern().Matches(html).Select(m => m.Groups[1].Value).ToList();

    private static string NextHref(string html)
    {
        var match = NextLinkPattern().Match(html);
        Assert.True(match.Success, "no Next link");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    [GeneratedRegex("rel=\"next\" href=\"(nodes[^\"]*)\"")]
    private static partial Regex NextLinkPattern();

    [GeneratedRegex("data-node-id=\"([^\"]+)\"")]
    private static partial Regex NodeRowPattern();
}
