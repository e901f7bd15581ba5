using System.Diagnostics.CodeAnalysis;
using Dgon.Domain.Contracts;

namespace Dgon.Dashboard.Api;

/// <summary>Why a call to the DGON API gave no data.</summary>
public enum ApiFailureKind
{
    /// <summary>No usable answer: connection refused, timeout, or a 5xx status. Worth retrying.</summary>
    Unreachable,

    /// <summary>The API answered, but not with what the dashboard expects (4xx status, malformed JSON, bad paging link).</summary>
    BadResponse,

    /// <summary>
    /// HTTP 401: no credential where one is needed, or the session token was wrong, expired or revoked (issue 12).
    /// The dashboard signs the user out and sends them to <c>/login</c>.
    /// </summary>
    Unauthorized,

    /// <summary>HTTP 403: the credential is valid but lacks the role or scope (or the address is banned).</summary>
    Forbidden,
}

/// <summary>A failed call to the DGON API.</summary>
/// <param name="Kind">Category of the failure.</param>
/// <param name="Detail">Short technical detail for operators, e.g. <c>Connection refused (127.0.0.1:8001)</c> or <c>HTTP 503</c>.</param>
public sealed record ApiFailure(ApiFailureKind Kind, string Detail)
{
    /// <summary>HTTP status of the answer, or null when there was none.</summary>
    public int? Status { get; init; }

    /// <summary>The RFC 9457 problem body of the answer, when it had one.</summary>
    public ProblemBody? Problem { get; init; }

    /// <summary>What to tell the person who submitted a form: the problem's detail (and validation errors) or title, else <see cref="Detail"/>.</summary>
    public string Message
    {
        get
        {
            if (Problem is null)
            {
                return Detail;
            }

            var text = Problem.Detail ?? Problem.Title ?? Detail;
            if (Problem.Errors is { Count: > 0 } errors)
            {
                text += " (" + string.Join("; ", errors.SelectMany(e => e.Value.Select(m => e.Key + ": " + m))) + ")";
            }

            return text;
        }
    }
}

/// <summary>Either the value read from the DGON API or the reason there is none. API trouble never throws.</summary>
/// <typeparam name="T">Type of the value.</typeparam>
public sealed record ApiResult<T>
    where T : class
{
    private ApiResult(T? value, ApiFailure? failure)
    {
        Value = value;
        Failure = failure;
    }

    /// <summary>The value, when the call succeeded.</summary>
    public T? Value { get; }

    /// <summary>The failure, when the call did not succeed.</summary>
    public ApiFailure? Failure { get; }

    /// <summary>Whether the call succeeded.</summary>
    [MemberNotNullWhen(true, nameof(Value))]
    [MemberNotNullWhen(false, nameof(Failure))]
    public bool Succeeded => Failure is null;

    /// <summary>A successful result.</summary>
    public static ApiResult<T> Success(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new ApiResult<T>(value, null);
    }

    /// <summary>A failed result.</summary>
    public static ApiResult<T> Failed(ApiFailure failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        return new ApiResult<T>(null, failure);
    }
}

/// <summary>One page of <c>GET /v1/nodes</c>.</summary>
/// <param name="Nodes">The nodes of this page, in API (id) order; at most the requested limit.</param>
/// <param name="NextCursor">The API's opaque cursor of the next page, or null when this is the last one.</param>
public sealed record NodePage(IReadOnlyList<NodeView> Nodes, string? NextCursor);
