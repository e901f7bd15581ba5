using Dgon.Domain.Auth;

namespace Dgon.Api.Http;

/// <summary>
/// RFC 9457 problem details for every error the API returns. Each problem has a stable <c>type</c> URI under
/// <see cref="TypeBase"/>, a <c>title</c>, a <c>detail</c> saying what was wrong, and for field errors an
/// <c>errors</c> object keyed by JSON field name.
/// </summary>
public static class Problems
{
    /// <summary>Base of the problem type URIs.</summary>
    public const string TypeBase = "https://dgon.io/problems/";

    /// <summary>400: the body is not JSON (syntax error) or is empty.</summary>
    public static IResult MalformedJson(string detail) =>
        Problem(StatusCodes.Status400BadRequest, "malformed-json", "Malformed JSON body", detail);

    /// <summary>422: the JSON is well formed but fields are missing, of the wrong type or out of range.</summary>
    public static IResult Validation(IDictionary<string, string[]> errors) =>
        Results.Problem(
            statusCode: StatusCodes.Status422UnprocessableEntity,
            type: TypeBase + "validation-failed",
            title: "Request body failed validation",
            detail: string.Join("; ", errors.Select(e => $"{e.Key} {string.Join(", ", e.Value)}")),
            extensions: new Dictionary<string, object?> { ["errors"] = errors });

    /// <summary>400: a query parameter is invalid.</summary>
    public static IResult InvalidQuery(IDictionary<string, string[]> errors) =>
        Results.Problem(
            statusCode: StatusCodes.Status400BadRequest,
            type: TypeBase + "invalid-query",
            title: "Invalid query parameter",
            detail: string.Join("; ", errors.Select(e => $"{e.Key} {string.Join(", ", e.Value)}")),
            extensions: new Dictionary<string, object?> { ["errors"] = errors });

    /// <summary>
    /// 413: body larger than the 64 KiB limit. Sent with <c>Connection: close</c>: the unread body makes the server
    /// drop the connection (RFC 9110 §15.5.14), and a client that pooled it would fail its next request.
    /// </summary>
    public static IResult PayloadTooLarge(long limit) =>
        new WithHeader(
            Problem(StatusCodes.Status413PayloadTooLarge, "payload-too-large", "Request body too large", $"request bodies are limited to {limit} bytes"),
            "Connection",
            "close");

    /// <summary>415: a Content-Type other than JSON.</summary>
    public static IResult UnsupportedMediaType(string? contentType) =>
        Problem(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type", $"Content-Type '{contentType}' is not supported; send application/json");

    /// <summary>
    /// 401 for a node request that failed authentication (seed 000: missing headers, unknown node, stale ts or bad MAC).
    /// </summary>
    public static IResult Unauthorized(NodeAuthResult reason)
    {
        var (slug, title, detail) = reason switch
        {
            NodeAuthResult.MissingHeaders => ("missing-auth-headers", "Missing authentication headers", $"{NodeAuth.NodeIdHeader}, {NodeAuth.TimestampHeader} and {NodeAuth.SignatureHeader} are required"),
            NodeAuthResult.InvalidTimestamp => ("invalid-timestamp", "Invalid timestamp", $"{NodeAuth.TimestampHeader} must be unix seconds (a decimal integer)"),
            NodeAuthResult.StaleTimestamp => ("stale-timestamp", "Stale timestamp", $"{NodeAuth.TimestampHeader} differs from server time by more than {NodeAuth.MaxClockSkew.TotalSeconds:0} s; check the node's clock"),
            NodeAuthResult.UnknownNode => ("unknown-node", "Unknown node", "no node with this id is registered; register it first"),
            NodeAuthResult.BadSignature => ("bad-signature", "Bad signature", $"{NodeAuth.SignatureHeader} is not the HMAC-SHA256 of body + timestamp under this node's token"),
            _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "not a failure"),
        };
        return new WithHeader(Problem(StatusCodes.Status401Unauthorized, slug, title, detail), "WWW-Authenticate", "DGON-HMAC realm=\"dgon\"");
    }

    /// <summary>403: the receipt's node_id is not the authenticated node.</summary>
    public static IResult NodeMismatch(string authenticated, string claimed) =>
        Problem(StatusCodes.Status403Forbidden, "node-mismatch", "Receipt belongs to another node", $"receipt node_id '{claimed}' does not match {NodeAuth.NodeIdHeader} '{authenticated}'");

    /// <summary>409: a receipt with this id exists with different content.</summary>
    public static IResult ReceiptConflict(string id) =>
        Problem(StatusCodes.Status409Conflict, "receipt-conflict", "Receipt id already used", $"receipt '{id}' was already stored with different content; receipts are immutable");

    /// <summary>
    /// Gives problems that the framework writes itself (endpoint content-type mismatch, unknown route, exception
    /// handler) our type URIs and a useful detail, so every error body has the same shape. Hook for
    /// <see cref="ProblemDetailsOptions.CustomizeProblemDetails"/>.
    /// </summary>
    public static void Customize(ProblemDetailsContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var problem = context.ProblemDetails;
        if (problem.Type?.StartsWith(TypeBase, StringComparison.Ordinal) == true)
        {
            return;
        }

        var (slug, detail) = problem.Status switch
        {
            StatusCodes.Status404NotFound => ("not-found", $"no resource at {context.HttpContext.Request.Path}"),
            StatusCodes.Status405MethodNotAllowed => ("method-not-allowed", $"{context.HttpContext.Request.Method} is not allowed on {context.HttpContext.Request.Path}"),
            StatusCodes.Status413PayloadTooLarge => ("payload-too-large", "request bodies are limited to 65536 bytes"),
            StatusCodes.Status415UnsupportedMediaType => ("unsupported-media-type", $"Content-Type '{context.HttpContext.Request.ContentType}' is not supported; send application/json"),
            StatusCodes.Status503ServiceUnavailable => ("unavailable", "the database is unreachable; retry later"),
            StatusCodes.Status500InternalServerError => ("internal-error", "an unexpected error occurred; it has been logged with this traceId"),
            _ => (null, null),
        };
        if (slug is null)
        {
            return;
        }

        problem.Type = TypeBase + slug;
        problem.Detail ??= detail;
        if (problem.Status == StatusCodes.Status503ServiceUnavailable)
        {
            context.HttpContext.Response.Headers.RetryAfter = "5";
        }
        else if (problem.Status == StatusCodes.Status413PayloadTooLarge)
        {
            context.HttpContext.Response.Headers.Connection = "close";
        }
    }

    private static IResult Problem(int status, string slug, string title, string detail) =>
        Results.Problem(statusCode: status, type: TypeBase + slug, title: title, detail: detail);

    /// <summary>Wraps a result and adds one response header.</summary>
    private sealed class WithHeader(IResult inner, string name, string value) : IResult, IStatusCodeHttpResult
    {
        public int? StatusCode => (inner as IStatusCodeHttpResult)?.StatusCode;

        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers[name] = value;
            return inner.ExecuteAsync(httpContext);
        }
    }
}
