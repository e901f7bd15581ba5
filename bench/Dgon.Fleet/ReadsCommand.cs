using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace Dgon.Fleet;

/// <summary>
/// <c>reads</c>: times the read endpoints one request at a time on one keep-alive connection: <c>GET /v1/summary</c>,
/// <c>GET /v1/nodes?limit=1000</c> (the first page, and a page from the middle reached by following the Link header's
/// <c>rel="next"</c> cursor), and <c>GET /metrics</c> (time and bytes). Each is requested once untimed (warm-up),
/// then repeated; prints p50/p99/max and the response size.
/// </summary>
internal static partial class ReadsCommand
{
    public sealed record Options(Uri Api, string? AdminToken, int Repeat, int MetricsRepeat);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        using var client = HeartbeatSender.CreateClient(1);
        if (o.AdminToken is { } admin)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        }

        Console.WriteLine($"reads: {o.Api} (one connection, sequential)");
        Console.WriteLine("| request | n | p50 ms | p99 ms | max ms | bytes | status |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
        await TimeAsync(client, new Uri(o.Api, "/v1/summary"), "GET /v1/summary", o.Repeat, ct);
        await TimeAsync(client, new Uri(o.Api, "/v1/nodes?limit=1000"), "GET /v1/nodes?limit=1000 (first page)", o.Repeat, ct);

        // Walk the pages once to find the middle one's URL.
        var pages = new List<Uri>();
        Uri? next = new(o.Api, "/v1/nodes?limit=1000");
        var walk = Stopwatch.StartNew();
        while (next is not null && pages.Count < 10_000)
        {
            pages.Add(next);
            using var response = await client.GetAsync(next, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            next = NextLink(response) is { } link ? new Uri(o.Api, link) : null;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"(walked {pages.Count} pages of 1000 by the Link cursor in {walk.Elapsed.TotalMilliseconds:F0} ms)"));
        await TimeAsync(client, pages[pages.Count / 2], $"GET /v1/nodes?limit=1000 (page {(pages.Count / 2) + 1} of {pages.Count}, cursor)", o.Repeat, ct);
        await TimeAsync(client, new Uri(o.Api, "/metrics"), "GET /metrics", o.MetricsRepeat, ct);
        return 0;
    }

    private static async Task TimeAsync(HttpClient client, Uri uri, string title, int repeat, CancellationToken ct)
    {
        var stats = new RunStats();
        long bytes = 0;
        for (var i = 0; i <= repeat; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync(uri, HttpCompletionOption.ResponseContentRead, ct);
            var body = await response.Content.ReadAsByteArrayAsync(ct);
            var micros = (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            bytes = body.Length;
            if (i > 0)
            {
                stats.Record((int)response.StatusCode, micros);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {title} | {repeat} | {stats.Percentile(50):F2} | {stats.Percentile(99):F2} | {stats.MaxMs():F2} | {bytes} | {stats.StatusText()} |"));
    }

    private static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var values))
        {
            return null;
        }

        foreach (var value in values)
        {
            var m = NextLinkPattern().Match(value);
            if (m.Success)
            {
                return m.Groups[1].Value;
            }
        }

        return null;
    }

    [GeneratedRegex("<([^>]+)>\\s*;\\s*rel=\"next\"", RegexOptions.CultureInvariant)]
    private static partial Regex NextLinkPattern();
}
