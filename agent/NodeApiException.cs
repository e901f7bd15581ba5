using System.Net;
using System.Text;
using System.Text.Json;

namespace Dgon.Agent;

/// <summary>
/// The parts of an RFC 9457 problem+json body the agent uses: <c>type</c>, <c>title</c>, <c>detail</c> and the
/// validation <c>errors</c> map (<c>{"field": ["message", …]}</c>). Every string is server-provided and so is cleaned
/// by <see cref="LogText.Clean"/> when parsed (control characters escaped, at most 1,000 characters each): a problem
/// can be logged as it is.
/// </summary>
/// <param name="Type">Problem type URI, e.g. <c>https://dgon.io/problems/unknown-node</c>; null if absent.</param>
/// <param name="Title">Short summary, or null.</param>
/// <param name="Detail">Explanation of this occurrence, or null.</param>
/// <param name="Errors">Messages per field (empty when none).</param>
public sealed record ApiProblem(string? Type, string? Title, string? Detail, IReadOnlyDictionary<string, IReadOnlyList<string>> Errors)
{
    /// <summary>Parses a problem body; null when it is not a JSON object.</summary>
    public static ApiProblem? TryParse(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }

        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            var errors = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (root.TryGetProperty("errors", out var e) && e.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in e.EnumerateObject())
                {
                    if (errors.Count >= MaxErrorFields)
                    {
                        break;
                    }

                    errors[LogText.Clean(field.Name)!] = field.Value.ValueKind switch
                    {
                        JsonValueKind.Array => [.. field.Value.EnumerateArray().Take(MaxErrorFields).Select(v => LogText.Clean(v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : v.GetRawText())!)],
                        JsonValueKind.String => [LogText.Clean(field.Value.GetString() ?? "")!],
                        _ => [LogText.Clean(field.Value.GetRawText())!],
                    };
                }
            }

            return new ApiProblem(Text(root, "type"), Text(root, "title"), Text(root, "detail"), errors);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Whether <see cref="Type"/> ends with <c>/{name}</c> (or is exactly <paramref name="name"/>).</summary>
    public bool TypeIs(string name) =>
        Type is { } t && (t.EndsWith("/" + name, StringComparison.Ordinal) || string.Equals(t, name, StringComparison.Ordinal));

    /// <summary>One line: title, [type], detail and <c>field: message</c> pairs.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Title ?? "problem");
        if (!string.IsNullOrEmpty(Type))
        {
            sb.Append(" [").Append(Type).Append(']');
        }

        if (!string.IsNullOrEmpty(Detail))
        {
            sb.Append(": ").Append(Detail);
        }

        if (Errors.Count > 0)
        {
            sb.Append("; errors: ").AppendJoin("; ", Errors.Select(kv => $"{kv.Key}: {string.Join(", ", kv.Value)}"));
        }

        return sb.ToString();
    }

    /// <summary>Most fields, and messages per field, kept from an <c>errors</c> map: 20.</summary>
    public const int MaxErrorFields = 20;

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? LogText.Clean(v.GetString()) : null;
}

/// <summary>What a failed API answer means to the agent.</summary>
public enum ApiFailureKind
{
    /// <summary>Worth retrying with backoff: 5xx, 408 or 429.</summary>
    Transient,

    /// <summary>
    /// 401 whose problem type ends with <c>unknown-node</c>, <c>bad-signature</c> or <c>secret-unavailable</c> (issue 9:
    /// the stored secret cannot be decrypted), or whose body is not problem+json with a type: the API does not accept
    /// this token, so the agent registers again, signed with its node key.
    /// </summary>
    TokenRejected,

    /// <summary>401 <c>stale-timestamp</c>: |now − ts| &gt; 120 s (seed 000); the local clock is off, re-registering would not help.</summary>
    ClockSkew,

    /// <summary>
    /// 401 <c>replayed</c> (issue 9): the timestamp was not later than the node's last accepted signed request. The
    /// token is fine; the next request carries a later timestamp (<see cref="RequestClock"/>).
    /// </summary>
    Replayed,

    /// <summary>
    /// Any other 4xx, e.g. 422 validation, 401 <c>missing-auth-headers</c>, 401 <c>join-token-required</c>, 409
    /// <c>proof-required</c>; also a 3xx (redirects are not followed) and an answer that breaks the protocol in a way
    /// retrying cannot fix (e.g. a body larger than <see cref="NodeApiClient.MaxResponseBytes"/>).
    /// </summary>
    Rejected,
}

/// <summary>A non-2xx (or unreadable) answer of the DGON API.</summary>
public sealed class NodeApiException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="operation">register, heartbeat or receipt.</param>
    /// <param name="status">HTTP status.</param>
    /// <param name="problem">The parsed problem+json body, or null when unparseable.</param>
    /// <param name="retryAfter">Retry-After of a 429/503, or null.</param>
    /// <param name="message">Message override; by default built from the status and problem.</param>
    public NodeApiException(string operation, HttpStatusCode status, ApiProblem? problem, TimeSpan? retryAfter, string? message)
        : this(operation, status, problem, retryAfter, message, null)
    {
    }

    /// <summary>Creates the exception with an explicit <see cref="Kind"/>.</summary>
    /// <param name="operation">register, heartbeat, receipt or rotate-token.</param>
    /// <param name="status">HTTP status.</param>
    /// <param name="problem">The parsed problem+json body, or null when unparseable.</param>
    /// <param name="retryAfter">Retry-After of a 429/503, or null.</param>
    /// <param name="message">Message override; by default built from the status and problem.</param>
    /// <param name="kind">The kind, overriding the one derived from <paramref name="status"/> and <paramref name="problem"/>; null derives it.</param>
    public NodeApiException(string operation, HttpStatusCode status, ApiProblem? problem, TimeSpan? retryAfter, string? message, ApiFailureKind? kind)
        : base(message ?? $"{operation} answered HTTP {(int)status}" + (problem is null ? "" : $" ({problem})"))
    {
        Operation = operation;
        StatusCode = status;
        Problem = problem;
        RetryAfter = retryAfter;
        _kind = kind;
    }

    private readonly ApiFailureKind? _kind;

    /// <summary>Creates an exception with a message only (for serializers and tests).</summary>
    public NodeApiException()
        : this("request", HttpStatusCode.InternalServerError, null, null, null)
    {
    }

    /// <summary>Creates an exception with a message (status 500).</summary>
    public NodeApiException(string message)
        : this("request", HttpStatusCode.InternalServerError, null, null, message)
    {
    }

    /// <summary>Creates an exception with a message and cause (status 500).</summary>
    public NodeApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = "request";
        StatusCode = HttpStatusCode.InternalServerError;
    }

    /// <summary>register, heartbeat, receipt or rotate-token.</summary>
    public string Operation { get; }

    /// <summary>HTTP status of the answer.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem+json body, or null when the body was not a JSON object.</summary>
    public ApiProblem? Problem { get; }

    /// <summary>Retry-After of a 429 or 503 answer.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Whether the problem type ends with <c>/{name}</c> (false without a problem).</summary>
    public bool ProblemIs(string name) => Problem?.TypeIs(name) == true;

    /// <summary>
    /// How the agent should react (see <see cref="ApiFailureKind"/>): the explicit kind if one was given, else 5xx,
    /// 408, 429 and other statuses below 300 are transient, 3xx is rejected, and a 401 is classified by its problem type.
    /// </summary>
    public ApiFailureKind Kind
    {
        get
        {
            if (_kind is { } kind)
            {
                return kind;
            }

            var code = (int)StatusCode;
            if (code is >= 300 and < 400)
            {
                return ApiFailureKind.Rejected;
            }

            if (code >= 500 || StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || code < 400)
            {
                return ApiFailureKind.Transient;
            }

            if (StatusCode != HttpStatusCode.Unauthorized)
            {
                return ApiFailureKind.Rejected;
            }

            if (Problem?.Type is null || Problem.TypeIs("unknown-node") || Problem.TypeIs("bad-signature") || Problem.TypeIs("secret-unavailable"))
            {
                return ApiFailureKind.TokenRejected;
            }

            if (Problem.TypeIs("replayed"))
            {
                return ApiFailureKind.Replayed;
            }

            return Problem.TypeIs("stale-timestamp") ? ApiFailureKind.ClockSkew : ApiFailureKind.Rejected;
        }
    }
}
