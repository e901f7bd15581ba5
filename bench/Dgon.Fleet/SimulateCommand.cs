using System.Diagnostics;
using System.Globalization;

namespace Dgon.Fleet;

/// <summary>
/// <c>simulate</c>: every node of the tokens file heartbeats once per interval on its own phase (node i first at
/// i · interval / N), so the aggregate rate is N / interval. A node adopts a <c>heartbeat_interval_s</c> from a
/// response from its next heartbeat on. Latency is measured from each heartbeat's due time; at most C are in flight.
/// The first <c>--warmup</c> seconds are not counted. With <c>--api-pid</c> it prints the API's RSS (start, end,
/// max) and CPU over the window, and the per-second delta of <c>dgon_kubernetes_status_writes_total</c> from
/// <c>/metrics</c> (absent in standalone mode).
/// </summary>
internal static class SimulateCommand
{
    public sealed record Options(Uri Api, string TokensFile, double IntervalS, int DurationS, int WarmupS, int Connections, SignScheme Scheme, int? ApiPid);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var nodes = NodeTable.Load(o.TokensFile);
        using var client = HeartbeatSender.CreateClient(o.Connections);
        using var metricsClient = HeartbeatSender.CreateClient(1);
        var sender = new HeartbeatSender(client, o.Api, nodes, o.Scheme);
        var stats = new RunStats { Counting = false };
        var f = (double)Stopwatch.Frequency;
        var interval = new double[nodes.Count];
        Array.Fill(interval, o.IntervalS);
        var queue = new PriorityQueue<int, long>(nodes.Count);
        var gate = new Lock();
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < nodes.Count; i++)
        {
            queue.Enqueue(i, start + (long)(i * o.IntervalS / nodes.Count * f));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"simulate: {nodes.Count} nodes every {o.IntervalS} s = {nodes.Count / o.IntervalS:F0} heartbeats/s, {o.DurationS} s window after {o.WarmupS} s warm-up, ≤ {o.Connections} in flight, sign {o.Scheme.ToString().ToLowerInvariant()}"));
        var end = start + (long)((o.WarmupS + o.DurationS) * f);
        using var inFlight = new SemaphoreSlim(o.Connections);
        long adopted = 0;
        var rss = new List<long>();
        Dictionary<string, double>? writes0 = null;
        double? cpu0 = null, t0 = null;
        double own0 = 0;
        var sampler = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(o.WarmupS), ct);
            writes0 = await WritesAsync(metricsClient, o.Api, ct);
            cpu0 = o.ApiPid is { } p ? ProcStats.CpuSeconds(p) : null;
            own0 = ProcStats.OwnCpuSeconds();
            t0 = Stopwatch.GetElapsedTime(start).TotalSeconds;
            stats.Counting = true;
            while (Stopwatch.GetTimestamp() < end)
            {
                if (o.ApiPid is { } pid && ProcStats.RssBytes(pid) is { } r)
                {
                    rss.Add(r);
                }

                await Task.Delay(1000, ct);
            }
        }, ct);

        var pending = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            int node;
            long due;
            lock (gate)
            {
                queue.TryPeek(out node, out due);
            }

            if (due >= end || Stopwatch.GetTimestamp() >= end)
            {
                // Past the window on the clock too: a server slower than N / interval makes due times lag behind it.
                break;
            }

            var wait = due - Stopwatch.GetTimestamp();
            if (wait > Stopwatch.Frequency / 1000)
            {
                await Task.Delay(TimeSpan.FromSeconds(wait / f), ct);
                continue;
            }

            lock (gate)
            {
                queue.Dequeue();
            }

            await inFlight.WaitAsync(ct);
            pending.Add(BeatAsync(node, due));
            if (pending.Count > 4096)
            {
                pending.RemoveAll(t => t.IsCompleted);
            }
        }

        await Task.WhenAll(pending);
        await sampler;
        var window = Stopwatch.GetElapsedTime(start).TotalSeconds - (t0 ?? 0);
        var writes1 = await WritesAsync(metricsClient, o.Api, ct);
        var own1 = ProcStats.OwnCpuSeconds();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  achieved: {stats.Requests / window:F0} heartbeats/s (accepted {stats.Accepted / window:F0}/s; target {nodes.Count / o.IntervalS:F0}/s) over {window:F1} s"));
        Console.WriteLine($"  latency from due time: {stats.LatencyText()}");
        Console.WriteLine($"  responses: {stats.StatusText()}   errors: {stats.ErrorText()}   nodes that adopted heartbeat_interval_s: {Interlocked.Read(ref adopted)}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  generator CPU: {(own1 - own0) / window * 100:F0} % of one core"));
        if (o.ApiPid is { } apiPid && cpu0 is { } c0 && ProcStats.CpuSeconds(apiPid) is { } c1 && rss.Count > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  api: CPU {(c1 - c0) / window * 100:F0} % of one core ({Environment.ProcessorCount} cores); RSS start {rss[0] / 1048576.0:F1} MiB, end {rss[^1] / 1048576.0:F1} MiB, max {rss.Max() / 1048576.0:F1} MiB"));
        }

        if (writes0 is { Count: > 0 } && writes1.Count > 0)
        {
            var total = writes1.Sum(kv => kv.Value - writes0.GetValueOrDefault(kv.Key));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  dgon_kubernetes_status_writes_total: {total / window:F1}/s ({total / window / nodes.Count * 60:F2} per node per minute)"));
            foreach (var (series, value) in writes1)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {series}: {(value - writes0.GetValueOrDefault(series)) / window:F1}/s"));
            }
        }
        else
        {
            Console.WriteLine("  dgon_kubernetes_status_writes_total: absent (standalone mode)");
        }

        return 0;

        async Task BeatAsync(int n, long dueTimestamp)
        {
            try
            {
                var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                if (!nodes.TryTimestamp(n, now, out var ts))
                {
                    Interlocked.Increment(ref stats.Skipped);
                }
                else
                {
                    var (status, newInterval) = await sender.SendAsync(n, ts, stats, ct);
                    stats.Record(status, (long)Stopwatch.GetElapsedTime(dueTimestamp).TotalMicroseconds);
                    if (newInterval > 0 && newInterval != interval[n])
                    {
                        interval[n] = newInterval;
                        Interlocked.Increment(ref adopted);
                    }
                }

                lock (gate)
                {
                    queue.Enqueue(n, dueTimestamp + (long)(interval[n] * f));
                }
            }
            finally
            {
                inFlight.Release();
            }
        }
    }

    /// <summary>The <c>dgon_kubernetes_status_writes_total</c> series of <c>/metrics</c> (series text → value); empty when absent or unreachable.</summary>
    private static async Task<Dictionary<string, double>> WritesAsync(HttpClient client, Uri api, CancellationToken ct)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        try
        {
            var text = await client.GetStringAsync(new Uri(api, "/metrics"), ct);
            foreach (var line in text.Split('\n'))
            {
                if (line.StartsWith("dgon_kubernetes_status_writes_total", StringComparison.Ordinal))
                {
                    var space = line.LastIndexOf(' ');
                    if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                    {
                        result[line[..space]] = v;
                    }
                }
            }
        }
        catch (HttpRequestException)
        {
        }

        return result;
    }
}
