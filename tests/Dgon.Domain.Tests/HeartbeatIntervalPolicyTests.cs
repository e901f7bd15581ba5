using Dgon.Domain.Nodes;

namespace Dgon.Domain.Tests;

public sealed class HeartbeatIntervalPolicyTests
{
    private static readonly HeartbeatIntervalPolicy Policy = new(TimeSpan.FromSeconds(10), 1000, TimeSpan.FromSeconds(300));

    [Theory]
    [InlineData(0, 10)]
    [InlineData(10_000, 10)] // 10,000 nodes at 10 s = exactly the budget
    [InlineData(10_001, 11)] // rounded up so the budget holds
    [InlineData(40_000, 40)]
    [InlineData(100_000, 100)]
    [InlineData(1_000_000, 100)] // capped at grace / 3
    public void The_interval_stretches_with_the_fleet_up_to_a_third_of_the_grace_period(int nodes, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), Policy.IntervalFor(nodes));
    }

    [Fact]
    public void The_budget_holds_until_the_cap_is_reached()
    {
        Assert.True(Policy.BudgetHolds(100_000));
        Assert.False(Policy.BudgetHolds(100_001));
    }

    [Fact]
    public void A_short_grace_period_shortens_the_interval()
    {
        var tight = new HeartbeatIntervalPolicy(TimeSpan.FromSeconds(10), 10_000, TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(1), tight.IntervalFor(5));
    }

    [Fact]
    public void A_negative_fleet_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Policy.IntervalFor(-1));
}
