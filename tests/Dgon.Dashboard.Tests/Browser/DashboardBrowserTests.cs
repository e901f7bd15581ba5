using System.Text.RegularExpressions;
using Dgon.Dashboard.Tests.Support;
using Dgon.Testing;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Dgon.Dashboard.Tests.Browser;

/// <summary>
/// The dashboard in headless Chromium against the real API and PostgreSQL (seed 000 acceptance: "Dashboard Overview
/// shows Active Nodes: 1; Nodes table lists macbook-001 as active with a recent heartbeat timestamp").
/// Every wait is a liveness deadline (30 s), never a fixed sleep.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed partial class DashboardBrowserTests(BrowserFixture browser, ITestOutputHelper output) : IAsyncLifetime
{
    private const string NodeId = "macbook-001";
    private readonly List<IPage> _pages = [];

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Closes this test's pages so that their polling stops with the test.</summary>
    public async Task DisposeAsync()
    {
        foreach (var page in _pages)
        {
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task Shows_an_active_node_then_turns_it_offline_without_a_reload()
    {
        var pg = await SharedPostgres.GetAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = await pg.CreateDatabaseAsync(), GraceSeconds = 3 });
        var node = await TestNode.RegisterAsync(api.Client, NodeId, "ap-southeast");
        using (var first = await node.HeartbeatAsync(ready: true))
        {
            first.EnsureSuccessStatusCode();
        }

        using var beating = new CancellationTokenSource();
        var heartbeats = HeartbeatLoopAsync(node, beating.Token);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            // Overview: Active Nodes 1, Total Nodes 1.
            var overview = await NewPageAsync();
            await overview.GotoAsync(dashboard.Url(""));
            await Expect(overview).ToHaveTitleAsync(new Regex("Overview"));
            await Expect(overview.GetByTestId("active-nodes")).ToHaveTextAsync("1");
            await Expect(overview.GetByTestId("total-nodes")).ToHaveTextAsync("1");
            await Expect(overview.GetByTestId("count-active")).ToContainTextAsync("1");
            await Expect(overview.GetByTestId("api-unreachable")).ToHaveCountAsync(0);
            await BrowserFixture.ScreenshotAsync(overview, "overview");

            // Navigation to Nodes: the row is active with a recent heartbeat and the exact UTC time on hover.
            var nodes = await NewPageAsync();
            await nodes.GotoAsync(dashboard.Url(""));
            await nodes.GetByTestId("nav-nodes").ClickAsync();
            await nodes.WaitForURLAsync(new Regex("/nodes$"));
            await Expect(nodes.GetByTestId("nav-nodes")).ToHaveAttributeAsync("aria-current", "page");
            var row = nodes.Locator($"tr[data-node-id='{NodeId}']");
            await Expect(row.Locator("td").Nth(0)).ToHaveTextAsync(NodeId);
            await Expect(row.Locator("td").Nth(1)).ToHaveTextAsync("ap-southeast");
            await Expect(row.Locator("td").Nth(2)).ToHaveTextAsync("ollama");
            await Expect(row.GetByTestId("status-chip")).ToHaveAttributeAsync("data-status", "active");
            await Expect(row.GetByTestId("status-chip")).ToHaveTextAsync("Active");
            await Expect(row.Locator("td").Nth(4)).ToHaveTextAsync("60");
            await Expect(row.GetByTestId("green")).ToHaveTextAsync("No");
            var heartbeat = row.GetByTestId("last-heartbeat").Locator("time");
            await Expect(heartbeat).ToHaveTextAsync(RecentPattern());
            await Expect(heartbeat).ToHaveAttributeAsync("title", ExactUtcPattern());
            await BrowserFixture.ScreenshotAsync(nodes, "nodes");

            // Stop heartbeating: after the API's 3 s grace both pages update in place.
            foreach (var page in new[] { overview, nodes })
            {
                await page.EvaluateAsync("() => { window.__noReload = 1; }");
            }

            await beating.CancelAsync();
            await heartbeats;
            await Expect(row.GetByTestId("status-chip")).ToHaveAttributeAsync("data-status", "offline");
            await Expect(row.GetByTestId("status-chip")).ToHaveTextAsync("Offline");
            await Expect(overview.GetByTestId("active-nodes")).ToHaveTextAsync("0");
            await Expect(overview.GetByTestId("total-nodes")).ToHaveTextAsync("1");
            foreach (var page in new[] { overview, nodes })
            {
                Assert.Equal(1, await page.EvaluateAsync<int>("() => window.__noReload"));
            }

            await BrowserFixture.ScreenshotAsync(nodes, "nodes-offline");
        }
        finally
        {
            await beating.CancelAsync();
            await heartbeats;
            output.WriteLine(dashboard.Process.Dump());
            output.WriteLine(api.Process.Dump());
        }
    }

    [Fact]
    public async Task Says_when_the_api_is_unreachable_and_recovers_when_it_returns()
    {
        var pg = await SharedPostgres.GetAsync();
        var options = new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = await pg.CreateDatabaseAsync(), Port = FreePort.Next() };
        ApiHost? api = await ApiHost.StartAsync(options);
        var node = await TestNode.RegisterAsync(api.Client, NodeId, "ap-southeast");
        using (var beat = await node.HeartbeatAsync(ready: true))
        {
            beat.EnsureSuccessStatusCode();
        }

        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            var nodes = await NewPageAsync();
            await nodes.GotoAsync(dashboard.Url("nodes"));
            var overview = await NewPageAsync();
            await overview.GotoAsync(dashboard.Url(""));
            var row = nodes.Locator($"tr[data-node-id='{NodeId}']");
            await Expect(row.GetByTestId("status-chip")).ToHaveAttributeAsync("data-status", "active");
            await Expect(overview.GetByTestId("active-nodes")).ToHaveTextAsync("1");
            foreach (var page in new[] { overview, nodes })
            {
                await Expect(page.GetByTestId("api-unreachable")).ToHaveCountAsync(0);
                await page.EvaluateAsync("() => { window.__noReload = 1; }");
            }

            // API down: both pages say so, in place, and keep polling.
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} stopping the API");
            output.WriteLine(api.Process.Dump());
            await api.DisposeAsync();
            api = null;
            var expected = $"Cannot reach the DGON API at http://127.0.0.1:{options.Port}";
            foreach (var page in new[] { overview, nodes })
            {
                var banner = page.GetByTestId("api-unreachable");
                await Expect(banner).ToBeVisibleAsync();
                await Expect(banner).ToContainTextAsync(expected);
                await Expect(banner).ToContainTextAsync("retrying every 1 s");
                await Expect(banner).ToHaveAttributeAsync("role", "alert");
            }

            await Expect(row).ToHaveCountAsync(0);
            await Expect(overview.GetByTestId("active-nodes")).ToHaveTextAsync("—");
            await BrowserFixture.ScreenshotAsync(nodes, "nodes-api-unreachable");
            await BrowserFixture.ScreenshotAsync(overview, "overview-api-unreachable");

            // API back on the same address: the banner goes and the data returns, still without a reload.
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} banner shown; restarting the API");
            api = await ApiHost.StartAsync(options);
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} API ready again");
            foreach (var page in new[] { overview, nodes })
            {
                await Expect(page.GetByTestId("api-unreachable")).ToHaveCountAsync(0);
                Assert.Equal(1, await page.EvaluateAsync<int>("() => window.__noReload"));
            }

            await Expect(row.GetByTestId("status-chip")).ToBeVisibleAsync();
            await Expect(overview.GetByTestId("total-nodes")).ToHaveTextAsync("1");
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} data back");
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
            if (api is not null)
            {
                output.WriteLine(api.Process.Dump());
                await api.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Says_when_the_dashboard_server_itself_is_unreachable()
    {
        var noApi = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        DashboardHost? dashboard = await DashboardHost.StartAsync(noApi);
        var port = dashboard.Port;
        try
        {
            var page = await NewPageAsync();
            await page.GotoAsync(dashboard.Url("nodes"));
            var banner = page.GetByTestId("dashboard-unreachable");
            await Expect(page.GetByTestId("api-unreachable")).ToBeVisibleAsync();
            await Expect(banner).ToBeHiddenAsync();
            await page.EvaluateAsync("() => { window.__noReload = 1; }");

            output.WriteLine(dashboard.Process.Dump());
            await dashboard.DisposeAsync();
            dashboard = null;
            await Expect(banner).ToBeVisibleAsync();
            await Expect(banner).ToContainTextAsync("Lost connection to the dashboard server");
            await BrowserFixture.ScreenshotAsync(page, "dashboard-unreachable");

            dashboard = await DashboardHost.StartAsync(noApi, port);
            await Expect(banner).ToBeHiddenAsync();
            Assert.Equal(1, await page.EvaluateAsync<int>("() => window.__noReload"));
        }
        finally
        {
            if (dashboard is not null)
            {
                output.WriteLine(dashboard.Process.Dump());
                await dashboard.DisposeAsync();
            }
        }
    }

    // Clicks a link and waits for the navigation. The live refresh swaps the whole region every few seconds; a click
    // whose mouse-down and mouse-up straddle a swap reaches no element and navigates nowhere, so it is clicked again.
    private static async Task ClickThroughAsync(IPage page, ILocator link, Regex url)
    {
        for (var attempt = 1; ; attempt++)
        {
            await link.ClickAsync();
            try
            {
                await page.WaitForURLAsync(url, new() { Timeout = 10_000 });
                return;
            }
            catch (TimeoutException) when (attempt < 3)
            {
            }
        }
    }

    [Fact]
    public async Task Pages_through_the_nodes_with_next_previous_reload_and_the_back_button()
    {
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = databaseUrl });
        await Fleet.InsertAsync(pg, databaseUrl, 120, api.Client); // pages of 50, 50 and 20
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            var page = await NewPageAsync();
            await page.GotoAsync(dashboard.Url("nodes"));
            var rows = page.GetByTestId("node-row");
            var next = page.GetByTestId("page-next");
            var previous = page.GetByTestId("page-previous");
            await Expect(rows).ToHaveCountAsync(50);
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(1));
            await Expect(page.GetByTestId("nodes-count")).ToContainTextAsync("Page 1 · 50 nodes");
            await Expect(previous).ToHaveAttributeAsync("aria-disabled", "true");
            await Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Pages of nodes" })).ToBeVisibleAsync();

            await ClickThroughAsync(page, next, new Regex("page=2"));
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(51));
            await ClickThroughAsync(page, next, new Regex("page=3"));
            await Expect(rows).ToHaveCountAsync(20);
            await Expect(rows.Last).ToHaveAttributeAsync("data-node-id", Fleet.Id(120));
            await Expect(next).ToHaveAttributeAsync("aria-disabled", "true");
            await Expect(page).ToHaveTitleAsync(new Regex("page 3"));
            await BrowserFixture.ScreenshotAsync(page, "nodes-page-3");

            // A reload keeps the page; so does the live refresh, in place.
            await page.ReloadAsync();
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(101));
            await page.EvaluateAsync("() => { window.__noReload = 1; }");
            var updated = await page.GetByTestId("updated-at").GetAttributeAsync("datetime");
            await Expect(page.GetByTestId("updated-at")).Not.ToHaveAttributeAsync("datetime", updated!);
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(101));
            await Expect(rows).ToHaveCountAsync(20);
            Assert.Equal(1, await page.EvaluateAsync<int>("() => window.__noReload"));

            // Previous from the trail, then the browser's back button retraces the visits.
            await ClickThroughAsync(page, previous, new Regex("page=2"));
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(51));
            await page.GoBackAsync();
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(101));
            await page.GoBackAsync(); // the reload replaced no entry: this is page 2 again, then page 1
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(51));
            await page.GoBackAsync();
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(1));

            // A status or region filter starts again from page 1.
            await page.GotoAsync(dashboard.Url("nodes?region=eu-west"));
            await Expect(rows).ToHaveCountAsync(40);
            await Expect(page.GetByTestId("clear-region")).ToContainTextAsync("eu-west");
            await ClickThroughAsync(page, page.GetByTestId("filter-active"), new Regex("status=active"));
            Assert.Contains("region=eu-west", page.Url, StringComparison.Ordinal);
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(1));
            await ClickThroughAsync(page, page.GetByTestId("clear-region"), new Regex("/nodes\\?status=active$"));
            await Expect(rows).ToHaveCountAsync(50);
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    [Fact]
    public async Task An_invalid_search_prefix_is_explained_at_the_search_box()
    {
        await using var dashboard = await DashboardHost.StartAsync(new Uri($"http://127.0.0.1:{FreePort.Next()}"));
        var page = await NewPageAsync();
        await page.GotoAsync(dashboard.Url("nodes"));
        var box = page.GetByRole(AriaRole.Searchbox, new() { Name = "Search by node id prefix" });
        await box.FillAsync("gpu_1");
        await box.PressAsync("Enter");
        await page.WaitForURLAsync(new Regex("prefix=gpu_1"));
        await Expect(box).ToHaveValueAsync("gpu_1");
        await Expect(box).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(page.GetByTestId("search-hint")).ToContainTextAsync("Not a node id prefix");
        await Expect(page.GetByTestId("nodes-empty")).ToContainTextAsync("gpu_1");
        await Expect(page.GetByTestId("api-unreachable")).ToHaveCountAsync(0); // the API was not asked
        await BrowserFixture.ScreenshotAsync(page, "nodes-invalid-prefix");
    }

    /// <summary>Needs the API's <c>GET /v1/nodes?prefix=</c> (the integrator's change): without it every node is listed.</summary>
    [Fact]
    public async Task Searches_by_id_prefix_and_pages_within_the_result()
    {
        var pg = await SharedPostgres.GetAsync();
        var databaseUrl = await pg.CreateDatabaseAsync();
        await using var api = await ApiHost.StartAsync(new ApiHostOptions { Environment = ApiEnvironment.OpenReads(), DatabaseUrl = databaseUrl });
        await Fleet.InsertAsync(pg, databaseUrl, 120, api.Client);
        await using var dashboard = await DashboardHost.StartAsync(api.BaseAddress);
        try
        {
            var page = await NewPageAsync();
            await page.GotoAsync(dashboard.Url("nodes"));
            var rows = page.GetByTestId("node-row");
            var box = page.GetByRole(AriaRole.Searchbox, new() { Name = "Search by node id prefix" });
            await box.FillAsync("NODE-0001"); // lowercased: ids are lowercase
            await ClickThroughAsync(page, page.GetByTestId("search-submit"), new Regex("prefix=NODE-0001"));
            await Expect(box).ToHaveValueAsync("node-0001");
            await Expect(rows).ToHaveCountAsync(21); // node-000100 … node-000120
            await Expect(rows.First).ToHaveAttributeAsync("data-node-id", Fleet.Id(100));
            await Expect(page.GetByTestId("page-next")).ToHaveAttributeAsync("aria-disabled", "true");
            await BrowserFixture.ScreenshotAsync(page, "nodes-search");

            // A prefix matching more than a page pages within the result, keeping the search.
            await page.GotoAsync(dashboard.Url("nodes?prefix=node-0000"));
            await Expect(rows).ToHaveCountAsync(50);
            await ClickThroughAsync(page, page.GetByTestId("page-next"), new Regex("page=2"));
            Assert.Contains("prefix=node-0000", page.Url, StringComparison.Ordinal);
            await Expect(rows).ToHaveCountAsync(49); // node-000001 … node-000099
            await Expect(rows.Last).ToHaveAttributeAsync("data-node-id", Fleet.Id(99));

            await page.GetByTestId("search-clear").ClickAsync();
            await Expect(rows).ToHaveCountAsync(50);
            await Expect(box).ToHaveValueAsync("");
        }
        finally
        {
            output.WriteLine(dashboard.Process.Dump());
        }
    }

    private async Task<IPage> NewPageAsync()
    {
        var page = await browser.NewPageAsync();
        _pages.Add(page);
        return page;
    }

    /// <summary>Heartbeats (ready) every second until cancelled, as the agent would (every 10 s there).</summary>
    private static async Task HeartbeatLoopAsync(TestNode node, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                using var response = await node.HeartbeatAsync(ready: true);
                response.EnsureSuccessStatusCode();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [GeneratedRegex(@"^\d+s ago$")]
    private static partial Regex RecentPattern();

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")]
    private static partial Regex ExactUtcPattern();
}
