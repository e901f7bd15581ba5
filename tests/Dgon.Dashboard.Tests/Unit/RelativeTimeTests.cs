namespace Dgon.Dashboard.Tests.Unit;

public sealed class RelativeTimeTests
{
    private static readonly DateTimeOffset Now = new(2025, 9, 30, 10, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(0, "0s ago")]
    [InlineData(0.999, "0s ago")]
    [InlineData(8, "8s ago")]
    [InlineData(59.9, "59s ago")]
    [InlineData(60, "1m ago")]
    [InlineData(3 * 60 + 59, "3m ago")]
    [InlineData(59 * 60 + 59, "59m ago")]
    [InlineData(3600, "1h ago")]
    [InlineData(23 * 3600 + 3599, "23h ago")]
    [InlineData(86400, "1d ago")]
    [InlineData(45 * 86400 + 7, "45d ago")]
    public void Formats_the_largest_whole_unit_truncated(double secondsAgo, string expected) =>
        Assert.Equal(expected, RelativeTime.Format(Now.AddSeconds(-secondsAgo), Now));

    [Fact]
    public void Null_reads_never() => Assert.Equal("never", RelativeTime.Format(null, Now));

    [Fact]
    public void A_time_in_the_future_clamps_to_zero_seconds() =>
        Assert.Equal("0s ago", RelativeTime.Format(Now.AddSeconds(5), Now));

    [Fact]
    public void Offsets_do_not_change_the_elapsed_time()
    {
        var sameInstantInSingapore = Now.AddSeconds(-90).ToOffset(TimeSpan.FromHours(8));
        Assert.Equal("1m ago", RelativeTime.Format(sameInstantInSingapore, Now));
    }

    [Fact]
    public void Exact_time_is_utc_for_the_tooltip()
    {
        var singapore = new DateTimeOffset(2025, 9, 30, 18, 0, 5, TimeSpan.FromHours(8));
        Assert.Equal("2025-09-30 10:00:05 UTC", RelativeTime.FormatExact(singapore));
        Assert.Equal("2025-09-30T10:00:05Z", RelativeTime.FormatMachine(singapore));
        Assert.Equal("no heartbeat received yet", RelativeTime.FormatExact(null));
    }
}
