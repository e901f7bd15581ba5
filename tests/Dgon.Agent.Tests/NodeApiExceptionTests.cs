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
    [InlineData("""{"type":"https://dgon.io/problems/secret-unavailable","status":401}""", ApiFailureKind.TokenRejected)]
    [InlineData("""{"type":"https://dgon.io/problems/replayed","status":401}""", ApiFailureKind.Replayed)]
    [InlineData("""{"type":"https://dgon.io/problems/missing-auth-headers","status":401}""", ApiFailureKind.Rejected)]
    [InlineData("""{"type":"https://dgon.io/problems/join-token-required","status":401}""", ApiFailureKind.Rejected)]
    [InlineData("""{"type":"https://dgon.io/problems/join-token-expired","status":401}""", ApiFailureKind.Rejected)]
    [InlineData("""{"type":"https://dgon.io/problems/bad-proof","status":401}""", ApiFailureKind.Rejected)]
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
    [InlineData(HttpStatusCode.MovedPermanently, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.Found, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.TemporaryRedirect, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.PermanentRedirect, ApiFailureKind.Rejected)]
    [InlineData(HttpStatusCode.OK, ApiFailureKind.Transient)]
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

    [Fact]
    public void Explicit_kind_wins_over_the_status()
    {
        var e = new NodeApiException("heartbeat", HttpStatusCode.OK, null, null, "too big", ApiFailureKind.Rejected);
        Assert.Equal(ApiFailureKind.Rejected, e.Kind);
    }

    [Fact]
    public void Conflict_problems_are_recognised()
    {
        var e = Heartbeat(HttpStatusCode.Conflict, """{"type":"https://dgon.io/problems/proof-required","status":409}""");
        Assert.True(e.ProblemIs("proof-required"));
        Assert.False(e.ProblemIs("key-mismatch"));
        Assert.False(Heartbeat(HttpStatusCode.Conflict, "not json").ProblemIs("proof-required"));
    }

    [Fact]
    public void Server_text_is_cleaned_when_parsed()
    {
        var problem = ApiProblem.TryParse("""
            {"type":"https://dgon.io/problems/x\u001b[0m","title":"T\r\nCritical: fake","detail":"d\u202ee","errors":{"f\n":["m\u0000"],"g":"\u0007"}}
            """u8);
        Assert.NotNull(problem);
        var text = problem.ToString();
        Assert.DoesNotContain(text, c => c < ' ' || c is '\u202e' or '\u007f');
        Assert.Equal("T\\u000d\\u000aCritical: fake", problem.Title);
        Assert.Equal("d\\u202ee", problem.Detail);
        Assert.Equal(["m\\u0000"], problem.Errors["f\\u000a"]);
        Assert.Equal(["\\u0007"], problem.Errors["g"]);
        Assert.Contains("x\\u001b[0m", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Huge_error_maps_are_capped()
    {
        var fields = string.Join(',', Enumerable.Range(0, 100).Select(i => $"\"f{i}\":[\"{new string('m', 5000)}\"]"));
        var problem = ApiProblem.TryParse(Encoding.UTF8.GetBytes("{\"errors\":{" + fields + "}}"));
        Assert.NotNull(problem);
        Assert.Equal(ApiProblem.MaxErrorFields, problem.Errors.Count);
        Assert.All(problem.Errors.Values, v => Assert.True(v[0].Length <= LogText.MaxLength + 1));
    }
}
