using Dgon.Domain.Validation;

namespace Dgon.Agent.Tests;

public sealed class NodeIdTests
{
    [Theory]
    [InlineData("macbook-001", "macbook-001")]
    [InlineData("Johns-MacBook-Pro.local", "johns-macbook-pro")]
    [InlineData("GPU_Box_7", "gpu-box-7")]
    [InlineData("  rig 42  ", "rig-42")]
    [InlineData("--edge--node--", "edge-node")]
    [InlineData("a__b..c", "a-b")]
    [InlineData("Café-Ünïcode", "caf-n-code")]
    [InlineData("ip-10-0-0-1.ec2.internal", "ip-10-0-0-1")]
    [InlineData(".hidden", "hidden")]
    public void Host_names_are_lowercased_and_sanitised_into_a_label(string host, string expected)
    {
        var id = AgentOptions.NodeIdFromHostName(host);
        Assert.Equal(expected, id);
        Assert.True(ContractValidator.IsValidNodeId(id));
    }

    [Fact]
    public void Long_host_names_are_cut_to_63_characters_without_a_trailing_dash()
    {
        var host = new string('a', 62) + "-bbbb";
        var id = AgentOptions.NodeIdFromHostName(host);
        Assert.Equal(new string('a', 62), id);
        Assert.True(ContractValidator.IsValidNodeId(id));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("___")]
    [InlineData(null)]
    public void Unusable_host_names_give_an_empty_id(string? host) =>
        Assert.Equal(string.Empty, AgentOptions.NodeIdFromHostName(host));
}
