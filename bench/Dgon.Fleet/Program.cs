using System.CommandLine;
using Dgon.Fleet;

// Fleet load generator and simulator (issue 11). Every subcommand prints its figures; none asserts a goal.
var api = new Option<Uri>("--api") { Description = "API base URL, e.g. http://127.0.0.1:8080", Required = true, CustomParser = ParseUri };
var tokens = new Option<string>("--tokens") { Description = "tokens file written by `register --out` (id TAB token a line)", Required = true };
var connections = new Option<int>("--connections") { Description = "HTTP/1.1 keep-alive connections (and requests in flight)", DefaultValueFactory = _ => 64 };
var duration = new Option<int>("--duration") { Description = "measured window, seconds", DefaultValueFactory = _ => 20 };
var warmup = new Option<int>("--warmup") { Description = "seconds run before the window, not counted", DefaultValueFactory = _ => 3 };
var sign = new Option<string>("--sign") { Description = "v1 (seed: body ‖ ts) or v2 (our agent's canonical request)", DefaultValueFactory = _ => "v2" };
sign.AcceptOnlyFromAmong("v1", "v2");
var apiPid = new Option<int?>("--api-pid") { Description = "API process id: its CPU and RSS over the window (Linux /proc)" };
var adminToken = new Option<string>("--admin-token") { Description = "admin bearer token (DGON_ADMIN_TOKEN)" };

var port = new Option<int>("--port") { Description = "loopback port", Required = true };
var ceiling = new Command("ceiling", "bare Kestrel answering POST /v1/nodes/heartbeat with a fixed small JSON: no auth, no state") { port };
ceiling.SetAction((r, ct) => CeilingCommand.RunAsync(r.GetValue(port), ct));

var nodes = new Option<int>("--nodes") { Description = "how many nodes", Required = true };
var concurrency = new Option<int>("--concurrency") { Description = "registrations in flight", DefaultValueFactory = _ => 32 };
var outFile = new Option<string>("--out") { Description = "tokens file to write", Required = true };
var prefix = new Option<string>("--prefix") { Description = "node id prefix (ids are {prefix}-000001 …)", DefaultValueFactory = _ => "fleet" };
var registerAdmin = new Option<string>("--admin-token") { Description = "admin bearer token (DGON_ADMIN_TOKEN)", Required = true };
var register = new Command("register", "register N nodes with the admin token; writes id→token to --out") { api, registerAdmin, nodes, concurrency, outFile, prefix };
register.SetAction((r, ct) => RegisterCommand.RunAsync(
    new(r.GetValue(api)!, r.GetValue(registerAdmin)!, r.GetValue(nodes), r.GetValue(concurrency), r.GetValue(outFile)!, r.GetValue(prefix)!, "eu-west", "ollama"), ct));

var databaseUrl = new Option<string>("--database-url") { Description = "postgres://user@host:port/db (DATABASE_URL of the API)", Required = true };
var secretKey = new Option<string>("--secret-key") { Description = "DGON_SECRET_KEY of the API (comma-separated base64 keys, current first)", Required = true };
var first = new Option<int>("--first") { Description = "number of the first id", DefaultValueFactory = _ => 1 };
var seed = new Command("seed", "bench set-up: insert N nodes and encrypted secrets by binary COPY (no API); writes id→token to --out") { databaseUrl, secretKey, nodes, outFile, prefix, first };
seed.SetAction((r, ct) => SeedCommand.RunAsync(
    new(r.GetValue(databaseUrl)!, r.GetValue(secretKey)!, r.GetValue(nodes), r.GetValue(outFile)!, r.GetValue(prefix)!, "eu-west", "ollama", r.GetValue(first)), ct));

var rate = new Option<double?>("--rate") { Description = "constant rate, requests/s (open loop); omitted: max rate (closed loop)" };
var ceilingUrl = new Option<Uri>("--ceiling-url") { Description = "also run the same load against this ceiling server and print the ratio", CustomParser = ParseUri };
var load = new Command("load", "signed heartbeats over all nodes, max or constant rate; optionally side by side with the ceiling")
{
    api, tokens, connections, duration, warmup, rate, sign, ceilingUrl, apiPid,
};
load.SetAction((r, ct) => LoadCommand.RunAsync(
    new(r.GetValue(api)!, r.GetValue(tokens)!, r.GetValue(connections), r.GetValue(duration), r.GetValue(warmup), r.GetValue(rate),
        Scheme(r.GetValue(sign)), r.GetValue(ceilingUrl), r.GetValue(apiPid)), ct));

var interval = new Option<double>("--interval") { Description = "heartbeat interval per node, seconds", DefaultValueFactory = _ => 10 };
var simConnections = new Option<int>("--connections") { Description = "HTTP/1.1 keep-alive connections (and heartbeats in flight)", DefaultValueFactory = _ => 256 };
var simWarmup = new Option<int>("--warmup") { Description = "seconds before the window, not counted (default: one interval)" };
var simulate = new Command("simulate", "every node heartbeats once per interval on its own phase; API CPU, RSS and Kubernetes write budget")
{
    api, tokens, interval, duration, simWarmup, simConnections, sign, apiPid,
};
simulate.SetAction((r, ct) => SimulateCommand.RunAsync(
    new(r.GetValue(api)!, r.GetValue(tokens)!, r.GetValue(interval), r.GetValue(duration), r.GetValue(simWarmup) is var w and > 0 ? w : (int)Math.Ceiling(r.GetValue(interval)),
        r.GetValue(simConnections), Scheme(r.GetValue(sign)), r.GetValue(apiPid)), ct));

var repeat = new Option<int>("--repeat") { Description = "repetitions of the cheap reads", DefaultValueFactory = _ => 20 };
var metricsRepeat = new Option<int>("--metrics-repeat") { Description = "repetitions of GET /metrics", DefaultValueFactory = _ => 5 };
var reads = new Command("reads", "time GET /v1/summary, GET /v1/nodes?limit=1000 (first and middle page), GET /metrics") { api, adminToken, repeat, metricsRepeat };
reads.SetAction((r, ct) => ReadsCommand.RunAsync(new(r.GetValue(api)!, r.GetValue(adminToken), r.GetValue(repeat), r.GetValue(metricsRepeat)), ct));

var root = new RootCommand("DGON fleet load generator and simulator (issue 11): prints figures, asserts nothing") { ceiling, seed, register, load, simulate, reads };
return await root.Parse(args).InvokeAsync();

static Uri? ParseUri(System.CommandLine.Parsing.ArgumentResult result)
{
    var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
    if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
    {
        return uri;
    }

    result.AddError($"'{text}' is not an absolute http(s) URL");
    return null;
}

static SignScheme Scheme(string? text) => text == "v1" ? SignScheme.V1 : SignScheme.V2;
