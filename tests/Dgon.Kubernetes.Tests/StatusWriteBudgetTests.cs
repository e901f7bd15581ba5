using Dgon.Api.Configuration;
using Dgon.Api.Kubernetes;
using Microsoft.Extensions.Configuration;

namespace Dgon.Kubernetes.Tests;

/// <summary>Issue 11: the status-write token bucket on an injected clock, and DGON_STATUS_WRITES_PER_SECOND in the API's settings.</summary>
public sealed class StatusWriteBudgetTests
{
    [Fact]
    public void The_bucket_allows_its_burst_then_its_rate_and_never_more()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var budget = new StatusWriteBudget(20, clock);
        var taken = 0;
        while (budget.TryTake())
        {
            taken++;
        }

        Assert.Equal(20, taken); // one second's worth
        // Over 10 s in 50 ms steps, taking greedily: exactly 20 a second.
        for (var step = 0; step < 200; step++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(50));
            while (budget.TryTake())
            {
                taken++;
            }
        }

        Assert.Equal(20 + 200, taken);
        // Idle for a minute: the bucket refills to one second's worth, no more.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(20, budget.Available);
    }

    [Theory]
    [InlineData("kubernetes", null, 500, 500)]
    [InlineData("kubernetes", "20", 20, 20)]
    [InlineData("standalone", "20", 20, 10_000)]
    public void Kubernetes_mode_tells_nodes_an_interval_within_the_status_write_budget(string registry, string? writes, int expectedWrites, double expectedHeartbeatBudget)
    {
        var settings = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = "postgres://u:p@127.0.0.1:5432/dgon",
            ["DGON_REGISTRY"] = registry,
            ["DGON_SECRET_KEY"] = Convert.ToBase64String(new byte[32]),
            ["DGON_STATUS_WRITES_PER_SECOND"] = writes,
        };
        var options = DgonApiOptions.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        Assert.Equal(expectedWrites, options.Kubernetes.StatusWritesPerSecond);
        Assert.Equal(expectedHeartbeatBudget, options.Fleet.HeartbeatInterval.MaxHeartbeatsPerSecond);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("2.5")]
    [InlineData("lots")]
    public void A_malformed_status_write_budget_is_refused_with_its_name(string writes)
    {
        var settings = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = "postgres://u:p@127.0.0.1:5432/dgon",
            ["DGON_REGISTRY"] = "kubernetes",
            ["DGON_STATUS_WRITES_PER_SECOND"] = writes,
        };
        var e = Assert.Throws<InvalidOperationException>(() => DgonApiOptions.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()));
        Assert.Contains("DGON_STATUS_WRITES_PER_SECOND", e.Message, StringComparison.Ordinal);
    }
}
