using System.Net;
using Dgon.Agent.Link;
using Dgon.Agent.Manifest;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Dgon.Agent;

/// <summary>Composition root: builds the logger, HTTP clients and parts of <see cref="AgentLoop"/> and runs it.</summary>
public static class AgentHost
{
    /// <summary>Time limit of one API request attempt (seed 000 agent: <c>timeout=10</c>).</summary>
    public static readonly TimeSpan ApiTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs the agent with real measurements until cancelled.</summary>
    /// <returns>Exit code: 0 after a clean stop, 2 when the key file is unusable or registration was rejected.</returns>
    public static async Task<int> RunAsync(AgentOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var loggerFactory = CreateLoggerFactory(options.LogLevel);
        using var apiHttp = CreateApiHttpClient();
        using var ollamaHandler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = OllamaProbe.Timeout,
            AutomaticDecompression = DecompressionMethods.All,
        };
        using var ollamaHttp = new HttpClient(ollamaHandler, disposeHandler: false) { Timeout = OllamaProbe.Timeout + TimeSpan.FromSeconds(1) };

        using var runtimeHttp = CreateRuntimeHttpClient();
        var time = TimeProvider.System;
        var api = new NodeApiClient(apiHttp, options.Api, time);
        var loop = new AgentLoop(
            options,
            api,
            new TokenStore(options.ConfigDir),
            new NodeKeyStore(options.ConfigDir),
            new OllamaProbe(ollamaHttp, options.OllamaUrl),
            new HostMetrics(),
            time,
            loggerFactory.CreateLogger<AgentLoop>())
        {
            Companion = new NodeServices(options, api.Clock, runtimeHttp, ollamaHttp, new SystemProbe(), time, loggerFactory),
        };
        return await loop.RunAsync(cancellationToken);
    }

    /// <summary>
    /// The HTTP client for the DGON API: redirects are not followed (a 3xx becomes an error naming its Location, so signed
    /// requests and the join token never go to another URL), each attempt is bounded by <see cref="ApiTimeout"/>,
    /// buffered bodies are capped at <see cref="NodeApiClient.MaxResponseBytes"/> (the client also reads bounded), and
    /// the User-Agent is <c>dgon-agent/{version}</c>. The caller disposes it (it owns its handler).
    /// </summary>
    public static HttpClient CreateApiHttpClient()
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = ApiTimeout,
            AutomaticDecompression = DecompressionMethods.All,
            AllowAutoRedirect = false,
            MaxResponseHeadersLength = 64, // KiB
        };
        var http = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = ApiTimeout,
            MaxResponseContentBufferSize = NodeApiClient.MaxResponseBytes,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("dgon-agent/" + (typeof(AgentHost).Assembly.GetName().Version?.ToString(3) ?? "0"));
        return http;
    }

    /// <summary>
    /// The HTTP client for work on the runtime (<c>/v1/chat/completions</c>, issue 13): no overall timeout (each task has
    /// its own, <c>timeout_seconds</c>), a 5 s connect timeout, no redirects. The caller disposes it.
    /// </summary>
    public static HttpClient CreateRuntimeHttpClient()
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AllowAutoRedirect = false,
        };
        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Console logging: simple formatter, one line per entry, UTC ISO-8601 timestamps; errors go to stderr.</summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel minimumLevel) =>
        LoggerFactory.Create(builder => builder
            .SetMinimumLevel(minimumLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.IncludeScopes = false;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z' ";
                o.ColorBehavior = LoggerColorBehavior.Default;
            })
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Error));
}
