using Microsoft.Extensions.Configuration;

namespace Dgon.Dashboard.Tests.Unit;

public sealed class DashboardOptionsTests
{
    private static DashboardOptions Read(string? apiBase = null, string? refresh = null) =>
        DashboardOptions.FromConfiguration(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["DGON_API_BASE"] = apiBase, ["DGON_REFRESH_SECONDS"] = refresh })
            .Build());

    [Fact]
    public void Defaults_follow_the_seed()
    {
        var options = Read();
        Assert.Equal(new Uri("http://127.0.0.1:8001/"), options.ApiBase);
        Assert.Equal(5, options.RefreshSeconds);
        Assert.Equal("http://127.0.0.1:8001", options.ApiBaseDisplay);
    }

    [Theory]
    [InlineData("http://api:8001", "http://api:8001/")]
    [InlineData("https://dgon.example/api", "https://dgon.example/api/")]
    [InlineData("https://dgon.example/api/", "https://dgon.example/api/")]
    public void Base_address_always_ends_with_a_slash(string configured, string expected) =>
        Assert.Equal(new Uri(expected), Read(apiBase: configured).ApiBase);

    [Fact]
    public void Refresh_interval_is_configurable() => Assert.Equal(1, Read(refresh: "1").RefreshSeconds);

    [Theory]
    [InlineData("ftp://x", null, "DGON_API_BASE")]
    [InlineData("not a url", null, "DGON_API_BASE")]
    [InlineData(null, "0", "DGON_REFRESH_SECONDS")]
    [InlineData(null, "-1", "DGON_REFRESH_SECONDS")]
    [InlineData(null, "five", "DGON_REFRESH_SECONDS")]
    public void Invalid_values_name_the_variable(string? apiBase, string? refresh, string variable)
    {
        var error = Assert.Throws<InvalidOperationException>(() => Read(apiBase, refresh));
        Assert.Contains(variable, error.Message, StringComparison.Ordinal);
    }
}
