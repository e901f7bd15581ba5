using System.Net;
using System.Text;

namespace Dgon.Agent.Tests;

public sealed class NodeApiExceptionTests
{
    private static NodeApiException Heartbeat(HttpStatusCode status, string body) =>
        new("heartbeat", status, ApiProblem.TryParse(Encoding.UTF8.GetBytes(body)), null, null);

    [Theory]
    [InlineData("""{"type":"https://dgon.io/problems/unknown-node","title":"Unknown node","status":401}""", ApiFailureKind.TokenRejected)]
    [InlineData("""{"type":"https://dgon.io/problems/bad-signature","status":401}""", ApiFailureKind.TokenRejected)]
    [InlineData("""{"type":"https://dgon.io/problems/stale-timestamp","status":401}""", ApiFailureKind.ClockSkew)]
    [InlineData("""{"type":"https://dgon.io/problems/missing-auth-headers","status":401}""", ApiFailureKind.Rejected)]
    [InlineData("""{"detail":"invalid hmac"}""", ApiFailureKind.TokenRejected)]
    [InlineData("<html>401</html>", ApiFailureKind.TokenRejected)]
    [InlineData("", ApiFailureKind.TokenRejected)]
    public void A_401_is_classified_by_its_problem_type(string body, ApiFailureKind expected) =>
        Assert.Equal(expected, Heartbeat(HttpStatusCode.Unauthorized, body).Kind);

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError, ApiFailureKind.Transient)]
    [InlineData(HttpStatusCode.ServiceUnavailable, ApiFailureKind.Transient)]
    [InlineData(HttpStatusCode.TooManyRequests, ApiFailureKind.Transient)]
    [InlineData(HttpStatusCode.RequestTimeout, ApiFailureKind.Transient)]
    [InlineData(HttpStatusCode.BadRequest, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.Forbidden, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.Conflict, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.UnprocessableEntity, ApiFailureKind.Rejected)]
    public void Other_statuses_are_transient_or_rejected(HttpStatusCode status, ApiFailureKind expected) =>
        Assert.Equal(expected, Heartbeat(status, "{}").Kind);

    [Fact]
    public void Validation_problem_is_parsed_with_detail_and_errors()
    {
        var problem = ApiProblem.TryParse("""
            {"type":"https://dgon.io/problems/validation","title":"Invalid request","status":422,
             "detail":"The request body is invalid.","errors":{"region":["must be 1-63 characters"],"node_id":"bad"}}
            """u8);
        Assert.NotNull(problem);
        Assert.True(problem.TypeIs("validation"));
        Assert.Equal("The request body is invalid.", problem.Detail);
        Assert.Equal(["must be 1-63 characters"], problem.Errors["region"]);
        Assert.Equal(["bad"], problem.Errors["node_id"]);
        var text = problem.ToString();
        Assert.Contains("The request body is invalid.", text, StringComparison.Ordinal);
        Assert.Contains("region: must be 1-63 characters", text, StringComparison.Ordinal);
    }

    [Fact]
    public void TypeIs_matches_whole_last_segment_only()
    {
        var problem = new ApiProblem("https://dgon.io/problems/not-unknown-node", null, null, new Dictionary<string, IReadOnlyList<string>>());
        Assert.False(problem.TypeIs("unknown-node"));
    }
}
