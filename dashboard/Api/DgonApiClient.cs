using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Dgon.Domain.Contracts;
using Microsoft.AspNetCore.WebUtilities;

namespace Dgon.Dashboard.Api;

/// <summary>
/// Typed HTTP client of the DGON API (registered with <c>AddHttpClient</c>). Every method returns an
/// <see cref="ApiResult{T}"/>: API trouble (refused, timeout, 5xx, bad JSON) becomes a failure, never an exception.
/// </summary>
public sealed partial class DgonApiClient
{
    /// <summary>Time allowed for one API request.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(3);

    private readonly HttpClient _http;
    private readonly ILogger<DgonApiClient> _logger;

    /// <summary>Creates the client; <paramref name="http"/> must have its <see cref="HttpClient.BaseAddress"/> set.</summary>
    public DgonApiClient(HttpClient http, ILogger<DgonApiClient> logger)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(logger);
        if (http.BaseAddress is null)
        {
            throw new ArgumentException("the HttpClient needs a BaseAddress", nameof(http));
        }

        _http = http;
        _logger = logger;
    }

    /// <summary><c>GET /v1/summary</c>: active and total node counts, and a count per status.</summary>
    public async Task<ApiResult<SummaryResponse>> GetSummaryAsync(CancellationToken cancellationToken)
    {
        var (result, _) = await GetAsync(new Uri("v1/summary", UriKind.Relative), DgonJsonContext.Default.SummaryResponse, cancellationToken);
        return result;
    }

    /// <summary>
    /// One page of <c>GET /v1/nodes?status=&amp;region=&amp;prefix=&amp;limit=&amp;cursor=</c> (nodes in id order): one
    /// request, never the whole fleet. The next page's cursor is the <c>cursor</c> query parameter of the
    /// <c>Link: &lt;…&gt;; rel="next"</c> target (RFC 8288); the dashboard builds its own next request from it, so the
    /// filter it sends does not depend on what the API copies into the link.
    /// </summary>
    /// <param name="query">Filter and position; <see cref="NodeFilter.InvalidPrefix"/> is never sent (callers check it first).</param>
    /// <param name="limit">Page size, 1–1000 (the API's bounds).</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is outside 1–1000.</exception>
    public async Task<ApiResult<NodePage>> GetNodePageAsync(NodesQuery query, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 1000);
        var parameters = new Dictionary<string, string?>(StringComparer.Ordinal);
        (query.Filter with { InvalidPrefix = null }).AddTo(parameters);
        parameters["limit"] = limit.ToString(CultureInfo.InvariantCulture);
        if (query.Position.Cursor is { } cursor)
        {
            parameters["cursor"] = cursor;
        }

        var uri = new Uri(QueryHelpers.AddQueryString("v1/nodes", parameters), UriKind.Relative);
        var (result, next) = await GetAsync(uri, DgonJsonContext.Default.ListNodeView, cancellationToken);
        if (!result.Succeeded)
        {
            return ApiResult<NodePage>.Failed(result.Failure);
        }

        string? nextCursor = null;
        if (next is not null)
        {
            nextCursor = QueryHelpers.ParseQuery(next.Query).TryGetValue("cursor", out var values) ? values.ToString() : null;
            if (string.IsNullOrEmpty(nextCursor))
            {
                var failure = new ApiFailure(ApiFailureKind.BadResponse, "the next-page link has no cursor");
                LogBadResponse(_logger, next, failure.Detail);
                return ApiResult<NodePage>.Failed(failure);
            }
        }

        return ApiResult<NodePage>.Success(new NodePage(result.Value, nextCursor));
    }

    private Task<(ApiResult<T> Result, Uri? Next)> GetAsync<T>(Uri uri, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        where T : class =>
        SendAsync(HttpMethod.Get, uri, null, typeInfo, cancellationToken);

    /// <summary>
    /// Sends one request and reads its JSON answer (or none, for <see cref="ApiDone"/>). A 401 is
    /// <see cref="ApiFailureKind.Unauthorized"/>, a 403 <see cref="ApiFailureKind.Forbidden"/>, other 4xx
    /// <see cref="ApiFailureKind.BadResponse"/> with the problem body, 5xx and transport trouble
    /// <see cref="ApiFailureKind.Unreachable"/>.
    /// </summary>
    private async Task<(ApiResult<T> Result, Uri? Next)> SendAsync<T>(HttpMethod method, Uri uri, JsonNode? body, JsonTypeInfo<T>? typeInfo, CancellationToken cancellationToken, Action<HttpRequestMessage>? configure = null)
        where T : class
    {
        ApiFailure failure;
        try
        {
            using var request = new HttpRequestMessage(method, uri);
            if (body is not null)
            {
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            }

            configure?.Invoke(request);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                if (typeInfo is null)
                {
                    return (ApiResult<T>.Success((T)(object)ApiDone.Instance), null);
                }

                var value = await response.Content.ReadFromJsonAsync(typeInfo, cancellationToken);
                if (value is not null)
                {
                    return (ApiResult<T>.Success(value), NextLink(response, uri));
                }

                failure = new ApiFailure(ApiFailureKind.BadResponse, "empty JSON body (null)") { Status = code };
            }
            else
            {
                var kind = code switch
                {
                    >= 500 => ApiFailureKind.Unreachable,
                    401 => ApiFailureKind.Unauthorized,
                    403 => ApiFailureKind.Forbidden,
                    _ => ApiFailureKind.BadResponse,
                };
                failure = new ApiFailure(kind, $"HTTP {code} {response.ReasonPhrase}".TrimEnd()) { Status = code, Problem = await ReadProblemAsync(response, cancellationToken) };
            }
        }
        catch (HttpRequestException ex)
        {
            failure = new ApiFailure(ApiFailureKind.Unreachable, ex.Message);
        }
        catch (IOException ex)
        {
            failure = new ApiFailure(ApiFailureKind.Unreachable, ex.Message);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            failure = new ApiFailure(ApiFailureKind.Unreachable, $"no answer within {_http.Timeout.TotalSeconds:0.#} s");
        }
        catch (JsonException ex)
        {
            failure = new ApiFailure(ApiFailureKind.BadResponse, "malformed JSON: " + ex.Message);
        }

        var absolute = uri.IsAbsoluteUri ? uri : new Uri(_http.BaseAddress!, uri);
        if (failure.Kind == ApiFailureKind.Unreachable)
        {
            LogUnreachable(_logger, absolute, failure.Detail);
        }
        else
        {
            LogBadResponse(_logger, absolute, failure.Detail);
        }

        return (ApiResult<T>.Failed(failure), null);
    }

    private static async Task<ProblemBody?> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var type = response.Content.Headers.ContentType?.MediaType;
        if (type is null || !type.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            return await response.Content.ReadFromJsonAsync(DashboardJsonContext.Default.ProblemBody, cancellationToken);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The absolute next-page address: a relative link target is resolved against the request's address (RFC 8288).</summary>
    private Uri? NextLink(HttpResponseMessage response, Uri requested) =>
        response.Headers.TryGetValues("Link", out var values)
        && LinkHeader.FindNext(values) is { Length: > 0 } target
        && Uri.TryCreate(response.RequestMessage?.RequestUri ?? new Uri(_http.BaseAddress!, requested), target, out var next)
            ? next
            : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "DGON API unreachable at {Uri}: {Detail}")]
    private static partial void LogUnreachable(ILogger logger, Uri uri, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DGON API gave an unexpected answer for {Uri}: {Detail}")]
    private static partial void LogBadResponse(ILogger logger, Uri uri, string detail);
}
