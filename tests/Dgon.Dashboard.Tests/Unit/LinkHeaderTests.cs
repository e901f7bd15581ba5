using Dgon.Dashboard.Api;

namespace Dgon.Dashboard.Tests.Unit;

public sealed class LinkHeaderTests
{
    [Theory]
    [InlineData("</v1/nodes?limit=500&cursor=abc>; rel=\"next\"", "/v1/nodes?limit=500&cursor=abc")]
    [InlineData("<http://api:8001/v1/nodes?cursor=x>;rel=next", "http://api:8001/v1/nodes?cursor=x")]
    [InlineData("</v1/nodes?cursor=1>; rel=\"prev\", </v1/nodes?cursor=3>; rel=\"next\"", "/v1/nodes?cursor=3")]
    [InlineData("</v1/nodes?cursor=3>; title=\"more, please\"; REL=\"last next\"", "/v1/nodes?cursor=3")]
    public void Finds_the_next_link(string header, string expected) =>
        Assert.Equal(expected, LinkHeader.FindNext([header]));

    [Theory]
    [InlineData("</v1/nodes?cursor=1>; rel=\"prev\"")]
    [InlineData("</v1/nodes?cursor=1>; rel=\"nextish\"")]
    [InlineData("garbage")]
    [InlineData("")]
    public void No_next_link(string header) => Assert.Null(LinkHeader.FindNext([header]));

    [Fact]
    public void Looks_in_every_header_value() =>
        Assert.Equal("/b", LinkHeader.FindNext(["</a>; rel=\"self\"", "</b>; rel=\"next\""]));
}
