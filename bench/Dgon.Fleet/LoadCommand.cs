using System.Diagnostics;
using System.Globalization;

namespace Dgon.Fleet;

/// <summary>
/// <c>load</c>: signed heartbeats spread round-robin over all nodes of a tokens file, for a fixed duration.
/// Max rate (no <c>--rate</c>): a closed loop of C workers, each sending its next request when the last one answered;
/// latency is the request's round trip. Constant rate (<c>--rate R</c>): an open loop, request i is due at
/// start + i / R and its latency is measured from that due time (so a stalled server is charged for the requests it
/// delayed: no coordinated omission), with at most C requests in flight.
/// </summary>
internal static class LoadCommand
{
    public sealed record Options(Uri Api, string TokensFile, int Connections, int DurationS, int WarmupS, double? Rate, SignScheme Scheme, Uri? CeilingUrl, int? ApiPid);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var nodes = NodeTable.Load(o.TokensFile);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load: {nodes.Count} nodes, {o.Connections} connections, {o.DurationS} s (+{o.WarmupS} s warm-up), {(o.Rate is { } r ? $"constant rate {r:F0}/s (open loop)" : "max rate (closed loop)")}, sign {o.Scheme.ToString().ToLowerInvariant()}, generator on {Environment.ProcessorCount} cores"));
        var api = await RunOneAsync("api", o.Api, nodes, o, o.ApiPid, ct);
        if (o.CeilingUrl is null)
        {
            return 0;
        }

        var ceiling = await RunOneAsync("ceiling", o.CeilingUrl, nodes, o, null, ct);
        Console.WriteLine();
        Console.WriteLine("| target | accepted/s (200) | p50 ms | p90 ms | p99 ms | max ms | responses | errors |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
        foreach (var (name, s) in new[] { ("api", api), ("ceiling", ceiling) })
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {s.AcceptedPerSecond:F0} | {s.Stats.Percentile(50):F2} | {s.Stats.Percentile(90):F2} | {s.Stats.Percentile(99):F2} | {s.Stats.MaxMs():F2} | {s.Stats.StatusText()} | {s.Stats.Errors} |"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio api/ceiling (accepted/s): {(ceiling.AcceptedPerSecond > 0 ? api.AcceptedPerSecond / ceiling.AcceptedPerSecond : double.NaN):F3}"));
        return 0;
    }

    private sealed record Result(RunStats Stats, double AcceptedPerSecond);

    private static async Task<Result> RunOneAsync(string name, Uri target, NodeTable nodes, Options o, int? pid, CancellationToken ct)
    {
        using var client = HeartbeatSender.CreateClient(o.Connections);
        var sender = new HeartbeatSender(client, target, nodes, o.Scheme);
        var stats = new RunStats { Counting = false };
        var clock = Stopwatch.StartNew();
        var totalS = o.WarmupS + o.DurationS;
        var run = o.Rate is { } rate ? OpenLoopAsync(sender, stats, o.Connections, rate, totalS, ct) : ClosedLoopAsync(sender, stats, o.Connections, totalS, ct);
        await Task.Delay(TimeSpan.FromSeconds(o.WarmupS), ct);
        var cpu0 = pid is { } p0 ? ProcStats.CpuSeconds(p0) : null;
        var own0 = ProcStats.OwnCpuSeconds();
        var t0 = clock.Elapsed.TotalSeconds;
        stats.Counting = true;
        await Task.Delay(TimeSpan.FromSeconds(o.DurationS), ct);
        stats.Counting = false;
        var window = clock.Elapsed.TotalSeconds - t0;
        var cpu1 = pid is { } p1 ? ProcStats.CpuSeconds(p1) : null;
        var own1 = ProcStats.OwnCpuSeconds();
        await run;
        var acceptedPerSecond = stats.Accepted / window;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{name}] {target}  window {window:F1} s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  accepted/s (200): {acceptedPerSecond:F0}   requests/s: {stats.Requests / window:F0}   skipped (ts > now+60): {stats.Skipped}"));
        Console.WriteLine($"  latency: {stats.LatencyText()}");
        Console.WriteLine($"  responses: {stats.StatusText()}");
        Console.WriteLine($"  errors: {stats.ErrorText()}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  generator CPU: {(own1 - own0) / window * 100:F0} % of one core"));
        if (cpu0 is { } c0 && cpu1 is { } c1)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  api CPU: {(c1 - c0) / window * 100:F0} % of one core; RSS {ProcStats.RssBytes(pid!.Value) / 1048576.0:F1} MiB"));
        }

        return new Result(stats, acceptedPerSecond);
    }

    private static async Task ClosedLoopAsync(HeartbeatSender sender, RunStats stats, int connections, int seconds, CancellationToken ct)
    {
        var end = Stopwatch.GetTimestamp() + (long)(seconds * (double)Stopwatch.Frequency);
        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < end && !ct.IsCancellationRequested)
            {
                if (!sender.Nodes.TryNext(out var node, out var ts))
                {
                    Interlocked.Increment(ref stats.Skipped);
                    await Task.Delay(10, ct);
                    continue;
                }

                var start = Stopwatch.GetTimestamp();
                var (status, _) = await sender.SendAsync(node, ts, stats, ct);
                stats.Record(status, (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
        }, ct));
        await Task.WhenAll(workers);
    }

    private static async Task OpenLoopAsync(HeartbeatSender sender, RunStats stats, int connections, double rate, int seconds, CancellationToken ct)
    {
        using var inFlight = new SemaphoreSlim(connections);
        var start = Stopwatch.GetTimestamp();
        var total = (long)(rate * seconds);
        var pending = new List<Task>();
        for (long i = 0; i < total && !ct.IsCancellationRequested; i++)
        {
            var due = start + (long)(i / rate * Stopwatch.Frequency);
            var wait = due - Stopwatch.GetTimestamp();
            if (wait > Stopwatch.Frequency / 1000)
            {
                await Task.Delay(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency), ct);
            }

            await inFlight.WaitAsync(ct);
            if (!sender.Nodes.TryNext(out var node, out var ts))
            {
                Interlocked.Increment(ref stats.Skipped);
                inFlight.Release();
                continue;
            }

            pending.Add(SendOneAsync(node, ts, due));
            if (pending.Count > 4096)
            {
                pending.RemoveAll(t => t.IsCompleted);
            }
        }

        await Task.WhenAll(pending);

        async Task SendOneAsync(int node, long ts, long dueTimestamp)
        {
            try
            {
                var (status, _) = await sender.SendAsync(node, ts, stats, ct);
                stats.Record(status, (long)Stopwatch.GetElapsedTime(dueTimestamp).TotalMicroseconds);
            }
            finally
            {
                inFlight.Release();
            }
        }
    }
}
