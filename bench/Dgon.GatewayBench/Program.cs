// The inference gateway's added latency (issue 13), side by side in one run:
//   direct      – POST /v1/chat/completions on the runtime stub (tests/Dgon.Testing/StubRuntime.cs)
//   through API – the same request to the API with an API key (scope inference) → the agent's link → the same stub
// Phases (each on both sides, direct first): plain requests on 1 connection (p50/p99), streamed requests on 1 connection
// (time to first token and to data: [DONE]), plain requests on N connections (requests/s, p50/p99). Closed loop; a
// warm-up before each phase is not counted. Prints numbers and the goal, never asserts.
//
//   Dgon.GatewayBench stub --port N [--model bench-echo] [--chunks 16] [--chunk-delay-ms 0]
//   Dgon.GatewayBench run --direct <stub url> [--api <api url> --key <api key>] [--direct-only] [--model bench-echo]
//                         [--chunks 16] [--concurrency 32] [--duration 10] [--latency-duration 10] [--warmup 2]
//                         [--wait-link 90] [--pid name=pid …]
// Exit codes: 0 measured both sides, 1 set-up failed, 2 bad arguments, 3 only the direct side could be measured.
using System.Globalization;
using System.Runtime.InteropServices;
using Dgon.GatewayBench;
using Dgon.Testing;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: Dgon.GatewayBench stub --port N [--model M] [--chunks N] [--chunk-delay-ms D]");
    Console.WriteLine("       Dgon.GatewayBench run --direct URL [--api URL --key KEY | --direct-only] [--model M] [--chunks N] [--concurrency 32]");
    Console.WriteLine("                             [--duration 10] [--latency-duration 10] [--warmup 2] [--wait-link 90] [--pid name=pid ...]");
    return args.Length == 0 ? 2 : 0;
}

try
{
    return args[0] switch
    {
        "stub" => await StubAsync(args[1..]),
        "run" => await Bench.RunAsync(BenchOptions.Parse(args[1..])),
        _ => throw new ArgumentException($"unknown command '{args[0]}' (stub or run)"),
    };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

static async Task<int> StubAsync(string[] args)
{
    int? port = null;
    var model = "bench-echo";
    var chunks = 16;
    var delayMs = 0;
    for (var i = 0; i < args.Length; i++)
    {
        var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
        switch (args[i])
        {
            case "--port": port = int.Parse(value, CultureInfo.InvariantCulture); break;
            case "--model": model = value; break;
            case "--chunks": chunks = int.Parse(value, CultureInfo.InvariantCulture); break;
            case "--chunk-delay-ms": delayMs = int.Parse(value, CultureInfo.InvariantCulture); break;
            default: throw new ArgumentException($"unknown stub option {args[i]}");
        }

        i++;
    }

    var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
    using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
    await using var stub = await StubRuntime.StartAsync(port);
    stub.SetModel(model, StubModel.Echo with { Chunks = chunks, ChunkDelay = TimeSpan.FromMilliseconds(delayMs) });
    Console.WriteLine($"stub runtime {stub.BaseAddress} model {model}: {chunks} chunks, {delayMs} ms before each");
    await stop.Task;
    Console.WriteLine($"stub runtime stopping: {stub.Requests} chat requests, {stub.Completed} completed, {stub.AbortedByClient} aborted by the client, {stub.TagsRequests} tag requests");
    return 0;
}
