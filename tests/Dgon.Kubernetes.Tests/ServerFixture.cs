using Dgon.KubeTestServer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary>A Kubernetes API test server plus a client of ours for it (one per test: tests expire history and close watches).</summary>
public sealed class Cluster : IAsyncDisposable
{
    private Cluster(KubeApiTestServer server, KubeClient client)
    {
        Server = server;
        Client = client;
    }

    public KubeApiTestServer Server { get; }

    public KubeClient Client { get; }

    public static async Task<Cluster> StartAsync(KubeApiTestServerOptions? options = null)
    {
        var server = await KubeApiTestServer.StartAsync(options ?? new KubeApiTestServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(300) });
        return new Cluster(server, NewClient(server));
    }

    public static KubeClient NewClient(KubeApiTestServer server, string? token = null) =>
        new(new KubeClientConfig { Server = server.BaseAddress, TokenSource = token is null ? null : new StaticTokenSource(token), Timeout = TimeSpan.FromSeconds(15) });

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }

    public static DgonNode Node(string name, string ns = "default", Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Labels = labels },
        Spec = new DgonNodeSpec { Region = "eu-west", Runtime = "ollama" },
    };

    public static CancellationToken Timeout(int seconds = 20) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}

/// <summary>Logs to the xunit output (helps diagnose CI flakes).</summary>
public sealed class XunitLogger(ITestOutputHelper output, string category) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
        }
        catch (InvalidOperationException)
        {
            // the test already finished
        }
    }

    public static ILogger For(ITestOutputHelper? output, string category) => output is null ? NullLogger.Instance : new XunitLogger(output, category);
}
