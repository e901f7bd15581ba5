using System.Net;
using System.Net.Http.Json;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>Summary counts and node listing (filters, keyset paging) on a database of their own.</summary>
public sealed class ListingTests(ApiFixture fx) : IClassFixture<ApiFixture>, IAsyncLifetime
{
    // Shared by the test instances of this class (xunit makes one per test): InitializeAsync enrolls once.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, TestNode> Nodes = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        if ((await fx.ScalarAsync<long>("SELECT count(*) FROM nodes")) > 0)
        {
            return; // seeded by an earlier test of this class
        }

        for (var i = 0; i < 7; i++)
        {
            var node = await TestNode.RegisterAsync(fx.Client, $"list-{i:D2}", region: i % 2 == 0 ? "eu-west" : "ap-southeast");
            Nodes[node.NodeId] = node;
            if (i < 3)
            {
                using var hb = await node.HeartbeatAsync(ready: true);
                hb.EnsureSuccessStatusCode();
            }
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Summary_counts_active_and_total_nodes()
    {
        var summary = await fx.Admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/summary");
        var total = summary.GetProperty("total_nodes").GetInt32();
        var active = summary.GetProperty("active_nodes").GetInt32();
        Assert.Equal(7, total);
        Assert.InRange(active, 0, 3); // the 3 heartbeating nodes, unless the 3 s grace already passed
        var byStatus = summary.GetProperty("by_status");
        Assert.Equal(total, byStatus.EnumerateObject().Sum(p => p.Value.GetInt32()));
        Assert.Equal(active, byStatus.GetProperty("active").GetInt32());
    }

    [Fact]
    public async Task Summary_reports_three_active_right_after_their_heartbeats()
    {
        foreach (var id in new[] { "list-00", "list-01", "list-02" })
        {
            var node = Nodes[id];
            using var hb = await node.HeartbeatAsync(ready: true);
            hb.EnsureSuccessStatusCode();
        }

        var summary = await fx.Admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/summary");
        // Three heartbeats within well under the 3 s grace; a slow machine could still let one lapse, so accept ≥ 1.
        Assert.InRange(summary.GetProperty("active_nodes").GetInt32(), 1, 3);
        Assert.Equal(7, summary.GetProperty("total_nodes").GetInt32());
    }

    [Fact]
    public async Task Paging_follows_the_Link_header_in_stable_id_order_without_gaps_or_repeats()
    {
        var seen = new List<string>();
        string? url = "/v1/nodes?limit=3";
        var pages = 0;
        while (url is not null)
        {
            using var response = await fx.Admin.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var items = (await Json.ReadAsync(response)).EnumerateArray().Select(n => n.GetProperty("id").GetString()!).ToList();
            Assert.InRange(items.Count, 1, 3);
            seen.AddRange(items);
            url = NodeApiTests.NextLink(response);
            pages++;
        }

        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"list-{i:D2}"), seen);
    }

    [Fact]
    public async Task Filters_by_region_and_status_and_pages_within_the_filter()
    {
        var eu = await fx.Admin.GetFromJsonAsync<System.Text.Json.JsonElement[]>("/v1/nodes?region=eu-west");
        Assert.Equal(["list-00", "list-02", "list-04", "list-06"], eu!.Select(n => n.GetProperty("id").GetString()));

        using var page = await fx.Admin.GetAsync("/v1/nodes?region=eu-west&limit=2");
        var next = NodeApiTests.NextLink(page);
        Assert.NotNull(next);
        Assert.Contains("region=eu-west", next, StringComparison.Ordinal);
        var second = await fx.Admin.GetFromJsonAsync<System.Text.Json.JsonElement[]>(next);
        Assert.Equal(["list-04", "list-06"], second!.Select(n => n.GetProperty("id").GetString()));

        var pending = await fx.Admin.GetFromJsonAsync<System.Text.Json.JsonElement[]>("/v1/nodes?status=pending");
        Assert.All(pending!, n => Assert.Equal("pending", n.GetProperty("status").GetString()));
        Assert.Contains(pending!, n => n.GetProperty("id").GetString() == "list-06");
    }

    [Theory]
    [InlineData("status=sleeping", "status")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=1001", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("cursor=%%%", "cursor")]
    [InlineData("region=a%20b", "region")]
    public async Task Bad_query_parameters_are_400_naming_the_parameter(string query, string field)
    {
        using var response = await fx.Admin.GetAsync("/v1/nodes?" + query);
        var problem = await Json.AssertProblemAsync(response, 400, "invalid-query");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }
}
