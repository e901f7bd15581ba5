using Dgon.Domain.Nodes;
using Microsoft.AspNetCore.WebUtilities;

namespace Dgon.Dashboard;

/// <summary>Filter of the Nodes page, taken from its query string (<c>?status=&amp;region=</c>).</summary>
/// <param name="Status">A status wire name (<c>pending|active|offline|quarantine</c>), or null for all.</param>
/// <param name="Region">A region, or null for all.</param>
public sealed record NodeFilter(string? Status, string? Region)
{
    /// <summary>No filter: every node.</summary>
    public static NodeFilter None { get; } = new(null, null);

    /// <summary>Builds a filter from raw query values: an unknown status and a blank region are ignored.</summary>
    public static NodeFilter Create(string? status, string? region) => new(
        NodePhases.TryParse(status, out var phase) ? phase.ToWire() : null,
        string.IsNullOrWhiteSpace(region) ? null : region.Trim());

    /// <summary>This filter with another status (null for all), keeping the region.</summary>
    public NodeFilter WithStatus(string? status) => this with { Status = status };

    /// <summary>Appends this filter as a query string to <paramref name="path"/>, e.g. <c>nodes?status=active</c>.</summary>
    public string AppendTo(string path)
    {
        var query = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (Status is not null)
        {
            query["status"] = Status;
        }

        if (Region is not null)
        {
            query["region"] = Region;
        }

        return QueryHelpers.AddQueryString(path, query);
    }
}
