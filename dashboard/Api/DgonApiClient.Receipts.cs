using Dgon.Domain.Contracts;
using Microsoft.AspNetCore.WebUtilities;

namespace Dgon.Dashboard.Api;

/// <summary>A page of receipts and the cursor of the next (older) one.</summary>
/// <param name="Receipts">Newest first.</param>
/// <param name="NextCursor">The API's cursor for the next page, or null on the last.</param>
public sealed record ReceiptPage(IReadOnlyList<ReceiptView> Receipts, string? NextCursor);

/// <summary>Filter of the receipts explorer (every member optional).</summary>
/// <param name="Node">Node id.</param>
/// <param name="Model">Model id.</param>
/// <param name="Key">API key id.</param>
public sealed record ReceiptFilter(string? Node, string? Model, string? Key);

public sealed partial class DgonApiClient
{
    /// <summary><c>GET /v1/receipts?node=&amp;model=&amp;key=&amp;limit=&amp;cursor=</c> (issue 13), one page newest first.</summary>
    public async Task<ApiResult<ReceiptPage>> GetReceiptsAsync(ReceiptFilter filter, int limit, string? cursor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var parameters = new Dictionary<string, string?>(StringComparer.Ordinal) { ["limit"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        Add(parameters, "node", filter.Node);
        Add(parameters, "model", filter.Model);
        Add(parameters, "key", filter.Key);
        Add(parameters, "cursor", cursor);
        var (result, next) = await GetAsync(new Uri(QueryHelpers.AddQueryString("v1/receipts", parameters), UriKind.Relative), ReceiptJsonContext.Default.ListReceiptView, cancellationToken);
        if (!result.Succeeded)
        {
            return ApiResult<ReceiptPage>.Failed(result.Failure);
        }

        var nextCursor = next is not null && QueryHelpers.ParseQuery(next.Query).TryGetValue("cursor", out var values) ? values.ToString() : null;
        return ApiResult<ReceiptPage>.Success(new ReceiptPage(result.Value, nextCursor));
    }

    /// <summary><c>GET /v1/usage?by=key|node</c>: requests and tokens from receipts (the API limits non-admins to their own keys and nodes).</summary>
    public async Task<ApiResult<List<UsageView>>> GetUsageAsync(bool byNode, CancellationToken cancellationToken) =>
        (await GetAsync(new Uri(byNode ? "v1/usage?by=node" : "v1/usage?by=key", UriKind.Relative), ReceiptJsonContext.Default.ListUsageView, cancellationToken)).Result;

    /// <summary><c>GET /v1/inference/nodes</c>: nodes linked for inference with their manifests (models, hardware, capacity).</summary>
    public async Task<ApiResult<List<InferenceNodeView>>> GetInferenceNodesAsync(CancellationToken cancellationToken) =>
        (await GetAsync(new Uri("v1/inference/nodes", UriKind.Relative), InferenceJsonContext.Default.ListInferenceNodeView, cancellationToken)).Result;

    private static void Add(Dictionary<string, string?> parameters, string name, string? value)
    {
        if (!string.IsNullOrWhiteSpace(value))
        {
            parameters[name] = value.Trim();
        }
    }
}
