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

    /// <summary>415: a Content-Type other than JSON, or none (issue 9: a body without one needs no CORS preflight).</summary>
    public static IResult UnsupportedMediaType(string? contentType) =>
        Problem(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
            string.IsNullOrEmpty(contentType)
                ? "Content-Type is missing; send Content-Type: application/json"
                : $"Content-Type '{contentType}' is not supported; send application/json");

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
            NodeAuthResult.BadSignature => ("bad-signature", "Bad signature", $"{NodeAuth.SignatureHeader} is not a valid HMAC-SHA256 (v1: body + timestamp; v2: the canonical request) under this node's token"),
            NodeAuthResult.Replayed => ("replayed", "Replayed request", $"{NodeAuth.TimestampHeader} is not later than this node's last accepted signed request; every heartbeat needs a new, later timestamp"),
            NodeAuthResult.SecretUnreadable => ("secret-unavailable", "Node secret unavailable", "the server cannot read this node's secret (its encryption key was retired); re-register with a proof of the node key"),
            _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "not a failure"),
        };
        return new WithHeader(Problem(StatusCodes.Status401Unauthorized, slug, title, detail), "WWW-Authenticate", "DGON-HMAC realm=\"dgon\"");
    }

    /// <summary>401: a read or account endpoint without a valid credential (RFC 6750 §3: no token, or one that is wrong, expired or revoked).</summary>
    public static IResult CredentialRequired(bool presented) =>
        new WithHeader(
            Problem(StatusCodes.Status401Unauthorized, presented ? "invalid-credential" : "credential-required",
                presented ? "Invalid credential" : "Credential required",
                presented
                    ? "the bearer credential is not valid: unknown, expired or revoked"
                    : "send Authorization: Bearer <session token, API key or admin token>; sign in with POST /v1/auth/sessions"),
            "WWW-Authenticate",
            presented ? "Bearer realm=\"dgon\", error=\"invalid_token\"" : "Bearer realm=\"dgon\"");

    /// <summary>401: a login with an unknown e-mail or a wrong password (the same answer for both, so e-mails cannot be probed).</summary>
    public static IResult InvalidCredentials() =>
        Problem(StatusCodes.Status401Unauthorized, "invalid-credentials", "Invalid credentials", "the e-mail or the password is wrong");

    /// <summary>401: an ID token that does not validate against the configured identity provider, naming why.</summary>
    public static IResult OidcTokenRefused(string why) =>
        Problem(StatusCodes.Status401Unauthorized, "id-token-refused", "ID token refused", why);

    /// <summary>403 with <c>Retry-After</c>: the account is locked after repeated failed logins (ASP.NET Core Identity lockout).</summary>
    public static IResult AccountLocked(TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        return new WithHeader(
            Problem(StatusCodes.Status403Forbidden, "account-locked", "Account locked", $"too many failed logins: the account is locked for {seconds} s more (or until an admin unlocks it)"),
            "Retry-After",
            seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>403: requests from this address are banned (until the ban expires or an admin lifts it).</summary>
    public static IResult AddressBanned(DateTimeOffset? until) =>
        Problem(StatusCodes.Status403Forbidden, "address-banned", "Address banned",
            until is { } t ? $"requests from this address are refused until {t.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}" : "requests from this address are refused until an admin lifts the ban");

    /// <summary>409: a resource with this identity exists already.</summary>
    public static IResult Conflict(string slug, string title, string detail) =>
        Problem(StatusCodes.Status409Conflict, slug, title, detail);

    /// <summary>403: authenticated, but not allowed.</summary>
    public static IResult Forbidden(string detail) =>
        Problem(StatusCodes.Status403Forbidden, "forbidden", "Forbidden", detail);

    /// <summary>401: registering a new node without a join token.</summary>
    public static IResult JoinTokenRequired() =>
        new WithHeader(
            Problem(StatusCodes.Status401Unauthorized, "join-token-required", "Join token required", "registering a new node needs Authorization: Bearer <join token> (ask an admin for one; the agent reads DGON_JOIN_TOKEN)"),
            "WWW-Authenticate",
            "Bearer realm=\"dgon-join\"");

    /// <summary>401 (403 for the region constraint): a join token that does not enroll this registration, naming why.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="check"/> is <see cref="JoinTokenCheck.Ok"/>.</exception>
    public static IResult JoinTokenRefused(JoinTokenCheck check, string? region = null)
    {
        var (status, slug, title, detail) = check switch
        {
            JoinTokenCheck.Malformed or JoinTokenCheck.Unknown => (401, "join-token-invalid", "Invalid join token", "the join token is not known (or not of the form xxxxxx.xxxxxxxxxxxxxxxx)"),
            JoinTokenCheck.Expired => (401, "join-token-expired", "Join token expired", "the join token has expired; ask an admin for a new one"),
            JoinTokenCheck.UsedUp => (401, "join-token-used-up", "Join token used up", "the join token has enrolled as many nodes as it may; ask an admin for a new one"),
            JoinTokenCheck.Revoked => (401, "join-token-revoked", "Join token revoked", "the join token was revoked by an admin"),
            JoinTokenCheck.RegionNotAllowed => (403, "join-token-region", "Region not allowed", $"this join token does not enroll nodes in region '{region}'"),
            _ => throw new ArgumentOutOfRangeException(nameof(check), check, "not a refusal"),
        };
        var problem = Problem(status, slug, title, detail);
        return status == 401 ? new WithHeader(problem, "WWW-Authenticate", "Bearer realm=\"dgon-join\", error=\"invalid_token\"") : problem;
    }

    /// <summary>409: re-registering an existing node without a valid proof of its key (nothing changed).</summary>
    public static IResult ProofRequired(string nodeId, string why) =>
        Problem(StatusCodes.Status409Conflict, "proof-required", "Node already enrolled",
            $"node '{nodeId}' is already enrolled with a key: {why}. Re-registration needs {NodeKeyProof.ProofHeader} signed with the node's key, or an admin (reset the node to enroll it anew)");

    /// <summary>409: the registration carries another public key than the node's enrolled one.</summary>
    public static IResult KeyMismatch(string nodeId) =>
        Problem(StatusCodes.Status409Conflict, "key-mismatch", "Public key differs",
            $"public_key differs from the key node '{nodeId}' is enrolled with; an admin must reset the node to change it");

    /// <summary>401: a key-signed request whose proof is missing or does not verify.</summary>
    public static IResult BadProof(string detail) =>
        new WithHeader(Problem(StatusCodes.Status401Unauthorized, "bad-proof", "Bad key proof", detail), "WWW-Authenticate", "DGON-KEY realm=\"dgon\"");

    /// <summary>404 for an admin operation on a resource that does not exist.</summary>
    public static IResult NotFound(string detail) =>
        Problem(StatusCodes.Status404NotFound, "not-found", "Not found", detail);

    /// <summary>429 with <c>Retry-After</c> in whole seconds (RFC 9110 §10.2.3), at least 1.</summary>
    public static IResult RateLimited(TimeSpan retryAfter, string what) =>
        new WithHeader(
            Problem(StatusCodes.Status429TooManyRequests, "rate-limited", "Too many requests", $"{what}; retry after {Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))} s"),
            "Retry-After",
            Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture));

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
            StatusCodes.Status401Unauthorized => ("unauthorized", "authentication is required"),
            StatusCodes.Status403Forbidden => ("forbidden", "this credential may not perform this request"),
            StatusCodes.Status429TooManyRequests => ("rate-limited", "too many requests; retry later"),
            StatusCodes.Status400BadRequest => ("bad-request", "the request is malformed"),
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

    /// <summary>
    /// Attacker-controlled text made safe for a log line or a problem detail: at most 64 characters, control
    /// characters replaced by '?'.
    /// </summary>
    public static string Clip(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new string(value.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }

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
