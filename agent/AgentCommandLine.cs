using System.CommandLine;
using System.Globalization;
using Dgon.Domain.Auth;
using Dgon.Domain.Nodes;
using Dgon.Domain.Validation;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent;

/// <summary>What the agent reads from its surroundings: environment variables, host name, the per-user config folder.</summary>
/// <param name="Variable">Reads an environment variable; null or empty means unset.</param>
/// <param name="HostName">The machine's host name (default node id source).</param>
/// <param name="ApplicationData">The per-user application-data folder (<c>~/.config</c> on Linux and macOS).</param>
public sealed record AgentEnvironment(Func<string, string?> Variable, Func<string> HostName, Func<string> ApplicationData)
{
    /// <summary>The real process environment, <see cref="System.Net.Dns.GetHostName"/> and <see cref="Environment.SpecialFolder.ApplicationData"/>.</summary>
    public static AgentEnvironment System { get; } = new(
        Environment.GetEnvironmentVariable,
        global::System.Net.Dns.GetHostName,
        () => Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData));
}

/// <summary>Outcome of resolving the configuration: the options, or every error found (then the agent exits 2).</summary>
/// <param name="Options">The options when <paramref name="Errors"/> is empty.</param>
/// <param name="Errors">Human-readable errors naming the flag and variable.</param>
public sealed record AgentOptionsResult(AgentOptions? Options, IReadOnlyList<string> Errors);

/// <summary>
/// The agent's command line (System.CommandLine 2.0): every setting is a flag with an environment-variable fallback;
/// flags win. Exit codes: 0 clean stop or <c>--help</c>, 2 invalid configuration, else what the run returns.
/// </summary>
public sealed class AgentCommandLine
{
    /// <summary>Exit code for invalid configuration or a registration the API rejected.</summary>
    public const int ConfigurationErrorExitCode = 2;

    private readonly Option<string?> _api = new("--api") { Description = "API base URL; plain http:// only to a loopback host unless --insecure-http [env DGON_API; default " + AgentOptions.DefaultApi + "]", HelpName = "url" };
    private readonly Option<string?> _nodeId = new("--node-id") { Description = "Node id, a lowercase RFC 1123 label [env NODE_ID; default: derived from the host name]", HelpName = "id" };
    private readonly Option<string?> _region = new("--region") { Description = "Region [env REGION; default " + AgentOptions.DefaultRegion + "]", HelpName = "region" };
    private readonly Option<string?> _runtime = new("--runtime") { Description = "Runtime: ollama|vllm|tensorrtllm|tgi [env RUNTIME; default ollama]", HelpName = "runtime" };
    private readonly Option<string?> _ollamaUrl = new("--ollama-url") { Description = "Ollama base URL [env OLLAMA_URL; default " + AgentOptions.DefaultOllamaUrl + "]", HelpName = "url" };
    private readonly Option<string?> _interval = new("--interval") { Description = "Heartbeat interval in seconds, decimals allowed [env HEARTBEAT_INTERVAL; default 10]", HelpName = "seconds" };
    private readonly Option<string?> _configDir = new("--config-dir") { Description = "Directory (mode 0700) for the token file <node-id>.json and the node key <node-id>.key (both 0600) [env DGON_CONFIG_DIR; default ~/.config/dgon]", HelpName = "dir" };
    private readonly Option<string?> _joinToken = new("--join-token") { Description = "Join token <id>.<secret> from an admin, sent only to enroll the node (prefer the variable: flags show in ps) [env DGON_JOIN_TOKEN]", HelpName = "token" };
    private readonly Option<string?> _tokenMaxAge = new("--token-max-age") { Description = "Rotate the node token when it is older than this, in seconds; 0 disables [env DGON_TOKEN_MAX_AGE; default 86400]", HelpName = "seconds" };
    private readonly Option<bool> _insecureHttp = new("--insecure-http") { Description = "Allow http:// to a non-loopback API (tokens and signatures then travel in clear text) [env DGON_INSECURE_HTTP=true]" };
    private readonly Option<bool> _sampleReceipt = new("--sample-receipt") { Description = "Post one sample receipt once the node is active" };
    private readonly Option<string?> _asnHint = new("--asn-hint") { Description = "Network hint sent at registration [env ASN_HINT]", HelpName = "text" };
    private readonly Option<string?> _wallet = new("--wallet-address") { Description = "Payout wallet address sent at registration [env WALLET_ADDRESS]", HelpName = "address" };
    private readonly Option<string?> _green = new("--green-energy") { Description = "Declare green energy: true|false [env GREEN_ENERGY]", HelpName = "bool" };
    private readonly Option<string?> _maxParallel = new("--max-parallel") { Description = "Dispatched tasks run at once (the manifest's max_parallel), 1-256 [env DGON_MAX_PARALLEL; default 1]", HelpName = "n" };
    private readonly Option<bool> _noLink = new("--no-link") { Description = "Do not open the coordinator link (no work is dispatched; heartbeats only) [env DGON_LINK=off]" };
    private readonly Option<string?> _statusConfigDir = new("--config-dir") { Description = "The agent's config directory [env DGON_CONFIG_DIR; default ~/.config/dgon]", HelpName = "dir" };
    private readonly Option<string?> _statusNodeId = new("--node-id") { Description = "Node id [env NODE_ID; default: derived from the host name]", HelpName = "id" };
    private readonly Option<string?> _logLevel = new("--log-level") { Description = "Trace|Debug|Information|Warning|Error [env LOG_LEVEL; default Information]", HelpName = "level" };

    /// <summary>Builds the command tree.</summary>
    public AgentCommandLine()
    {
        Root = new RootCommand("DGON node agent: registers this machine as a node, checks the local runtime and posts signed heartbeats.")
        {
            _api, _nodeId, _region, _runtime, _ollamaUrl, _interval, _configDir, _joinToken, _tokenMaxAge, _insecureHttp,
            _sampleReceipt, _asnHint, _wallet, _green, _maxParallel, _noLink, _logLevel,
        };
        Status = new Command("status", "Print the running agent's state, current work, totals and link health (from its status file, rewritten every second). Exit code 0 when running, 3 when not.")
        {
            _statusConfigDir, _statusNodeId,
        };
        Root.Add(Status);

        // System.CommandLine treats a command without an action as not runnable when parsing; RunAsync replaces these
        // no-op actions with the real ones before invoking.
        Root.SetAction(_ => 0);
        Status.SetAction(_ => 0);
    }

    /// <summary>The <c>status</c> subcommand.</summary>
    public Command Status { get; }

    /// <summary>The root command (options only; its action is set by <see cref="RunAsync"/>).</summary>
    public RootCommand Root { get; }

    /// <summary>
    /// Parses <paramref name="args"/>, resolves the options and runs <paramref name="run"/> with them.
    /// Parse or configuration errors are written to <paramref name="error"/> and give exit code 2.
    /// Signal handling is the caller's: <paramref name="cancellationToken"/> is passed through to <paramref name="run"/>.
    /// </summary>
    /// <returns>The process exit code.</returns>
    public static async Task<int> RunAsync(
        string[] args,
        AgentEnvironment environment,
        Func<AgentOptions, CancellationToken, Task<int>> run,
        TextWriter output,
        TextWriter error,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(error);
        var cli = new AgentCommandLine();
        var parse = cli.Root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await error.WriteLineAsync($"error: {e.Message}");
            }

            await error.WriteLineAsync("Run with --help for usage.");
            return ConfigurationErrorExitCode;
        }

        cli.Root.SetAction(async (result, ct) =>
        {
            var resolved = cli.Resolve(result, environment);
            if (resolved.Options is null)
            {
                foreach (var e in resolved.Errors)
                {
                    await error.WriteLineAsync($"error: {e}");
                }

                return ConfigurationErrorExitCode;
            }

            return await run(resolved.Options, ct);
        });

        cli.Status.SetAction(async (result, ct) =>
        {
            var (configDir, nodeId, errors) = cli.ResolveStatus(result, environment);
            if (errors.Count > 0)
            {
                foreach (var e in errors)
                {
                    await error.WriteLineAsync($"error: {e}");
                }

                return ConfigurationErrorExitCode;
            }

            return await Link.StatusCommand.RunAsync(configDir!, nodeId!, output, DateTimeOffset.UtcNow);
        });

        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null, Output = output, Error = error, EnableDefaultExceptionHandler = false };
        return await parse.InvokeAsync(invocation, cancellationToken);
    }

    /// <summary>Parses and resolves without running: for tests and diagnostics.</summary>
    /// <returns>The options, or the parse and configuration errors.</returns>
    public static AgentOptionsResult Parse(string[] args, AgentEnvironment environment)
    {
        var cli = new AgentCommandLine();
        var parse = cli.Root.Parse(args);
        return parse.Errors.Count > 0
            ? new AgentOptionsResult(null, [.. parse.Errors.Select(e => e.Message)])
            : cli.Resolve(parse, environment);
    }

    /// <summary>Resolves the <c>status</c> subcommand's config directory and node id (flag, else variable, else default, as for the agent).</summary>
    /// <returns>Both, or the errors.</returns>
    public (string? ConfigDir, string? NodeId, IReadOnlyList<string> Errors) ResolveStatus(ParseResult parse, AgentEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(environment);
        var errors = new List<string>();
        string? Pick(Option<string?> flag, string variable) =>
            parse.GetValue(flag) is { Length: > 0 } f ? f : environment.Variable(variable) is { Length: > 0 } v ? v : null;
        var nodeId = Pick(_statusNodeId, "NODE_ID") ?? AgentOptions.NodeIdFromHostName(SafeHostName(environment));
        if (!ContractValidator.IsValidNodeId(nodeId))
        {
            errors.Add($"invalid node id '{LogText.Clean(nodeId, 80)}' (--node-id / NODE_ID): a lowercase RFC 1123 label");
        }

        var configDir = Pick(_statusConfigDir, "DGON_CONFIG_DIR");
        if (configDir is null && environment.ApplicationData() is { Length: > 0 } appData)
        {
            configDir = Path.Combine(appData, "dgon");
        }

        if (configDir is null)
        {
            errors.Add("no per-user config folder is known (HOME unset?): set --config-dir or DGON_CONFIG_DIR");
        }

        return (configDir, nodeId, errors);
    }

    /// <summary>Resolves every option from its flag, else its environment variable, else its default, and validates it.</summary>
    /// <returns>The options, or all errors found.</returns>
    public AgentOptionsResult Resolve(ParseResult parse, AgentEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(environment);
        var errors = new List<string>();
        string? Pick(Option<string?> flag, string variable)
        {
            var fromFlag = parse.GetValue(flag);
            if (!string.IsNullOrEmpty(fromFlag))
            {
                return fromFlag;
            }

            var fromEnv = environment.Variable(variable);
            return string.IsNullOrEmpty(fromEnv) ? null : fromEnv;
        }

        var api = ParseUrl(Pick(_api, "DGON_API") ?? AgentOptions.DefaultApi, "--api / DGON_API", errors);
        var ollama = ParseUrl(Pick(_ollamaUrl, "OLLAMA_URL") ?? AgentOptions.DefaultOllamaUrl, "--ollama-url / OLLAMA_URL", errors);

        var nodeId = Pick(_nodeId, "NODE_ID");
        if (nodeId is null)
        {
            var host = SafeHostName(environment);
            nodeId = AgentOptions.NodeIdFromHostName(host);
            if (!ContractValidator.IsValidNodeId(nodeId))
            {
                errors.Add($"cannot derive a node id from the host name '{host}': set --node-id or NODE_ID to a lowercase RFC 1123 label (1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)");
            }
        }
        else if (!ContractValidator.IsValidNodeId(nodeId))
        {
            errors.Add($"invalid node id '{nodeId}' (--node-id / NODE_ID): it must be a lowercase RFC 1123 label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit");
        }

        var runtimeText = Pick(_runtime, "RUNTIME") ?? NodeRuntime.Ollama.ToWire();
        if (!NodeRuntimes.TryParse(runtimeText, out var runtime))
        {
            errors.Add($"invalid runtime '{runtimeText}' (--runtime / RUNTIME): must be one of {string.Join(", ", NodeRuntimes.All.Select(r => r.ToWire()))}");
        }

        var intervalText = Pick(_interval, "HEARTBEAT_INTERVAL");
        var seconds = intervalText is null ? AgentOptions.DefaultIntervalSeconds : AgentOptions.ParseSeconds(intervalText);
        if (seconds is not { } s || s < AgentOptions.MinIntervalSeconds || s > AgentOptions.MaxIntervalSeconds)
        {
            errors.Add($"invalid interval '{intervalText}' (--interval / HEARTBEAT_INTERVAL): must be a number of seconds between {AgentOptions.MinIntervalSeconds} and {AgentOptions.MaxIntervalSeconds}, e.g. 10 or 0.5");
            seconds = AgentOptions.DefaultIntervalSeconds;
        }

        var configDir = Pick(_configDir, "DGON_CONFIG_DIR");
        if (configDir is null)
        {
            var appData = environment.ApplicationData();
            if (string.IsNullOrEmpty(appData))
            {
                errors.Add("no per-user config folder is known (HOME unset?): set --config-dir or DGON_CONFIG_DIR");
            }
            else
            {
                configDir = Path.Combine(appData, "dgon");
            }
        }

        var insecureHttp = parse.GetValue(_insecureHttp);
        if (!insecureHttp && environment.Variable("DGON_INSECURE_HTTP") is { Length: > 0 } insecureText)
        {
            if (AgentOptions.ParseBool(insecureText) is { } value)
            {
                insecureHttp = value;
            }
            else
            {
                errors.Add($"invalid value '{LogText.Clean(insecureText, 40)}' (DGON_INSECURE_HTTP): use true or false");
            }
        }

        if (api is not null && api.Scheme == Uri.UriSchemeHttp && !insecureHttp && !AgentOptions.IsLoopback(api))
        {
            errors.Add($"refusing plain http:// to {api.IdnHost} (--api / DGON_API): the join token, node tokens and signed requests would travel in clear text to a host that is not this machine. Use https://, or pass --insecure-http / DGON_INSECURE_HTTP=true if the network path is otherwise protected");
        }

        SecretText? joinToken = null;
        if (Pick(_joinToken, "DGON_JOIN_TOKEN") is { } joinText)
        {
            // the value is a secret: an error names the rule, never the text
            if (JoinTokens.TryParse(joinText.Trim(), out _))
            {
                joinToken = new SecretText(joinText.Trim());
            }
            else
            {
                errors.Add("invalid join token (--join-token / DGON_JOIN_TOKEN): expected <id>.<secret> (6 lowercase letters or digits, a dot, 16 lowercase letters or digits) as an admin gets it from POST /v1/admin/join-tokens");
            }
        }

        var maxAge = TimeSpan.FromSeconds(AgentOptions.DefaultTokenMaxAgeSeconds);
        if (Pick(_tokenMaxAge, "DGON_TOKEN_MAX_AGE") is { } maxAgeText)
        {
            if (long.TryParse(maxAgeText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var maxAgeSeconds) && maxAgeSeconds <= AgentOptions.MaxTokenMaxAgeSeconds)
            {
                maxAge = TimeSpan.FromSeconds(maxAgeSeconds);
            }
            else
            {
                errors.Add($"invalid token max age '{LogText.Clean(maxAgeText, 40)}' (--token-max-age / DGON_TOKEN_MAX_AGE): must be a whole number of seconds from 0 (no rotation) to {AgentOptions.MaxTokenMaxAgeSeconds}, e.g. 86400");
            }
        }

        bool? green = null;
        if (Pick(_green, "GREEN_ENERGY") is { } greenText)
        {
            green = AgentOptions.ParseBool(greenText);
            if (green is null)
            {
                errors.Add($"invalid green energy value '{greenText}' (--green-energy / GREEN_ENERGY): use true or false");
            }
        }

        var maxParallel = 1;
        if (Pick(_maxParallel, "DGON_MAX_PARALLEL") is { } parallelText)
        {
            if (!int.TryParse(parallelText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out maxParallel) || maxParallel < 1 || maxParallel > AgentOptions.MaxMaxParallel)
            {
                errors.Add($"invalid max parallel '{LogText.Clean(parallelText, 40)}' (--max-parallel / DGON_MAX_PARALLEL): must be a whole number from 1 to {AgentOptions.MaxMaxParallel}");
                maxParallel = 1;
            }
        }

        var link = !parse.GetValue(_noLink);
        if (link && environment.Variable("DGON_LINK") is { Length: > 0 } linkText)
        {
            if (AgentOptions.ParseBool(linkText) is { } value)
            {
                link = value;
            }
            else
            {
                errors.Add($"invalid value '{LogText.Clean(linkText, 40)}' (DGON_LINK): use on or off");
            }
        }

        var logLevel = LogLevel.Information;
        if (Pick(_logLevel, "LOG_LEVEL") is { } levelText
            && (!Enum.TryParse(levelText, ignoreCase: true, out logLevel) || !Enum.IsDefined(logLevel)))
        {
            errors.Add($"invalid log level '{levelText}' (--log-level / LOG_LEVEL): use Trace, Debug, Information, Warning, Error or Critical");
        }

        if (errors.Count > 0)
        {
            return new AgentOptionsResult(null, errors);
        }

        return new AgentOptionsResult(
            new AgentOptions
            {
                Api = api!,
                NodeId = nodeId!,
                Region = Pick(_region, "REGION") ?? AgentOptions.DefaultRegion,
                Runtime = runtime,
                OllamaUrl = ollama!,
                Interval = TimeSpan.FromSeconds(seconds.Value),
                ConfigDir = Path.GetFullPath(configDir!),
                JoinToken = joinToken,
                TokenMaxAge = maxAge,
                InsecureHttp = insecureHttp,
                SampleReceipt = parse.GetValue(_sampleReceipt),
                AsnHint = Pick(_asnHint, "ASN_HINT"),
                WalletAddress = Pick(_wallet, "WALLET_ADDRESS"),
                GreenEnergy = green,
                MaxParallel = maxParallel,
                Link = link,
                LogLevel = logLevel,
            },
            []);
    }

    private static Uri? ParseUrl(string text, string name, List<string> errors)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            return uri;
        }

        errors.Add($"invalid URL '{text}' ({name}): must be an absolute http:// or https:// URL");
        return null;
    }

    private static string SafeHostName(AgentEnvironment environment)
    {
        try
        {
            return environment.HostName();
        }
        catch (System.Net.Sockets.SocketException)
        {
            return Environment.MachineName;
        }
    }
}
