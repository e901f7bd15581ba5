// The Nodes page of the dashboard with N nodes (default 100,000) in PostgreSQL, in headless Chromium.
// Starts a throwaway PostgreSQL and the API (tests/Dgon.Testing), fills the nodes table with one
// INSERT … SELECT generate_series, starts the dashboard (this build, or --dashboard <dll> for another one) and prints:
//   navigation  – page.goto(/nodes) until the first table row is visible (load event included)
//   refresh     – one live refresh of the nodes region: htmx:beforeRequest → htmx:afterSettle (or its timeout)
//   search      – submitting the id-prefix search until the next page shows its first row (new dashboard only)
//   next page   – clicking Next until page 2 shows (new dashboard only)
// plus the HTML size of the page and of its refresh fragment. Prints numbers, never asserts.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Dgon.Testing;
using Microsoft.Playwright;
using Npgsql;

var nodes = 100_000;
var runs = 3;
var timeoutSeconds = 60;
var refreshSeconds = 5;
string? dashboardDll = null;
var label = "this build";
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--nodes": nodes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--timeout": timeoutSeconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--refresh": refreshSeconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--dashboard": dashboardDll = Path.GetFullPath(args[++i]); break;
        case "--label": label = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

dashboardDll ??= RepoPaths.BuiltAssembly("dashboard", "Dgon.Dashboard");
var timeout = TimeSpan.FromSeconds(timeoutSeconds);
var total = Stopwatch.StartNew();
void Say(string text) => Console.WriteLine($"[{total.Elapsed.TotalSeconds,6:0.0}s] {text}");

var pg = await SharedPostgres.GetAsync();
var databaseUrl = await pg.CreateDatabaseAsync();
// A day of grace: the sweeper must not turn the fleet offline in the middle of a measurement.
// The first API process only migrates the database; the nodes are inserted behind its back, so a second one is started
// to load them into its in-memory node table (issue 11: the API reads its nodes at start-up and from change notifications).
await (await ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = databaseUrl, GraceSeconds = 86_400 })).DisposeAsync();
await using (var db = new NpgsqlConnection(pg.ConnectionStringForUrl(databaseUrl)))
{
    await db.OpenAsync();
    var fill = Stopwatch.StartNew();
    await using var insert = new NpgsqlCommand(
        """
        INSERT INTO nodes (id, region, runtime, status, reputation, green_energy, ready, last_heartbeat, last_seen_at, registered_at)
        SELECT 'node-' || lpad(i::text, 6, '0'),
               (ARRAY['ap-southeast', 'eu-west', 'us-east'])[1 + i % 3],
               (ARRAY['ollama', 'vllm', 'tgi', 'tensorrtllm'])[1 + i % 4],
               CASE WHEN i % 10 < 7 THEN 'active' WHEN i % 10 < 9 THEN 'offline' ELSE 'pending' END,
               40 + (i % 60), i % 5 = 0, i % 10 < 7,
               now() - make_interval(secs => i % 600), now(), now() - interval '1 day'
        FROM generate_series(1, @n) AS i
        """, db);
    insert.Parameters.AddWithValue("n", nodes);
    insert.CommandTimeout = 120;
    var inserted = await insert.ExecuteNonQueryAsync();
    await using var analyze = new NpgsqlCommand("ANALYZE nodes", db);
    await analyze.ExecuteNonQueryAsync();
    Say($"inserted {inserted} nodes in {fill.Elapsed.TotalSeconds:0.0} s");
}

// Open reads (issue 12's development mode) on the API and the dashboard: this measures the Nodes page itself, and a
// dashboard build from before issue 12 (the "before" side) sends no credential. A signed-in user adds one indexed
// session lookup per API call, not measured here.
await using var api = await ApiHost.StartAsync(new ApiHostOptions
{
    DatabaseUrl = databaseUrl,
    GraceSeconds = 86_400,
    Environment = new Dictionary<string, string?> { ["DGON_OPEN_READS"] = "true" },
});

using (var summary = JsonDocument.Parse(await api.Admin.GetStringAsync(new Uri("/v1/summary", UriKind.Relative))))
{
    Say($"API /v1/summary total_nodes = {summary.RootElement.GetProperty("total_nodes").GetInt32()}");
}

var port = FreePort.Next();
var dashboardUrl = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/";
await using var dashboard = await ManagedProcess.StartServiceAsync(
    dashboardDll,
    ["--urls", dashboardUrl.TrimEnd('/')],
    new Dictionary<string, string?>
    {
        ["DGON_API_BASE"] = api.BaseAddress.ToString(),
        ["DGON_REFRESH_SECONDS"] = refreshSeconds.ToString(CultureInfo.InvariantCulture),
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
        ["ASPNETCORE_URLS"] = null,
        ["DGON_OPEN_READS"] = "true",
    },
    new Uri(dashboardUrl + "healthz"));
Say($"dashboard ({label}) {dashboardDll}");

// Server side only: the HTML of the page and of the fragment the live refresh polls.
using (var http = new HttpClient { Timeout = timeout })
{
    foreach (var path in new[] { "nodes", "fragments/nodes" })
    {
        var watch = Stopwatch.StartNew();
        try
        {
            var html = await http.GetStringAsync(new Uri(dashboardUrl + path));
            Say($"GET /{path}: {watch.Elapsed.TotalMilliseconds:0} ms, {html.Length / 1024.0:0.0} KiB HTML, {html.Split("data-node-id=").Length - 1} rows");
        }
        catch (TaskCanceledException)
        {
            Say($"GET /{path}: no answer within {timeoutSeconds} s");
        }
    }
}

RequiredTool.Find("/usr/bin/chromium", "apt-get install -y chromium");
using var playwright = await Playwright.CreateAsync();
await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
{
    ExecutablePath = "/usr/bin/chromium",
    Headless = true,
    Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});

var results = new List<(string Name, List<double?> Ms)>();
List<double?> Series(string name)
{
    var list = new List<double?>();
    results.Add((name, list));
    return list;
}

var navigation = Series("navigation → table rendered");
var refresh = Series("live refresh (one swap)");
var search = Series("search by prefix → table rendered");
var nextPage = Series("Next → page 2 rendered");
const string Row = "tr[data-node-id]";
for (var run = 1; run <= runs; run++)
{
    await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
    context.SetDefaultTimeout((float)timeout.TotalMilliseconds);
    var page = await context.NewPageAsync();
    await page.AddInitScriptAsync(
        """
        window.__refreshes = [];
        document.addEventListener('htmx:beforeRequest', e => { if (e.detail.elt.id === 'nodes') window.__t0 = performance.now(); });
        document.addEventListener('htmx:afterSettle', e => { if (window.__t0) { window.__refreshes.push(performance.now() - window.__t0); window.__t0 = 0; } });
        document.addEventListener('htmx:timeout', () => { window.__refreshes.push(-1); window.__t0 = 0; });
        """);

    var watch = Stopwatch.StartNew();
    try
    {
        await page.GotoAsync(dashboardUrl + "nodes", new PageGotoOptions { WaitUntil = WaitUntilState.Load, Timeout = (float)timeout.TotalMilliseconds });
        await page.Locator(Row).First.WaitForAsync(new LocatorWaitForOptions { Timeout = (float)timeout.TotalMilliseconds });
        navigation.Add(watch.Elapsed.TotalMilliseconds);
    }
    catch (TimeoutException)
    {
        navigation.Add(null);
        Say($"run {run}: navigation not rendered within {timeoutSeconds} s");
        continue;
    }

    var rows = await page.Locator(Row).CountAsync();
    Say($"run {run}: navigation {navigation[^1]:0} ms, {rows} rows in the DOM");

    // One live refresh: wait for the next swap (up to refresh interval + timeout).
    var deadline = Stopwatch.StartNew();
    double? swap = null;
    while (deadline.Elapsed < TimeSpan.FromSeconds(refreshSeconds) + timeout)
    {
        var seen = await page.EvaluateAsync<double[]>("() => window.__refreshes");
        if (seen.Length > 0)
        {
            swap = seen[0] < 0 ? null : seen[0];
            Say(seen[0] < 0 ? $"run {run}: refresh timed out in htmx (10 s)" : $"run {run}: refresh {seen[0]:0} ms");
            break;
        }

        await Task.Delay(100);
    }

    refresh.Add(swap);
    if (await page.Locator("#prefix").CountAsync() == 0)
    {
        continue; // the original dashboard has neither search nor pager
    }

    // "node-0421" matches node-042100 … node-042199 once the API filters by prefix.
    watch.Restart();
    await page.Locator("#prefix").FillAsync("node-0421");
    await page.Locator("[data-testid=search-submit]").ClickAsync();
    await page.WaitForURLAsync("**/nodes?prefix=node-0421", new PageWaitForURLOptions { WaitUntil = WaitUntilState.Load });
    await page.Locator(Row).First.WaitForAsync();
    search.Add(watch.Elapsed.TotalMilliseconds);
    var first = await page.Locator(Row).First.GetAttributeAsync("data-node-id");
    Say($"run {run}: search {search[^1]:0} ms, first row {first} ({(first?.StartsWith("node-0421", StringComparison.Ordinal) == true ? "API filtered by prefix" : "API ignored ?prefix=")})");

    await page.GotoAsync(dashboardUrl + "nodes");
    watch.Restart();
    await page.Locator("[data-testid=page-next]").ClickAsync();
    await page.WaitForURLAsync("**/nodes?cursor=*", new PageWaitForURLOptions { WaitUntil = WaitUntilState.Load });
    await page.Locator(Row).First.WaitForAsync();
    nextPage.Add(watch.Elapsed.TotalMilliseconds);
    Say($"run {run}: next page {nextPage[^1]:0} ms");
}

Console.WriteLine();
Console.WriteLine($"Dashboard at {nodes:N0} nodes ({label}), {runs} runs, timeout {timeoutSeconds} s, refresh every {refreshSeconds} s");
foreach (var (name, ms) in results)
{
    var done = ms.Where(m => m is not null).Select(m => m!.Value).Order().ToList();
    var failed = ms.Count - done.Count;
    var text = done.Count == 0
        ? (ms.Count == 0 ? "n/a" : $"never ({failed}/{ms.Count} timed out)")
        : $"median {done[done.Count / 2],7:0} ms   min {done[0],7:0}   max {done[^1],7:0}" + (failed > 0 ? $"   ({failed}/{ms.Count} timed out)" : "");
    Console.WriteLine($"  {name,-36} {text}");
}

return 0;
