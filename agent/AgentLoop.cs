using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent;

/// <summary>
/// The agent's main loop (seed 000 agent, made durable): reuse the stored token or register once; then every
/// interval, measured from tick start, probe the runtime, measure the host and post a signed heartbeat.
/// Failures are retried with backoff (<see cref="RetryPolicy"/>, unbounded); a 401 that rejects the token
/// (unknown-node, bad-signature, or no problem type) leads to one re-registration; a 4xx on register ends the run.
/// </summary>
public sealed class AgentLoop
{
    /// <summary>Retries of the sample receipt after its first attempt (transient failures only).</summary>
    public const int ReceiptRetries = 5;

    private readonly AgentOptions _options;
    private readonly NodeApiClient _api;
    private readonly TokenStore _store;
    private readonly OllamaProbe _probe;
    private readonly IHostMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<double>? _random;

    private NodeCredentials? _credentials;
    private bool? _runtimeReady;
    private string? _phase;
    private string? _failureState;
    private Task _receipt = Task.CompletedTask;
    private bool _receiptStarted;

    /// <summary>Creates the loop from its parts.</summary>
    /// <param name="options">Resolved configuration.</param>
    /// <param name="api">API client.</param>
    /// <param name="store">Token file store.</param>
    /// <param name="probe">Runtime readiness probe (used when the runtime is ollama).</param>
    /// <param name="metrics">Host measurements for heartbeats.</param>
    /// <param name="time">Clock for the interval, backoff delays and signatures.</param>
    /// <param name="logger">Logger for state changes.</param>
    /// <param name="random">Jitter source in [0, 1); <see cref="Random.Shared"/> when null.</param>
    public AgentLoop(
        AgentOptions options,
        NodeApiClient api,
        TokenStore store,
        OllamaProbe probe,
        IHostMetrics metrics,
        TimeProvider time,
        ILogger<AgentLoop> logger,
        Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        (_options, _api, _store, _probe, _metrics, _time, _logger, _random) = (options, api, store, probe, metrics, time, logger, random);
    }

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled (exit code 0) or registration is rejected with a 4xx
    /// (exit code 2, the problem's detail and errors logged).
    /// </summary>
    /// <returns>The process exit code.</returns>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        AgentLog.Starting(_logger, _options.NodeId, _options.Region, _options.Runtime.ToWire(), TokenStore.NormaliseApi(_options.Api),
            _options.OllamaUrl.AbsoluteUri, _options.Interval.TotalSeconds, _store.ConfigDir);
        if (_options.Runtime != NodeRuntime.Ollama)
        {
            AgentLog.NoProbeForRuntime(_logger, _options.Runtime.ToWire());
        }

        LoadStoredToken();
        var pipeline = RetryPolicy.Create((e, _) => e is not RegistrationRejectedException, int.MaxValue, _time, OnRetry, _random);
        try
        {
            using var timer = new PeriodicTimer(_options.Interval, _time);
            do
            {
                await pipeline.ExecuteAsync(TickAsync, cancellationToken);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
            return 0;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            AgentLog.Stopping(_logger);
            return 0;
        }
        catch (RegistrationRejectedException e)
        {
            AgentLog.RegisterRejected(_logger, (int)e.Failure.StatusCode, e.Failure.Problem?.ToString() ?? e.Failure.Message);
            return AgentCommandLine.ConfigurationErrorExitCode;
        }
        finally
        {
            await _receipt;
        }
    }

    /// <summary>One tick: probe, measure, register if needed, heartbeat; re-registers once when the token is rejected.</summary>
    private async ValueTask TickAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetUtcNow();
        var runtime = _options.Runtime == NodeRuntime.Ollama
            ? await _probe.ProbeAsync(cancellationToken)
            : new OllamaStatus(false, [], $"no readiness probe for runtime {_options.Runtime.ToWire()}");
        ReportRuntime(runtime);
        var sample = await _metrics.MeasureAsync(cancellationToken);
        var heartbeat = new HeartbeatRequest { Ready = runtime.Ready, MemUsedGb = sample.MemUsedGb, GpuUtil = sample.GpuUtil };

        var fresh = _credentials is null;
        var credentials = _credentials ?? await RegisterAsync(reRegistration: false, cancellationToken);
        HeartbeatResponse response;
        try
        {
            response = await _api.HeartbeatAsync(credentials, heartbeat, cancellationToken);
        }
        catch (NodeApiException e) when (e.Kind == ApiFailureKind.TokenRejected && !fresh)
        {
            AgentLog.TokenRejected(_logger, credentials.TokenPrefix, e.Problem?.ToString() ?? $"HTTP {(int)e.StatusCode}");
            _credentials = null;
            credentials = await RegisterAsync(reRegistration: true, cancellationToken);
            response = await _api.HeartbeatAsync(credentials, heartbeat, cancellationToken);
        }

        ReportSuccess();
        ReportPhase(response.Status);
        if (_options.SampleReceipt && !_receiptStarted && response.Status == NodePhase.Active.ToWire())
        {
            _receiptStarted = true;
            _receipt = PostSampleReceiptAsync(credentials, runtime, started, cancellationToken);
        }
    }

    private void LoadStoredToken()
    {
        try
        {
            var loaded = _store.Load(_options.Api, _options.NodeId);
            if (loaded.Token is { } token)
            {
                _credentials = new NodeCredentials(token.NodeId, token.NodeToken);
                AgentLog.TokenReused(_logger, token.NodeId, _credentials.TokenPrefix, _store.PathFor(token.NodeId), token.RegisteredAt);
            }
            else if (loaded.Reason is { } reason)
            {
                AgentLog.StoredTokenIgnored(_logger, reason);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.TokenLoadFailed(_logger, _store.PathFor(_options.NodeId), e.Message);
        }
    }

    private async Task<NodeCredentials> RegisterAsync(bool reRegistration, CancellationToken cancellationToken)
    {
        var request = new RegisterRequest
        {
            NodeId = _options.NodeId,
            Region = _options.Region,
            Runtime = _options.Runtime.ToWire(),
            AsnHint = _options.AsnHint,
            WalletAddress = _options.WalletAddress,
            GreenEnergy = _options.GreenEnergy,
        };

        RegisterResponse response;
        try
        {
            response = await _api.RegisterAsync(request, cancellationToken);
        }
        catch (NodeApiException e) when (e.Kind != ApiFailureKind.Transient)
        {
            throw new RegistrationRejectedException(e);
        }

        var credentials = new NodeCredentials(_options.NodeId, response.NodeToken);
        _credentials = credentials;
        var path = _store.PathFor(_options.NodeId);
        try
        {
            path = _store.Save(new StoredToken(TokenStore.NormaliseApi(_options.Api), _options.NodeId, response.NodeToken, _time.GetUtcNow()));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.TokenSaveFailed(_logger, path, e.Message);
        }

        if (reRegistration)
        {
            AgentLog.ReRegistered(_logger, _options.NodeId, credentials.TokenPrefix, path);
        }
        else
        {
            AgentLog.Registered(_logger, _options.NodeId, credentials.TokenPrefix, path);
        }

        return credentials;
    }

    private async Task PostSampleReceiptAsync(NodeCredentials credentials, OllamaStatus runtime, DateTimeOffset started, CancellationToken cancellationToken)
    {
        await Task.Yield();
        if (runtime.FirstModel is not { } model)
        {
            AgentLog.ReceiptSkipped(_logger);
            return;
        }

        var receipt = SampleReceipt.Create(_options.NodeId, _options.Region, _options.Runtime, model, started, _time.GetUtcNow(), Guid.NewGuid());
        var pipeline = RetryPolicy.Create(RetryPolicy.IsTransient, ReceiptRetries, _time, random: _random);
        try
        {
            var response = await pipeline.ExecuteAsync(
                async ct => await _api.PostReceiptAsync(credentials, receipt, ct), cancellationToken);
            AgentLog.ReceiptPosted(_logger, receipt.Id!, receipt.ModelId!, response.Ok);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // shutting down
        }
        catch (Exception e) when (e is NodeApiException or HttpRequestException or OperationCanceledException)
        {
            AgentLog.ReceiptFailed(_logger, receipt.Id!, e.Message);
        }
    }

    private void ReportRuntime(OllamaStatus status)
    {
        if (_runtimeReady == status.Ready)
        {
            return;
        }

        _runtimeReady = status.Ready;
        if (status.Ready)
        {
            AgentLog.RuntimeReady(_logger, status.Models.Count, status.FirstModel?.Name ?? "?");
        }
        else
        {
            AgentLog.RuntimeNotReady(_logger, status.Reason ?? "unknown");
        }
    }

    private void ReportPhase(string phase)
    {
        if (!string.Equals(_phase, phase, StringComparison.Ordinal))
        {
            _phase = phase;
            AgentLog.PhaseChanged(_logger, phase);
        }
    }

    private void ReportSuccess()
    {
        if (_failureState is null)
        {
            return;
        }

        if (_failureState == FailureUnreachable)
        {
            AgentLog.ApiReachableAgain(_logger);
        }
        else
        {
            AgentLog.RequestsAcceptedAgain(_logger);
        }

        _failureState = null;
    }

    private const string FailureUnreachable = "unreachable";

    private void OnRetry(Exception failure, int attempt, TimeSpan delay)
    {
        AgentLog.RetryScheduled(_logger, attempt + 1, delay.TotalMilliseconds, failure.Message);
        var (state, log) = failure switch
        {
            NodeApiException { Kind: ApiFailureKind.ClockSkew } e => ("clock-skew", (Action)(() => AgentLog.ClockSkew(_logger, e.Problem?.ToString() ?? e.Message))),
            NodeApiException { Kind: ApiFailureKind.Rejected or ApiFailureKind.TokenRejected } e =>
                ($"rejected-{e.Operation}-{(int)e.StatusCode}-{e.Problem?.Type}", () => AgentLog.RequestRejected(_logger, e.Operation, (int)e.StatusCode, e.Problem?.ToString() ?? e.Message)),
            _ => (FailureUnreachable, () => AgentLog.ApiUnreachable(_logger, failure.Message)),
        };

        if (!string.Equals(state, _failureState, StringComparison.Ordinal))
        {
            _failureState = state;
            log();
        }
    }

    /// <summary>Register answered a 4xx other than 408/429: the configuration is wrong, retrying cannot help.</summary>
    private sealed class RegistrationRejectedException(NodeApiException failure) : Exception(failure.Message, failure)
    {
        public NodeApiException Failure { get; } = failure;
    }
}
