using Dgon.Agent.Manifest;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent.Link;

/// <summary>
/// What runs beside the heartbeat loop once the node key is loaded (<see cref="AgentLoop.Companion"/>): the status
/// file writer and, unless <c>--no-link</c>, the coordinator link with its work executor.
/// </summary>
public interface ILoopCompanion
{
    /// <summary>
    /// Runs until <paramref name="stop"/> and then finishes its own shutdown (the link drains up to 30 s); the loop
    /// awaits it before it disposes the key.
    /// </summary>
    /// <param name="key">The node key (valid until this returns).</param>
    /// <param name="credentials">The current node token, null until registered.</param>
    /// <param name="stop">Stop request (SIGTERM, Ctrl-C, or the loop ending).</param>
    Task RunAsync(NodeKey key, Func<NodeCredentials?> credentials, CancellationToken stop);

    /// <summary>Called after each tick's runtime probe (never blocks).</summary>
    void OnRuntimeProbed(OllamaStatus status);
}

/// <summary>The real companion: status file, link, executor and manifest (see <see cref="ILoopCompanion"/>).</summary>
/// <param name="options">Resolved options.</param>
/// <param name="clock">The API client's timestamp source (shared with heartbeats).</param>
/// <param name="runtimeHttp">HTTP client for the runtime's work calls (infinite timeout).</param>
/// <param name="probeHttp">HTTP client for model listings (short calls).</param>
/// <param name="system">OS access for hardware detection.</param>
/// <param name="time">Clock.</param>
/// <param name="loggerFactory">Loggers.</param>
public sealed class NodeServices(
    AgentOptions options,
    RequestClock clock,
    HttpClient runtimeHttp,
    HttpClient probeHttp,
    ISystemProbe system,
    TimeProvider time,
    ILoggerFactory loggerFactory) : ILoopCompanion
{
    private volatile CoordinatorLink? _link;

    /// <summary>The live state (created when <see cref="RunAsync"/> starts).</summary>
    public AgentStatus? Status { get; private set; }

    /// <inheritdoc />
    public async Task RunAsync(NodeKey key, Func<NodeCredentials?> credentials, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(key);
        var logger = loggerFactory.CreateLogger("Dgon.Agent.Link");
        var status = new AgentStatus(options.NodeId, options.MaxParallel, options.Link, time, logger);
        Status = status;
        var writer = new StatusFileWriter(status, options.ConfigDir, options.NodeId, time, logger);
        using var writerStop = new CancellationTokenSource();
        var writing = writer.RunAsync(writerStop.Token);
        try
        {
            if (!options.Link)
            {
                LinkLog.Disabled(logger);
                await Task.Delay(Timeout.Infinite, stop).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                status.BeginDraining();
                return;
            }

            var executor = new WorkExecutor(runtimeHttp, options.OllamaUrl, options.NodeId, options.Region, key.Key, options.MaxParallel, status, time, logger);
            var manifests = new ManifestBuilder(new HardwareDetector(system), new RuntimeModels(probeHttp, options.OllamaUrl, options.Runtime), options.NodeId, options.Runtime, options.MaxParallel, time);
            var link = new CoordinatorLink(options.Api, options.InsecureHttp, options.NodeId, options.Runtime, clock, credentials, key.Key, manifests, executor, status, time, logger);
            _link = link;
            await link.RunAsync(stop);
        }
        finally
        {
            _link = null;
            await writerStop.CancelAsync();
            await writing;
            writer.WriteFinal();
        }
    }

    /// <inheritdoc />
    public void OnRuntimeProbed(OllamaStatus status) => _link?.OnRuntimeProbed(status);
}
