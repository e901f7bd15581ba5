using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dgon.Testing;
using HdrHistogram;

namespace Dgon.GatewayBench;

internal sealed record BenchOptions
{
    public required Uri Direct { get; init; }
    public Uri? Api { get; init; }
    public string? Key { get; init; }
    public bool DirectOnly { get; init; }
    public string Model { get; init; } = "bench-echo";
    public string Prompt { get; init; } = "The quick brown fox jumps over the lazy dog";
    public int Chunks { get; init; } = 16;
    public int Concurrency { get; init; } = 32;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan LatencyDuration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(2);
    public TimeSpan WaitLink { get; init; } = TimeSpan.FromSeconds(90);
    public IReadOnlyList<(string Name, int Pid)> Pids { get; init; } = [];

    public static BenchOptions Parse(string[] args)
    {
        Uri? direct = null, api = null;
        string? key = null;
        var o = new BenchOptions { Direct = new Uri("http://127.0.0.1/") };
        var pids = new List<(string, int)>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--direct-only")
            {
                o = o with { DirectOnly = true };
                continue;
            }

            var value = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new ArgumentException($"{args[i - 1]} must be a positive whole number");
            switch (args[i - 1])
            {
                case "--direct": direct = new Uri(value); break;
                case "--api": api = new Uri(value); break;
                case "--key": key = value; break;
                case "--model": o = o with { Model = value }; break;
                case "--prompt": o = o with { Prompt = value }; break;
                case "--chunks": o = o with { Chunks = Int() }; break;
                case "--concurrency": o = o with { Concurrency = Int() }; break;
                case "--duration": o = o with { Duration = TimeSpan.FromSeconds(Int()) }; break;
                case "--latency-duration": o = o with { LatencyDuration = TimeSpan.FromSeconds(Int()) }; break;
                case "--warmup": o = o with { Warmup = TimeSpan.FromSeconds(Int()) }; break;
                case "--wait-link": o = o with { WaitLink = TimeSpan.FromSeconds(Int()) }; break;
                case "--pid":
                    var eq = value.IndexOf('=', StringComparison.Ordinal);
                    pids.Add(eq > 0 && int.TryParse(value[(eq + 1)..], CultureInfo.InvariantCulture, out var pid) ? (value[..eq], pid) : throw new ArgumentException("--pid takes name=pid"));
                    break;
                default: throw new ArgumentException($"unknown run option {args[i - 1]}");
            }
        }

        if (direct is null)
        {
            throw new ArgumentException("--direct <stub url> is required");
        }

        if (!o.DirectOnly && (api is null || key is null))
        {
            throw new ArgumentException("--api and --key are required (or --direct-only)");
        }

        return o with { Direct = direct, Api = api, Key = key, Pids = pids };
    }
}

/// <summary>One side of the comparison: where POST /v1/chat/completions goes and with which credential.</summary>
internal sealed class Target(string name, Uri baseAddress, string? key, int connections) : IDisposable
{
    public string Name { get; } = name;

    public Uri Chat { get; } = new(baseAddress, "v1/chat/completions");

    public HttpClient Client { get; } = new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = connections,
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(5),
    })
    { Timeout = TimeSpan.FromSeconds(60) };

    public HttpRequestMessage Request(byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return request;
    }

    public void Dispose() => Client.Dispose();
}

/// <summary>What one phase measured on one side (latencies in microseconds).</summary>
internal sealed class PhaseResult
{
    public LongHistogram Latency { get; } = new(120_000_000, 3);
    public LongHistogram FirstToken { get; } = new(120_000_000, 3);
    public ConcurrentDictionary<string, long> Failures { get; } = new(StringComparer.Ordinal);
    public double Seconds { get; set; }
    public Dictionary<string, double> CpuPercent { get; } = new(StringComparer.Ordinal);

    public double Rate => Latency.TotalCount / Seconds;

    public double P(LongHistogram h, double percentile) => h.TotalCount == 0 ? double.NaN : h.GetValueAtPercentile(percentile) / 1000.0;

    public string FailureText => Failures.IsEmpty ? "none" : string.Join(", ", Failures.OrderByDescending(f => f.Value).Select(f => $"{f.Key} × {f.Value}"));
}

internal static class Bench
{
    public static async Task<int> RunAsync(BenchOptions o)
    {
        var plainBody = Body(o, stream: false);
        var streamBody = Body(o, stream: true);
        var expected = StubRuntime.ReplyText(o.Prompt, o.Chunks);
        using var direct = new Target("direct", o.Direct, null, o.Concurrency);
        using var api = o.DirectOnly ? null : new Target("through API", o.Api!, o.Key, o.Concurrency);

        Say($"machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}; model {o.Model}, {o.Chunks} chunks per reply, prompt \"{o.Prompt}\"");
        var (ok, directAnswer) = await PlainOnceAsync(direct, plainBody);
        if (!ok || directAnswer != expected)
        {
            Console.Error.WriteLine($"the stub at {o.Direct} did not answer the expected echo: {directAnswer}");
            return 1;
        }

        string? apiMissing = null;
        if (api is not null)
        {
            apiMissing = await WaitForGatewayAsync(api, o, plainBody, expected);
            if (apiMissing is not null && apiMissing.StartsWith("fatal:", StringComparison.Ordinal))
            {
                Console.Error.WriteLine(apiMissing[6..]);
                return 1;
            }
        }

        var sides = api is not null && apiMissing is null ? new[] { direct, api } : [direct];
        var results = new Dictionary<(string Phase, string Side), PhaseResult>();
        foreach (var (phase, stream, connections, duration) in new[]
                 {
                     ("plain-1", false, 1, o.LatencyDuration),
                     ("stream-1", true, 1, o.LatencyDuration),
                     ($"plain-{o.Concurrency}", false, o.Concurrency, o.Duration),
                 })
        {
            foreach (var side in sides)
            {
                var r = await PhaseAsync(side, stream ? streamBody : plainBody, stream, connections, o.Warmup, duration, o.Pids);
                results[(phase, side.Name)] = r;
                Say($"{phase,-9} {side.Name,-12} {r.Latency.TotalCount,8} requests in {r.Seconds:0.0} s = {r.Rate,8:0} /s; p50 {r.P(r.Latency, 50):0.000} ms, p99 {r.P(r.Latency, 99):0.000} ms"
                    + (stream ? $"; first token p50 {r.P(r.FirstToken, 50):0.000} ms, p99 {r.P(r.FirstToken, 99):0.000} ms" : "")
                    + $"; failures: {r.FailureText}"
                    + (r.CpuPercent.Count > 0 ? "; CPU " + string.Join(", ", r.CpuPercent.Select(c => $"{c.Key} {c.Value:0} %")) : ""));
            }
        }

        Report(o, results, api is not null && apiMissing is null);
        if (apiMissing is not null)
        {
            Console.WriteLine();
            Console.WriteLine($"THROUGH-API HALF NOT MEASURED: {apiMissing}");
            return 3;
        }

        return 0;
    }

    private static void Report(BenchOptions o, Dictionary<(string Phase, string Side), PhaseResult> results, bool both)
    {
        var plainN = $"plain-{o.Concurrency}";
        string Ms(double v) => double.IsNaN(v) ? "n/a" : $"{v:0.000} ms";
        (string Direct, string Api, string Added, string Verdict) Row(string phase, bool firstToken, double percentile, double goal)
        {
            var d = results[(phase, "direct")];
            var dv = d.P(firstToken ? d.FirstToken : d.Latency, percentile);
            if (!both)
            {
                return (Ms(dv), "n/a", "n/a", "not measured");
            }

            var a = results[(phase, "through API")];
            var av = a.P(firstToken ? a.FirstToken : a.Latency, percentile);
            var added = av - dv;
            return (Ms(dv), Ms(av), $"{added:+0.000;-0.000} ms", double.IsNaN(goal) ? "" : added <= goal ? "met" : "NOT met");
        }

        Console.WriteLine();
        Console.WriteLine($"| measure | direct (stub) | through API | added | goal | |");
        Console.WriteLine("| --- | ---: | ---: | ---: | --- | --- |");
        void Line(string label, (string Direct, string Api, string Added, string Verdict) r, string goal) =>
            Console.WriteLine($"| {label} | {r.Direct} | {r.Api} | {r.Added} | {goal} | {r.Verdict} |");
        Line("plain p50, 1 connection", Row("plain-1", false, 50, 2), "added ≤ 2 ms");
        Line("plain p99, 1 connection", Row("plain-1", false, 99, 10), "added ≤ 10 ms");
        Line("streamed, first token p50, 1 connection", Row("stream-1", true, 50, 2), "added ≤ 2 ms");
        Line("streamed, first token p99, 1 connection", Row("stream-1", true, 99, 10), "added ≤ 10 ms");
        Line($"streamed, whole reply ({o.Chunks} chunks) p50", Row("stream-1", false, 50, double.NaN), "");
        Line($"plain p50, {o.Concurrency} connections", Row(plainN, false, 50, double.NaN), "");
        Line($"plain p99, {o.Concurrency} connections", Row(plainN, false, 99, double.NaN), "");
        var dr = results[(plainN, "direct")].Rate;
        if (both)
        {
            var ar = results[(plainN, "through API")].Rate;
            Console.WriteLine($"| plain requests/s, {o.Concurrency} connections | {dr:0} | {ar:0} | {ar / dr:0%} of direct | ≥ 3,000 through one replica | {(ar >= 3000 ? "met" : "NOT met")} |");
        }
        else
        {
            Console.WriteLine($"| plain requests/s, {o.Concurrency} connections | {dr:0} | n/a | n/a | ≥ 3,000 through one replica | not measured |");
        }
    }

    // Polls the gateway with one plain request until it serves the model (the agent must register, turn active and
    // link first). Null when it does; a reason when the through-API half cannot run ("fatal:" → stop the bench).
    private static async Task<string?> WaitForGatewayAsync(Target api, BenchOptions o, byte[] body, string expected)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (true)
        {
            try
            {
                using var response = await api.Client.SendAsync(api.Request(body));
                var text = await response.Content.ReadAsStringAsync();
                var code = OpenAIErrorCode(text);
                switch ((int)response.StatusCode)
                {
                    case 200:
                        var content = Content(text);
                        if (content != expected)
                        {
                            return $"fatal:the gateway answered 200 but its reply differs from the stub's: \"{content}\" (expected \"{expected}\")";
                        }

                        Say($"gateway serves {o.Model} after {deadline.Elapsed.TotalSeconds:0.0} s");
                        return null;
                    case 404 when code != "model_not_found":
                        return $"the API at {o.Api} answers 404 on POST /v1/chat/completions ({Clip(text)}): this build has no inference gateway yet (issue 13). Only the direct half was measured; run again once the gateway and the agent's link are merged.";
                    case 401 or 403:
                        return $"fatal:the API rejected the API key with {(int)response.StatusCode}: {Clip(text)} (it needs the scope inference)";
                    default:
                        last = $"{(int)response.StatusCode} {code ?? Clip(text)}";
                        break;
                }
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }

            if (deadline.Elapsed > o.WaitLink)
            {
                return $"the gateway did not serve {o.Model} within {o.WaitLink.TotalSeconds:0} s (last answer: {last}); is the agent linked and its node active? (its log is in the bench's work directory with KEEP_LOGS=1)";
            }

            await Task.Delay(500);
        }
    }

    private static async Task<PhaseResult> PhaseAsync(Target side, byte[] body, bool stream, int connections, TimeSpan warmup, TimeSpan duration, IReadOnlyList<(string Name, int Pid)> pids)
    {
        var result = new PhaseResult();
        var counting = new StrongBox<bool>();
        var stop = new StrongBox<bool>();
        var workers = new (LongHistogram Latency, LongHistogram First)[connections];
        var tasks = new Task[connections];
        for (var i = 0; i < connections; i++)
        {
            var own = (new LongHistogram(120_000_000, 3), new LongHistogram(120_000_000, 3));
            workers[i] = own;
            tasks[i] = Task.Run(() => WorkerAsync(side, body, stream, own.Item1, own.Item2, result.Failures, counting, stop));
        }

        await Task.Delay(warmup);
        var cpu0 = pids.Select(p => CpuTicks(p.Pid)).ToArray();
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref counting.Value, true);
        await Task.Delay(duration);
        Volatile.Write(ref counting.Value, false);
        result.Seconds = clock.Elapsed.TotalSeconds;
        var cpu1 = pids.Select(p => CpuTicks(p.Pid)).ToArray();
        Volatile.Write(ref stop.Value, true);
        await Task.WhenAll(tasks);
        foreach (var (latency, first) in workers)
        {
            result.Latency.Add(latency);
            result.FirstToken.Add(first);
        }

        for (var i = 0; i < pids.Count; i++)
        {
            if (cpu0[i] >= 0 && cpu1[i] >= 0)
            {
                result.CpuPercent[pids[i].Name] = 100.0 * (cpu1[i] - cpu0[i]) / ClockTicksPerSecond / result.Seconds;
            }
        }

        return result;
    }

    private static async Task WorkerAsync(
        Target side, byte[] body, bool stream, LongHistogram latency, LongHistogram first, ConcurrentDictionary<string, long> failures,
        StrongBox<bool> counting, StrongBox<bool> stop)
    {
        while (!Volatile.Read(ref stop.Value))
        {
            var t0 = Stopwatch.GetTimestamp();
            long firstToken = -1;
            string? failure = null;
            try
            {
                using var request = side.Request(body);
                using var response = await side.Client.SendAsync(request, stream ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    failure = $"HTTP {(int)response.StatusCode}";
                    await response.Content.ReadAsByteArrayAsync();
                }
                else if (stream)
                {
                    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(), Encoding.UTF8);
                    var done = false;
                    while (await reader.ReadLineAsync() is { } line)
                    {
                        if (firstToken < 0 && line.StartsWith("data: {", StringComparison.Ordinal) && HasContent(line))
                        {
                            firstToken = Stopwatch.GetTimestamp();
                        }
                        else if (line == "data: [DONE]")
                        {
                            done = true;
                        }
                    }

                    failure = !done ? "stream ended without [DONE]" : firstToken < 0 ? "stream without content" : null;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                failure = e.InnerException is { } inner ? $"{e.GetType().Name}({inner.GetType().Name})" : e.GetType().Name;
            }

            var t1 = Stopwatch.GetTimestamp();
            if (!Volatile.Read(ref counting.Value))
            {
                continue;
            }

            if (failure is not null)
            {
                failures.AddOrUpdate(failure, 1, (_, n) => n + 1);
                continue;
            }

            latency.RecordValue(Micros(t1 - t0));
            if (firstToken >= 0)
            {
                first.RecordValue(Micros(firstToken - t0));
            }
        }
    }

    // A chunk with a non-empty delta.content: the same cheap test on both sides (System.Text.Json writes no spaces).
    private static bool HasContent(string line)
    {
        var i = line.IndexOf("\"content\":\"", StringComparison.Ordinal);
        return i >= 0 && i + 11 < line.Length && line[i + 11] != '"';
    }

    private static async Task<(bool Ok, string? Content)> PlainOnceAsync(Target side, byte[] body)
    {
        try
        {
            using var response = await side.Client.SendAsync(side.Request(body));
            var text = await response.Content.ReadAsStringAsync();
            return response.StatusCode == HttpStatusCode.OK ? (true, Content(text)) : (false, $"HTTP {(int)response.StatusCode}: {Clip(text)}");
        }
        catch (HttpRequestException e)
        {
            return (false, e.Message);
        }
    }

    private static string? Content(string completion)
    {
        try
        {
            using var json = JsonDocument.Parse(completion);
            return json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            return $"(not a chat.completion: {Clip(completion)})";
        }
    }

    private static string? OpenAIErrorCode(string text)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String
                ? code.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static byte[] Body(BenchOptions o, bool stream)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", o.Model);
            json.WriteStartArray("messages");
            json.WriteStartObject();
            json.WriteString("role", "user");
            json.WriteString("content", o.Prompt);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteNumber("max_tokens", 64);
            json.WriteBoolean("stream", stream);
            if (stream)
            {
                json.WriteStartObject("stream_options");
                json.WriteBoolean("include_usage", true);
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static long Micros(long ticks) => Math.Clamp(ticks * 1_000_000 / Stopwatch.Frequency, 0, 120_000_000);

    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux

    private static long CpuTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    private static string Clip(string text) => text.Length > 200 ? text[..200] + "…" : text;

    private static void Say(string text) => Console.WriteLine($"[gateway] {text}");

    private sealed class StrongBox<T>
    {
        public T Value = default!;
    }
}
