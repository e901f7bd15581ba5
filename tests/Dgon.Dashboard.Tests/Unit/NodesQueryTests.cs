namespace Dgon.Dashboard.Tests.Unit;

public sealed class NodesQueryTests
{
    [Fact]
    public void Next_then_previous_walks_the_trail_back_to_the_first_page()
    {
        var page1 = NodePagePosition.First;
        var page2 = page1.Next("c2");
        var page3 = page2.Next("c3");
        Assert.Equal(new[] { (string?)null, "c2", "c3" }, new[] { page1.Cursor, page2.Cursor, page3.Cursor });
        Assert.Equal(["c2"], page3.Trail);
        Assert.Equal(3, page3.Number);
        Assert.False(page1.HasPrevious);

        var back = page3.Previous();
        Assert.Equal("c2", back.Cursor);
        Assert.Empty(back.Trail);
        Assert.Equal(2, back.Number);
        Assert.Same(NodePagePosition.First, back.Previous());
    }

    [Fact]
    public void The_url_round_trips_the_position_and_the_filter()
    {
        var query = new NodesQuery(NodeFilter.Create("offline", "eu-west", "gpu-"), NodePagePosition.First.Next("c2").Next("c3").Next("c4"));
        var url = query.AppendTo("nodes");
        Assert.Equal("nodes?status=offline&region=eu-west&prefix=gpu-&cursor=c4&trail=c2.c3&page=4", url);

        var parsed = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri("http://x/" + url).Query);
        var again = NodesQuery.Create(parsed["status"], parsed["region"], parsed["prefix"], parsed["cursor"], parsed["trail"], parsed["page"]);
        Assert.Equal(query.Filter, again.Filter);
        Assert.Equal(query.Position.Cursor, again.Position.Cursor);
        Assert.Equal(query.Position.Trail, again.Position.Trail);
        Assert.Equal(4, again.Position.Number);
    }

    [Fact]
    public void The_first_page_and_a_filter_change_carry_no_cursor()
    {
        Assert.Equal("nodes", NodesQuery.Create(null, null, null, null, "c1.c2", "7").AppendTo("nodes"));
        Assert.Equal("nodes?status=active&prefix=gpu-", NodeFilter.Create(null, null, "gpu-").WithStatus("active").AppendTo("nodes"));
    }

    [Fact]
    public void A_deep_trail_keeps_only_the_newest_cursors_and_previous_stops_where_it_starts()
    {
        var position = NodePagePosition.First;
        for (var i = 2; i <= NodePagePosition.MaxTrail + 5; i++)
        {
            position = position.Next($"c{i}");
        }

        Assert.Equal(NodePagePosition.MaxTrail, position.Trail.Count);
        Assert.Equal(NodePagePosition.MaxTrail + 5, position.Number);
        for (var i = 0; i < NodePagePosition.MaxTrail; i++)
        {
            position = position.Previous();
        }

        Assert.Empty(position.Trail);
        Assert.Equal(5, position.Number);
        Assert.False(position.HasPrevious);
        Assert.Throws<InvalidOperationException>(() => position.Previous());
    }

    [Theory]
    [InlineData(null, null, 2)]      // no page number: the least the trail allows
    [InlineData("c1.c2", "1", 4)]   // too small for the trail
    [InlineData("c1.c2", "x", 4)]
    [InlineData("", "9", 9)]        // a cut trail: the number is kept
    public void The_page_number_is_at_least_what_the_trail_says(string? trail, string? page, int expected) =>
        Assert.Equal(expected, NodePagePosition.Create("c9", trail, page).Number);

    [Theory]
    [InlineData("gpu-eu", "gpu-eu")]
    [InlineData("  GPU-EU ", "gpu-eu")]
    [InlineData("0", "0")]
    [InlineData("-", "-")]
    public void A_prefix_is_trimmed_and_lowercased(string raw, string expected)
    {
        var filter = NodeFilter.Create(null, null, raw);
        Assert.Equal(expected, filter.Prefix);
        Assert.Null(filter.InvalidPrefix);
    }

    [Theory]
    [InlineData("gpu_1")]
    [InlineData("gpu.eu")]
    [InlineData("ünï")]
    [InlineData("a b")]
    public void A_prefix_outside_rfc_1123_label_characters_is_invalid_and_not_sent(string raw)
    {
        var filter = NodeFilter.Create(null, null, raw);
        Assert.Null(filter.Prefix);
        Assert.Equal(raw, filter.InvalidPrefix);
        Assert.True(filter.IsFiltered);
    }

    [Fact]
    public void A_prefix_longer_than_an_id_is_invalid() =>
        Assert.NotNull(NodeFilter.Create(null, null, new string('a', NodeFilter.MaxPrefixLength + 1)).InvalidPrefix);

    [Fact]
    public void A_blank_prefix_is_no_filter() =>
        Assert.Equal(NodeFilter.None, NodeFilter.Create(null, null, "   "));
}
