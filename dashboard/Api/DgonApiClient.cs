using System.Text.Json;
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

    /// <summary>Most pages of <c>GET /v1/nodes</c> read for one refresh.</summary>
    public const int MaxPages = 100;

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
    /// <c>GET /v1/nodes</c>, following <c>Link: &lt;…&gt;; rel="next"</c> headers to read every page
    /// (at most <see cref="MaxPages"/>).
    /// </summary>
    /// <param name="status">Only nodes in this status (wire name), or null for all.</param>
    /// <param name="region">Only nodes in this region, or null for all.</param>
    /// <param name="cancellationToken">Cancels the whole read.</param>
    public async Task<ApiResult<NodeList>> GetNodesAsync(string? status, string? region, CancellationToken cancellationToken)
    {
        var query = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (!string.IsNullOrEmpty(status))
        {
            query["status"] = status;
        }

        if (!string.IsNullOrEmpty(region))
        {
            query["region"] = region;
        }

        var nodes = new List<NodeView>();
        var visited = new HashSet<Uri>();
        Uri? next = new(QueryHelpers.AddQueryString("v1/nodes", query), UriKind.Relative);
        for (var page = 0; next is not null; page++)
        {
            if (page == MaxPages)
            {
                return ApiResult<NodeList>.Success(new NodeList(nodes, Truncated: true));
            }

            var (result, nextTarget) = await GetAsync(next, DgonJsonContext.Default.ListNodeView, cancellationToken);
            if (!result.Succeeded)
            {
                return ApiResult<NodeList>.Failed(result.Failure);
            }

            nodes.AddRange(result.Value);
            visited.Add(next.IsAbsoluteUri ? next : new Uri(_http.BaseAddress!, next));
            next = nextTarget;
            if (next is not null && CheckNextLink(next, visited) is { } failure)
            {
                LogBadResponse(_logger, next, failure.Detail);
                return ApiResult<NodeList>.Failed(failure);
            }
        }

        return ApiResult<NodeList>.Success(new NodeList(nodes, Truncated: false));
    }

    private ApiFailure? CheckNextLink(Uri next, HashSet<Uri> visited)
    {
        if (Uri.Compare(next, _http.BaseAddress, UriComponents.SchemeAndServer, UriFormat.UriEscaped, StringComparison.OrdinalIgnoreCase) != 0)
        {
            return new ApiFailure(ApiFailureKind.BadResponse, "the next-page link points outside the API");
        }

        return visited.Contains(next)
            ? new ApiFailure(ApiFailureKind.BadResponse, "the next-page link repeats a page already read")
            : null;
    }

    private async Task<(ApiResult<T> Result, Uri? Next)> GetAsync<T>(Uri uri, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        where T : class
    {
        ApiFailure failure;
        try
        {
            using var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                var value = await response.Content.ReadFromJsonAsync(typeInfo, cancellationToken);
                if (value is not null)
                {
                    return (ApiResult<T>.Success(value), NextLink(response, uri));
                }

                failure = new ApiFailure(ApiFailureKind.BadResponse, "empty JSON body (null)");
            }
            else
            {
                failure = new ApiFailure(code >= 500 ? ApiFailureKind.Unreachable : ApiFailureKind.BadResponse, $"HTTP {code} {response.ReasonPhrase}".TrimEnd());
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
