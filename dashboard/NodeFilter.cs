using System.Text.RegularExpressions;
using Dgon.Domain.Nodes;

namespace Dgon.Dashboard;

/// <summary>
/// Filter of the Nodes page, taken from its query string (<c>?status=&amp;region=&amp;prefix=</c>) and forwarded to
/// <c>GET /v1/nodes</c> under the same names.
/// </summary>
/// <param name="Status">A status wire name (<c>pending|active|offline|quarantine</c>), or null for all.</param>
/// <param name="Region">A region, or null for all.</param>
/// <param name="Prefix">
/// A node-id prefix (1–63 of <c>a-z 0-9 -</c>, the characters of an RFC 1123 label, as the API validates
/// <c>?prefix=</c>), or null for all.
/// </param>
public sealed partial record NodeFilter(string? Status, string? Region, string? Prefix)
{
    /// <summary>Longest prefix: a node id is an RFC 1123 label of at most 63 characters.</summary>
    public const int MaxPrefixLength = 63;

    /// <summary>No filter: every node.</summary>
    public static NodeFilter None { get; } = new(null, null, null);

    /// <summary>
    /// What the user typed as a prefix when it cannot be part of a node id (e.g. <c>gpu_1</c>); then
    /// <see cref="Prefix"/> is null and the page asks the API nothing, it says why instead.
    /// </summary>
    public string? InvalidPrefix { get; init; }

    /// <summary>Whether any filter is set (an invalid prefix counts: the user asked for something).</summary>
    public bool IsFiltered => Status is not null || Region is not null || Prefix is not null || InvalidPrefix is not null;

    /// <summary>
    /// Builds a filter from raw query values: an unknown status and a blank region or prefix are ignored; a prefix is
    /// trimmed and lowercased (ids are lowercase), and kept in <see cref="InvalidPrefix"/> if it is still not
    /// 1–63 characters of <c>a-z 0-9 -</c>.
    /// </summary>
    public static NodeFilter Create(string? status, string? region, string? prefix = null)
    {
        var filter = new NodeFilter(
            NodePhases.TryParse(status, out var phase) ? phase.ToWire() : null,
            string.IsNullOrWhiteSpace(region) ? null : region.Trim(),
            null);
        if (string.IsNullOrWhiteSpace(prefix))
        {
            return filter;
        }

        var normalized = prefix.Trim().ToLowerInvariant();
        return IsValidPrefix(normalized) ? filter with { Prefix = normalized } : filter with { InvalidPrefix = prefix.Trim() };
    }

    /// <summary>Whether <paramref name="prefix"/> can start a node id: 1–63 characters of <c>a-z 0-9 -</c>.</summary>
    public static bool IsValidPrefix(string? prefix) => prefix is { Length: > 0 and <= MaxPrefixLength } && PrefixPattern().IsMatch(prefix);

    /// <summary>This filter with another status (null for all), keeping the region and the prefix.</summary>
    public NodeFilter WithStatus(string? status) => this with { Status = status };

    /// <summary>Adds this filter's query parameters (<c>status</c>, <c>region</c>, <c>prefix</c>; unset ones omitted) to <paramref name="query"/>.</summary>
    public void AddTo(IDictionary<string, string?> query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (Status is not null)
        {
            query["status"] = Status;
        }

        if (Region is not null)
        {
            query["region"] = Region;
        }

        if ((Prefix ?? InvalidPrefix) is { } prefix)
        {
            query["prefix"] = prefix;
        }
    }

    /// <summary>Appends this filter as a query string to <paramref name="path"/>, e.g. <c>nodes?status=active</c> (first page).</summary>
    public string AppendTo(string path) => new NodesQuery(this, NodePagePosition.First).AppendTo(path);

    [GeneratedRegex("^[a-z0-9-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex PrefixPattern();
}
