using System.Net;
using System.Text;
using System.Text.Json;

namespace Dgon.Agent;

/// <summary>
/// The parts of an RFC 9457 problem+json body the agent uses: <c>type</c>, <c>title</c>, <c>detail</c> and the
/// validation <c>errors</c> map (<c>{"field": ["message", …]}</c>).
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
                    errors[field.Name] = field.Value.ValueKind switch
                    {
                        JsonValueKind.Array => [.. field.Value.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : v.GetRawText())],
                        JsonValueKind.String => [field.Value.GetString() ?? ""],
                        _ => [field.Value.GetRawText()],
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

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>What a failed API answer means to the agent.</summary>
public enum ApiFailureKind
{
    /// <summary>Worth retrying with backoff: 5xx, 408 or 429.</summary>
    Transient,

    /// <summary>
    /// 401 whose problem type ends with <c>unknown-node</c> or <c>bad-signature</c>, or whose body is not problem+json
    /// with a type:
    /// the API does not accept this token, so the agent registers again.
    /// </summary>
    TokenRejected,

    /// <summary>401 <c>stale-timestamp</c>: |now − ts| &gt; 120 s (seed 000); the local clock is off, re-registering would not help.</summary>
    ClockSkew,

    /// <summary>Any other 4xx, e.g. 422 validation or 401 <c>missing-auth-headers</c>.</summary>
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
        : base(message ?? $"{operation} answered HTTP {(int)status}" + (problem is null ? "" : $" ({problem})"))
    {
        Operation = operation;
        StatusCode = status;
        Problem = problem;
        RetryAfter = retryAfter;
    }

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

    /// <summary>register, heartbeat or receipt.</summary>
    public string Operation { get; }

    /// <summary>HTTP status of the answer.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem+json body, or null when the body was not a JSON object.</summary>
    public ApiProblem? Problem { get; }

    /// <summary>Retry-After of a 429 or 503 answer.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>How the agent should react (see <see cref="ApiFailureKind"/>).</summary>
    public ApiFailureKind Kind
    {
        get
        {
            var code = (int)StatusCode;
            if (code >= 500 || StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || code < 400)
            {
                return ApiFailureKind.Transient;
            }

            if (StatusCode != HttpStatusCode.Unauthorized)
            {
                return ApiFailureKind.Rejected;
            }

            if (Problem?.Type is null || Problem.TypeIs("unknown-node") || Problem.TypeIs("bad-signature"))
            {
                return ApiFailureKind.TokenRejected;
            }

            return Problem.TypeIs("stale-timestamp") ? ApiFailureKind.ClockSkew : ApiFailureKind.Rejected;
        }
    }
}
