using Dgon.Domain.Nodes;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent.Tests;

public sealed class AgentCommandLineTests
{
    private static AgentEnvironment Env(Dictionary<string, string?>? vars = null, string host = "Test-Host.local", string appData = "/home/u/.config") =>
        new(name => vars is not null && vars.TryGetValue(name, out var v) ? v : null, () => host, () => appData);

    private static AgentOptions Ok(string[] args, AgentEnvironment env)
    {
        var result = AgentCommandLine.Parse(args, env);
        Assert.True(result.Options is not null, string.Join("\n", result.Errors));
        return result.Options;
    }

    private static IReadOnlyList<string> Errors(string[] args, AgentEnvironment env)
    {
        var result = AgentCommandLine.Parse(args, env);
        Assert.Null(result.Options);
        Assert.NotEmpty(result.Errors);
        return result.Errors;
    }

    [Fact]
    public void Defaults_apply_without_flags_or_environment()
    {
        var o = Ok([], Env());
        Assert.Equal(new Uri("http://127.0.0.1:8001"), o.Api);
        Assert.Equal("test-host", o.NodeId);
        Assert.Equal("local", o.Region);
        Assert.Equal(NodeRuntime.Ollama, o.Runtime);
        Assert.Equal(new Uri("http://127.0.0.1:11434"), o.OllamaUrl);
        Assert.Equal(TimeSpan.FromSeconds(10), o.Interval);
        Assert.Equal(Path.GetFullPath("/home/u/.config/dgon"), o.ConfigDir);
        Assert.False(o.SampleReceipt);
        Assert.Null(o.AsnHint);
        Assert.Null(o.WalletAddress);
        Assert.Null(o.GreenEnergy);
        Assert.Equal(LogLevel.Information, o.LogLevel);
        Assert.Null(o.JoinToken);
        Assert.Equal(TimeSpan.FromHours(24), o.TokenMaxAge);
        Assert.False(o.InsecureHttp);
    }

    private static readonly Dictionary<string, string?> AllEnv = new()
    {
        ["DGON_API"] = "http://api.example:8001",
        ["NODE_ID"] = "env-node",
        ["REGION"] = "eu-west",
        ["RUNTIME"] = "vllm",
        ["OLLAMA_URL"] = "http://127.0.0.1:9999",
        ["HEARTBEAT_INTERVAL"] = "0.5",
        ["DGON_CONFIG_DIR"] = "/tmp/env-config",
        ["ASN_HINT"] = "residential",
        ["WALLET_ADDRESS"] = "0xabc",
        ["GREEN_ENERGY"] = "yes",
        ["LOG_LEVEL"] = "debug",
        ["DGON_JOIN_TOKEN"] = "envtok.0123456789abcdef",
        ["DGON_TOKEN_MAX_AGE"] = "3600",
        ["DGON_INSECURE_HTTP"] = "true",
    };

    [Fact]
    public void Environment_variables_are_read()
    {
        var o = Ok([], Env(AllEnv));
        Assert.Equal(new Uri("http://api.example:8001"), o.Api);
        Assert.Equal("env-node", o.NodeId);
        Assert.Equal("eu-west", o.Region);
        Assert.Equal(NodeRuntime.Vllm, o.Runtime);
        Assert.Equal(new Uri("http://127.0.0.1:9999"), o.OllamaUrl);
        Assert.Equal(TimeSpan.FromMilliseconds(500), o.Interval);
        Assert.Equal("/tmp/env-config", o.ConfigDir);
        Assert.Equal("residential", o.AsnHint);
        Assert.Equal("0xabc", o.WalletAddress);
        Assert.True(o.GreenEnergy);
        Assert.Equal(LogLevel.Debug, o.LogLevel);
        Assert.Equal("envtok.0123456789abcdef", o.JoinToken?.Value);
        Assert.Equal(TimeSpan.FromHours(1), o.TokenMaxAge);
        Assert.True(o.InsecureHttp);
    }

    [Fact]
    public void Flags_win_over_environment_variables()
    {
        var o = Ok(
        [
            "--api", "https://flag.example", "--node-id", "flag-node", "--region", "ap-southeast", "--runtime", "tgi",
            "--ollama-url", "http://127.0.0.1:1234", "--interval", "2.25", "--config-dir", "/tmp/flag-config",
            "--asn-hint", "AS13335", "--wallet-address", "0xdef", "--green-energy", "false", "--log-level", "Warning",
            "--sample-receipt", "--join-token", "flagtk.fedcba9876543210", "--token-max-age", "0",
        ], Env(AllEnv));
        Assert.Equal(new Uri("https://flag.example"), o.Api);
        Assert.Equal("flag-node", o.NodeId);
        Assert.Equal("ap-southeast", o.Region);
        Assert.Equal(NodeRuntime.Tgi, o.Runtime);
        Assert.Equal(new Uri("http://127.0.0.1:1234"), o.OllamaUrl);
        Assert.Equal(TimeSpan.FromSeconds(2.25), o.Interval);
        Assert.Equal("/tmp/flag-config", o.ConfigDir);
        Assert.Equal("AS13335", o.AsnHint);
        Assert.Equal("0xdef", o.WalletAddress);
        Assert.False(o.GreenEnergy);
        Assert.Equal(LogLevel.Warning, o.LogLevel);
        Assert.True(o.SampleReceipt);
        Assert.Equal("flagtk.fedcba9876543210", o.JoinToken?.Value);
        Assert.Equal(TimeSpan.Zero, o.TokenMaxAge);
    }

    [Fact]
    public void Empty_environment_values_count_as_unset()
    {
        var o = Ok([], Env(new() { ["NODE_ID"] = "", ["REGION"] = "" }));
        Assert.Equal("test-host", o.NodeId);
        Assert.Equal("local", o.Region);
    }

    [Fact]
    public void Invalid_node_id_is_reported_with_the_rule()
    {
        var errors = Errors(["--node-id", "Bad_Node"], Env());
        Assert.Contains(errors, e => e.Contains("Bad_Node", StringComparison.Ordinal) && e.Contains("RFC 1123", StringComparison.Ordinal));
    }

    [Fact]
    public void Invalid_node_id_from_environment_is_reported()
    {
        var errors = Errors([], Env(new() { ["NODE_ID"] = "UPPER" }));
        Assert.Contains(errors, e => e.Contains("NODE_ID", StringComparison.Ordinal));
    }

    [Fact]
    public void Host_name_that_gives_no_label_asks_for_a_node_id()
    {
        var errors = Errors([], Env(host: "___"));
        Assert.Contains(errors, e => e.Contains("--node-id", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("0,5")]
    [InlineData("NaN")]
    [InlineData("100000")]
    public void Invalid_intervals_are_rejected(string interval) =>
        Assert.Contains(Errors(["--interval", interval], Env()), e => e.Contains("interval", StringComparison.Ordinal));

    [Fact]
    public void Invalid_runtime_lists_the_allowed_ones()
    {
        var errors = Errors(["--runtime", "llamacpp"], Env());
        Assert.Contains(errors, e => e.Contains("ollama, vllm, tensorrtllm, tgi", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("ftp://x")]
    [InlineData("not a url")]
    [InlineData("/relative")]
    public void Invalid_api_url_is_rejected(string url) =>
        Assert.Contains(Errors(["--api", url], Env()), e => e.Contains("--api", StringComparison.Ordinal));

    [Fact]
    public void Invalid_green_energy_value_is_rejected() =>
        Assert.Contains(Errors([], Env(new() { ["GREEN_ENERGY"] = "maybe" })), e => e.Contains("GREEN_ENERGY", StringComparison.Ordinal));

    [Fact]
    public void Region_is_not_validated_locally_the_api_decides() =>
        Assert.Equal("bad region!", Ok(["--region", "bad region!"], Env()).Region);

    [Fact]
    public void Unknown_flag_is_a_parse_error() =>
        Assert.NotEmpty(Errors(["--bogus"], Env()));

    [Fact]
    public async Task Help_prints_usage_and_exits_0_without_running()
    {
        var output = new StringWriter();
        var ran = false;
        var code = await AgentCommandLine.RunAsync(["--help"], Env(), (_, _) => { ran = true; return Task.FromResult(0); }, output, TextWriter.Null, CancellationToken.None);
        Assert.Equal(0, code);
        Assert.False(ran);
        Assert.Contains("--node-id", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("HEARTBEAT_INTERVAL", output.ToString(), StringComparison.Ordinal);
        foreach (var text in new[] { "--join-token", "DGON_JOIN_TOKEN", "--token-max-age", "DGON_TOKEN_MAX_AGE", "--insecure-http", "DGON_INSECURE_HTTP", "<node-id>.key" })
        {
            Assert.Contains(text, output.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Configuration_errors_exit_2_with_a_message()
    {
        var error = new StringWriter();
        var code = await AgentCommandLine.RunAsync(["--node-id", "NOPE"], Env(), (_, _) => Task.FromResult(0), TextWriter.Null, error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("invalid node id 'NOPE'", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parse_errors_exit_2()
    {
        var error = new StringWriter();
        var code = await AgentCommandLine.RunAsync(["--bogus"], Env(), (_, _) => Task.FromResult(0), TextWriter.Null, error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("--bogus", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Valid_options_reach_the_run_and_its_exit_code_is_returned()
    {
        AgentOptions? seen = null;
        var code = await AgentCommandLine.RunAsync(["--node-id", "n1", "--interval", "0.5"], Env(), (o, _) => { seen = o; return Task.FromResult(7); }, TextWriter.Null, TextWriter.Null, CancellationToken.None);
        Assert.Equal(7, code);
        Assert.Equal("n1", seen?.NodeId);
        Assert.Equal(TimeSpan.FromMilliseconds(500), seen?.Interval);
    }

    [Theory]
    [InlineData("not-a-token")]
    [InlineData("ABCDEF.0123456789abcdef")]
    [InlineData("abcdef.0123456789abcde")]
    [InlineData("abcdef:0123456789abcdef")]
    public void Invalid_join_token_is_rejected_without_echoing_it(string token)
    {
        var errors = Errors(["--join-token", token], Env());
        var error = Assert.Single(errors);
        Assert.Contains("--join-token / DGON_JOIN_TOKEN", error, StringComparison.Ordinal);
        Assert.DoesNotContain(token, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Join_token_surrounding_whitespace_is_trimmed() =>
        Assert.Equal("abcdef.0123456789abcdef", Ok([], Env(new() { ["DGON_JOIN_TOKEN"] = " abcdef.0123456789abcdef\n" })).JoinToken?.Value);

    [Fact]
    public void Options_never_print_the_join_token()
    {
        var o = Ok(["--join-token", "abcdef.0123456789abcdef"], Env());
        Assert.DoesNotContain("0123456789abcdef", o.ToString(), StringComparison.Ordinal);
        Assert.Contains("[redacted]", o.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("abc")]
    [InlineData("31536001")]
    public void Invalid_token_max_age_is_rejected(string value) =>
        Assert.Contains(Errors(["--token-max-age", value], Env()), e => e.Contains("--token-max-age / DGON_TOKEN_MAX_AGE", StringComparison.Ordinal));

    [Theory]
    [InlineData("http://api.example:8001")]
    [InlineData("http://10.0.0.5:8001")]
    [InlineData("http://[2001:db8::1]:8001")]
    [InlineData("http://127.example.com")]
    [InlineData("http://localhost.evil.example")]
    public void Plain_http_to_another_host_is_refused_without_insecure_http(string url)
    {
        var error = Assert.Single(Errors(["--api", url], Env()));
        Assert.Contains("clear text", error, StringComparison.Ordinal);
        Assert.Contains("--insecure-http", error, StringComparison.Ordinal);

        Assert.True(Ok(["--api", url, "--insecure-http"], Env()).InsecureHttp);
        Assert.Equal(new Uri(url), Ok(["--api", url], Env(new() { ["DGON_INSECURE_HTTP"] = "true" })).Api);
        Assert.NotEmpty(Errors(["--api", url], Env(new() { ["DGON_INSECURE_HTTP"] = "false" })));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8001")]
    [InlineData("http://127.10.20.30")]
    [InlineData("http://localhost:8001")]
    [InlineData("http://LOCALHOST")]
    [InlineData("http://[::1]:8001")]
    [InlineData("http://[::ffff:127.0.0.1]:8001")]
    [InlineData("https://api.example")]
    public void Https_and_loopback_http_need_no_flag(string url) =>
        Assert.False(Ok(["--api", url], Env()).InsecureHttp);

    [Fact]
    public void Invalid_insecure_http_value_is_rejected() =>
        Assert.Contains(Errors([], Env(new() { ["DGON_INSECURE_HTTP"] = "maybe" })), e => e.Contains("DGON_INSECURE_HTTP", StringComparison.Ordinal));

    [Fact]
    public async Task Plain_http_to_another_host_exits_2_saying_why()
    {
        var error = new StringWriter();
        var ran = false;
        var code = await AgentCommandLine.RunAsync(["--api", "http://dgon.example.com"], Env(), (_, _) => { ran = true; return Task.FromResult(0); }, TextWriter.Null, error, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.False(ran);
        Assert.Contains("refusing plain http:// to dgon.example.com", error.ToString(), StringComparison.Ordinal);
    }
}
