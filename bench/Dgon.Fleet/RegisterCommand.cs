using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Dgon.Fleet;

/// <summary>
/// <c>register</c>: registers nodes <c>{prefix}-000001</c> … (RFC 1123 labels, region <c>eu-west</c>, runtime
/// <c>ollama</c>) with the admin token, C at a time, and writes <c>id TAB token</c> lines to the output file (only
/// nodes that answered 200). Prints registrations/s, p50/p99 and responses by status.
/// </summary>
internal static class RegisterCommand
{
    public sealed record Options(Uri Api, string AdminToken, int Nodes, int Concurrency, string OutFile, string Prefix, string Region, string Runtime);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        using var client = HeartbeatSender.CreateClient(o.Concurrency);
        var auth = new AuthenticationHeaderValue("Bearer", o.AdminToken);
        var uri = new Uri(o.Api, "/v1/nodes/register");
        var stats = new RunStats();
        var tokens = new string?[o.Nodes];
        var clock = Stopwatch.StartNew();
        long done = 0;
        using var progress = new Timer(_ => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  … {Interlocked.Read(ref done)} registered after {clock.Elapsed.TotalSeconds:F0} s")), null, TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(15));
        await Parallel.ForEachAsync(Enumerable.Range(0, o.Nodes), new ParallelOptions { MaxDegreeOfParallelism = o.Concurrency, CancellationToken = ct }, async (i, token) =>
        {
            var id = NodeId(o.Prefix, i + 1);
            var body = string.Create(CultureInfo.InvariantCulture, $$"""{"node_id":"{{id}}","region":"{{o.Region}}","runtime":"{{o.Runtime}}"}""");
            using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = auth;
            var start = Stopwatch.GetTimestamp();
            try
            {
                using var response = await client.SendAsync(request, token);
                var bytes = await response.Content.ReadAsByteArrayAsync(token);
                stats.Record((int)response.StatusCode, (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                if (response.IsSuccessStatusCode)
                {
                    using var json = JsonDocument.Parse(bytes);
                    tokens[i] = json.RootElement.GetProperty("node_token").GetString();
                    Interlocked.Increment(ref done);
                }
            }
            catch (HttpRequestException e)
            {
                stats.Error(e);
            }
        });
        var seconds = clock.Elapsed.TotalSeconds;
        await using (var writer = new StreamWriter(o.OutFile, append: false, new UTF8Encoding(false)))
        {
            for (var i = 0; i < tokens.Length; i++)
            {
                if (tokens[i] is { } t)
                {
                    await writer.WriteAsync($"{NodeId(o.Prefix, i + 1)}\t{t}\n");
                }
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"register: {done}/{o.Nodes} nodes in {seconds:F1} s = {done / seconds:F0} registrations/s, concurrency {o.Concurrency}"));
        Console.WriteLine($"  latency: {stats.LatencyText()}");
        Console.WriteLine($"  responses: {stats.StatusText()}");
        Console.WriteLine($"  errors: {stats.ErrorText()}");
        Console.WriteLine($"  tokens written to {o.OutFile}");
        return done == o.Nodes ? 0 : 1;
    }

    /// <summary><c>{prefix}-{n:D6}</c>: e.g. <c>fleet-000001</c>.</summary>
    public static string NodeId(string prefix, int n) => string.Create(CultureInfo.InvariantCulture, $"{prefix}-{n:D6}");
}
