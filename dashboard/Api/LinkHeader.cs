using System.Text.RegularExpressions;

namespace Dgon.Dashboard.Api;

/// <summary>Reads RFC 8288 <c>Link</c> headers, e.g. <c>&lt;/v1/nodes?cursor=abc&gt;; rel="next"</c>.</summary>
public static partial class LinkHeader
{
    /// <summary>The target of the first link whose <c>rel</c> includes <c>next</c>, as written (relative or absolute); null if none.</summary>
    public static string? FindNext(IEnumerable<string> headerValues)
    {
        ArgumentNullException.ThrowIfNull(headerValues);
        foreach (var value in headerValues)
        {
            foreach (Match link in LinkPattern().Matches(value))
            {
                var rel = RelPattern().Match(link.Groups["params"].Value);
                if (rel.Success && rel.Groups["rel"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                        .Contains("next", StringComparer.OrdinalIgnoreCase))
                {
                    return link.Groups["target"].Value.Trim();
                }
            }
        }

        return null;
    }

    [GeneratedRegex("<(?<target>[^>]*)>(?<params>[^<]*)", RegexOptions.CultureInvariant)]
    private static partial Regex LinkPattern();

    [GeneratedRegex("""(?:^|;)\s*rel\s*=\s*(?:"(?<rel>[^"]*)"|(?<rel>[^\s;,]+))""", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex RelPattern();
}
