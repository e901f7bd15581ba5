using Dgon.Agent.Link;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent;

/// <summary>
/// The agent's main loop (seed 000 agent, made durable; issue 9 node trust): load or create the node key, reuse the
/// stored token or enroll; then every interval, measured from tick start, probe the runtime, measure the host, rotate
/// the token when it is older than <see cref="AgentOptions.TokenMaxAge"/>, and post a v2-signed heartbeat.
/// Failures are retried with backoff (<see cref="RetryPolicy"/>, unbounded). A 401 that rejects the token
/// (unknown-node, bad-signature, secret-unavailable, or no problem type) leads to a re-registration signed with the
/// node key, never a blind one; if the API no longer knows the key (401 join-token-required) the configured join
/// token enrolls the node again. A 401 replayed heartbeat is sent again on the next tick. A registration the API
/// rejects for good (a 4xx other than 408, 429 and 401 replayed; or a 3xx) ends the run with exit code 2, as does an
/// unusable key file.
/// </summary>
public sealed class AgentLoop
{
    /// <summary>Retries of the sample receipt after its first attempt (transient failures only).</summary>
    public const int ReceiptRetries = 5;

    /// <summary>Wait before another rotation attempt after one failed (except 401 replayed: next tick): 10 minutes.</summary>
    public static readonly TimeSpan RotationRetryDelay = TimeSpan.FromMinutes(10);

    private const string FailureUnreachable = "unreachable";

    private readonly AgentOptions _options;
    private readonly NodeApiClient _api;
    private readonly TokenStore _store;
    private readonly NodeKeyStore _keys;
    private readonly OllamaProbe _probe;
    private readonly IHostMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<double>? _random;

    private NodeKey? _key;
    private volatile NodeCredentials? _credentials;
    private bool _keyMayBeEnrolled;
    private bool _reRegistering;
    private DateTimeOffset _registeredAt;
    private DateTimeOffset _tokenIssuedAt;
    private DateTimeOffset _nextRotationAttempt = DateTimeOffset.MinValue;
    private bool? _runtimeReady;
    private string? _phase;
    private string? _failureState;
    private Task _receipt = Task.CompletedTask;
    private bool _receiptStarted;
    private PeriodicTimer? _timer;

    /// <summary>Creates the loop from its parts.</summary>
    /// <param name="options">Resolved configuration.</param>
    /// <param name="api">API client.</param>
    /// <param name="store">Token file store.</param>
    /// <param name="keys">Node key file store (same config directory).</param>
    /// <param name="probe">Runtime readiness probe (used when the runtime is ollama).</param>
    /// <param name="metrics">Host measurements for heartbeats.</param>
    /// <param name="time">Clock for the interval, backoff delays, token ages and signatures.</param>
    /// <param name="logger">Logger for state changes.</param>
    /// <param name="random">Jitter source in [0, 1); <see cref="Random.Shared"/> when null.</param>
    public AgentLoop(
        AgentOptions options,
        NodeApiClient api,
        TokenStore store,
        NodeKeyStore keys,
        OllamaProbe probe,
        IHostMetrics metrics,
        TimeProvider time,
        ILogger<AgentLoop> logger,
        Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        (_options, _api, _store, _keys, _probe, _metrics, _time, _logger, _random) = (options, api, store, keys, probe, metrics, time, logger, random);
    }

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled (exit code 0), or until the key file is unusable or
    /// registration is rejected for good (exit code 2, the reason and the problem's detail and errors logged).
    /// </summary>
    /// <returns>The process exit code.</returns>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var maxAge = _options.TokenMaxAge;
        AgentLog.Starting(_logger, _options.NodeId, _options.Region, _options.Runtime.ToWire(), TokenStore.NormaliseApi(_options.Api),
            _options.OllamaUrl.AbsoluteUri, _options.Interval.TotalSeconds, _store.ConfigDir,
            _options.JoinToken is null ? "not set" : "set",
            maxAge > TimeSpan.Zero ? $"after {maxAge.TotalSeconds:0} s" : "off");
        if (_options.Runtime != NodeRuntime.Ollama)
        {
            AgentLog.NoProbeForRuntime(_logger, _options.Runtime.ToWire());
        }

        try
        {
            _key = _keys.LoadOrCreate(_options.NodeId);
        }
        catch (NodeKeyFileException e)
        {
            AgentLog.KeyUnusable(_logger, e.Message);
            return AgentCommandLine.ConfigurationErrorExitCode;
        }

        using var key = _key;
        if (key.Created)
        {
            AgentLog.KeyCreated(_logger, key.Fingerprint, key.Path);
        }
        else
        {
            AgentLog.KeyLoaded(_logger, key.Fingerprint, key.Path);
        }

        // A key read from disk may be enrolled already: then registering again needs its proof, not the join token.
        _keyMayBeEnrolled = !key.Created;
        LoadStoredToken();
        using var companionStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var companion = Companion is { } c
            ? Task.Run(() => c.RunAsync(key, () => _credentials, companionStop.Token), CancellationToken.None)
            : Task.CompletedTask;
        var pipeline = RetryPolicy.Create((e, _) => e is not RegistrationRejectedException, int.MaxValue, _time, OnRetry, _random);
        try
        {
            using var timer = new PeriodicTimer(_options.Interval, _time);
            _timer = timer;
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
            AgentLog.RegisterRejected(_logger, (int)e.Failure.StatusCode, Describe(e.Failure), e.Hint);
            return AgentCommandLine.ConfigurationErrorExitCode;
        }
        finally
        {
            await _receipt;
            await companionStop.CancelAsync();
            await AwaitCompanionAsync(companion);
        }
    }

    /// <summary>
    /// Runs beside the heartbeats once the key is loaded (issue 13: status file and coordinator link); stopped with the
    /// loop and awaited before the key is disposed. Null: heartbeats only.
    /// </summary>
    public ILoopCompanion? Companion { get; init; }

    private async Task AwaitCompanionAsync(Task companion)
    {
        try
        {
            await companion;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            AgentLog.CompanionFailed(_logger, e.Message);
        }
    }

    /// <summary>One tick: probe, measure, enroll if needed, rotate if due, heartbeat; re-registers once when the token is rejected.</summary>
    private async ValueTask TickAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetUtcNow();
        var runtime = _options.Runtime == NodeRuntime.Ollama
            ? await _probe.ProbeAsync(cancellationToken)
            : new OllamaStatus(false, [], $"no readiness probe for runtime {_options.Runtime.ToWire()}");
        ReportRuntime(runtime);
        Companion?.OnRuntimeProbed(runtime);
        var sample = await _metrics.MeasureAsync(cancellationToken);
        var heartbeat = new HeartbeatRequest { Ready = runtime.Ready, MemUsedGb = sample.MemUsedGb, GpuUtil = sample.GpuUtil };

        var fresh = _credentials is null;
        var credentials = _credentials ?? await EnrollAsync(cancellationToken);
        if (!fresh)
        {
            credentials = await RotateIfDueAsync(credentials, cancellationToken);
        }

        HeartbeatResponse? response;
        try
        {
            response = await SendHeartbeatAsync(credentials, heartbeat, cancellationToken);
        }
        catch (NodeApiException e) when (e.Kind == ApiFailureKind.TokenRejected && !fresh)
        {
            AgentLog.TokenRejected(_logger, Describe(e), _key!.Fingerprint);
            _credentials = null;
            _reRegistering = true;
            credentials = await EnrollAsync(cancellationToken);
            response = await SendHeartbeatAsync(credentials, heartbeat, cancellationToken);
        }

        if (response is null)
        {
            return; // replayed: the next tick carries a later timestamp
        }

        ReportSuccess();
        ReportPhase(response.Status);
        AdoptInterval(response.HeartbeatIntervalSeconds);
        if (_options.SampleReceipt && !_receiptStarted && response.Status == NodePhase.Active.ToWire())
        {
            _receiptStarted = true;
            _receipt = PostSampleReceiptAsync(credentials, runtime, started, cancellationToken);
        }
    }

    /// <summary>
    /// Issue 11: the API stretches the heartbeat interval as the fleet grows (<c>heartbeat_interval_s</c>). The agent
    /// follows a longer interval than its own <c>--interval</c>, never a shorter one (the node operator's choice of a
    /// slower pace stands), and goes back to its own when the API asks for less.
    /// </summary>
    private void AdoptInterval(int? seconds)
    {
        if (_timer is null || seconds is not { } s)
        {
            return;
        }

        var wanted = s > 0 ? TimeSpan.FromSeconds(Math.Min(s, AgentOptions.MaxIntervalSeconds)) : _options.Interval;
        var next = wanted > _options.Interval ? wanted : _options.Interval;
        if (next != _timer.Period)
        {
            AgentLog.IntervalChanged(_logger, _timer.Period.TotalSeconds, next.TotalSeconds, s);
            _timer.Period = next;
        }
    }

    /// <summary>The heartbeat, or null when the API refused its timestamp as replayed (logged once per state change).</summary>
    private async Task<HeartbeatResponse?> SendHeartbeatAsync(NodeCredentials credentials, HeartbeatRequest heartbeat, CancellationToken cancellationToken)
    {
        try
        {
            return await _api.HeartbeatAsync(credentials, heartbeat, cancellationToken);
        }
        catch (NodeApiException e) when (e.Kind == ApiFailureKind.Replayed)
        {
            ReportFailure(e);
            return null;
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
                _registeredAt = token.RegisteredAt;
                _tokenIssuedAt = token.TokenIssuedAt;
                _keyMayBeEnrolled = true; // the node is registered: registering it again must prove the key
                AgentLog.TokenReused(_logger, token.NodeId, _store.PathFor(token.NodeId), token.RegisteredAt, token.TokenIssuedAt);
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

    /// <summary>
    /// Registers the node (issue 9 contract): signed with the node key when the API may know it, falling back to the
    /// join token when the API answers 401 join-token-required; with the join token (or unsigned, for an API with open
    /// registration) when the key was generated in this run and no token was stored. Saves the token.
    /// </summary>
    /// <exception cref="RegistrationRejectedException">The API rejected the registration for good.</exception>
    private async Task<NodeCredentials> EnrollAsync(CancellationToken cancellationToken)
    {
        var key = _key!;
        var request = new RegisterRequest
        {
            NodeId = _options.NodeId,
            Region = _options.Region,
            Runtime = _options.Runtime.ToWire(),
            AsnHint = _options.AsnHint,
            WalletAddress = _options.WalletAddress,
            GreenEnergy = _options.GreenEnergy,
            PublicKey = key.PublicKeyText,
        };

        RegisterResponse response;
        if (_keyMayBeEnrolled)
        {
            try
            {
                response = await _api.RegisterAsync(request, joinToken: null, proofKey: key.Key, cancellationToken);
            }
            catch (NodeApiException e) when (e.ProblemIs("join-token-required") && _options.JoinToken is not null)
            {
                AgentLog.EnrollingWithJoinToken(_logger, Describe(e));
                response = await RegisterWithJoinTokenAsync(request, afterKeyUnknown: true, cancellationToken);
            }
            catch (NodeApiException e) when (IsFinal(e))
            {
                throw new RegistrationRejectedException(e, Hint(e, keySigned: true, afterKeyUnknown: false));
            }
        }
        else
        {
            response = await RegisterWithJoinTokenAsync(request, afterKeyUnknown: false, cancellationToken);
        }

        var credentials = new NodeCredentials(_options.NodeId, response.NodeToken);
        _credentials = credentials;
        _keyMayBeEnrolled = true;
        var now = _time.GetUtcNow();
        (_registeredAt, _tokenIssuedAt, _nextRotationAttempt) = (now, now, DateTimeOffset.MinValue);
        var path = SaveToken(new StoredToken(TokenStore.NormaliseApi(_options.Api), _options.NodeId, response.NodeToken, now, now));
        if (_reRegistering)
        {
            AgentLog.ReRegistered(_logger, _options.NodeId, key.Fingerprint, path);
        }
        else
        {
            AgentLog.Registered(_logger, _options.NodeId, key.Fingerprint, path);
        }

        _reRegistering = false;
        return credentials;
    }

    private async Task<RegisterResponse> RegisterWithJoinTokenAsync(RegisterRequest request, bool afterKeyUnknown, CancellationToken cancellationToken)
    {
        try
        {
            return await _api.RegisterAsync(request, _options.JoinToken?.Value, proofKey: null, cancellationToken);
        }
        catch (NodeApiException e) when (IsFinal(e))
        {
            throw new RegistrationRejectedException(e, Hint(e, keySigned: false, afterKeyUnknown));
        }
    }

    /// <summary>Rotates the token when it is older than the max age (and no failed attempt asks to wait); never throws but for cancellation.</summary>
    /// <returns>The credentials to sign with: the new ones after a rotation, else <paramref name="credentials"/>.</returns>
    private async Task<NodeCredentials> RotateIfDueAsync(NodeCredentials credentials, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (_options.TokenMaxAge <= TimeSpan.Zero || now - _tokenIssuedAt < _options.TokenMaxAge || now < _nextRotationAttempt)
        {
            return credentials;
        }

        try
        {
            var rotated = await _api.RotateTokenAsync(_options.NodeId, _key!.Key, cancellationToken);
            var fresh = new NodeCredentials(_options.NodeId, rotated.NodeToken);
            _credentials = fresh;
            _tokenIssuedAt = _time.GetUtcNow();
            var path = SaveToken(new StoredToken(TokenStore.NormaliseApi(_options.Api), _options.NodeId, rotated.NodeToken, _registeredAt, _tokenIssuedAt));
            AgentLog.TokenRotated(_logger, _options.NodeId, path, AsUtc(rotated.PreviousTokenValidUntil));
            return fresh;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is NodeApiException or HttpRequestException or OperationCanceledException)
        {
            var api = e as NodeApiException;
            var wait = api?.Kind == ApiFailureKind.Replayed ? TimeSpan.Zero : RotationRetryDelay;
            _nextRotationAttempt = now + wait;
            var hint = api switch
            {
                null => "",
                _ when api.ProblemIs("bad-proof") =>
                    $"The API does not accept node key {_key!.Fingerprint}; if an older agent registered this node without a key, enroll the key: stop the agent, delete {_store.PathFor(_options.NodeId)} and start it with a join token.",
                _ when api.Kind == ApiFailureKind.TokenRejected => "The API does not know the node; the next heartbeat re-registers it.",
                _ => "",
            };
            AgentLog.TokenRotationFailed(_logger, api is null ? e.Message : Describe(api), hint, wait.TotalSeconds);
            return credentials;
        }
    }

    private string SaveToken(StoredToken token)
    {
        var path = _store.PathFor(token.NodeId);
        try
        {
            return _store.Save(token);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.TokenSaveFailed(_logger, path, e.Message);
            return path;
        }
    }

    private static bool IsFinal(NodeApiException e) => e.Kind is not (ApiFailureKind.Transient or ApiFailureKind.Replayed);

    private static DateTimeOffset AsUtc(DateTime time) => time.Kind switch
    {
        DateTimeKind.Local => new DateTimeOffset(time.ToUniversalTime(), TimeSpan.Zero),
        _ => new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc), TimeSpan.Zero),
    };

    /// <summary>What to do about a registration the API rejected for good: the sentence logged after the problem.</summary>
    private string Hint(NodeApiException e, bool keySigned, bool afterKeyUnknown)
    {
        const string NewJoinToken = "an admin creates one with POST /v1/admin/join-tokens; start the agent with it in DGON_JOIN_TOKEN (or --join-token)";
        var node = _options.NodeId;
        var key = _key!;
        var reset = $"have an admin reset the node's key (POST /v1/admin/nodes/{node}/reset-key) and enroll again with a join token";
        if (e.ProblemIs("join-token-required"))
        {
            return keySigned || afterKeyUnknown
                ? $"The server no longer knows this node's key; get a new join token: the node {node} was deleted or an admin reset its key, so only a join token can enroll it again ({NewJoinToken})."
                : $"The API needs a join token to enroll node {node}: {NewJoinToken}.";
        }

        if (e.ProblemIs("join-token-region"))
        {
            return $"The join token is bound to another region than {_options.Region} (--region / REGION): use a token for this region.";
        }

        if (e.Problem?.Type is { } type && type.Contains("/join-token-", StringComparison.Ordinal))
        {
            return $"The join token was refused: get a new one ({NewJoinToken}).";
        }

        if (e.ProblemIs("key-mismatch"))
        {
            return $"The API holds another public key for node {node} than {key.Fingerprint} in {key.Path}: restore the original key file, or {reset}.";
        }

        if (e.ProblemIs("proof-required"))
        {
            return keySigned
                ? $"The API did not accept the proof signed with node key {key.Fingerprint} ({key.Path}): either it holds another key for node {node} (restore the original key file, or {reset}), or this machine's clock is more than 120 s off (enable NTP)."
                : $"Node {node} is already enrolled with a key, and this machine's key {key.Fingerprint} ({key.Path}) was just generated: restore the original key file, {reset}, or use another --node-id.";
        }

        return "Fix the configuration and start again.";
    }

    private static string Describe(NodeApiException e) => e.Problem?.ToString() ?? e.Message;

    private async Task PostSampleReceiptAsync(NodeCredentials initial, OllamaStatus runtime, DateTimeOffset started, CancellationToken cancellationToken)
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
                async ct => await _api.PostReceiptAsync(_credentials ?? initial, receipt, ct), cancellationToken);
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

    private void OnRetry(Exception failure, int attempt, TimeSpan delay)
    {
        AgentLog.RetryScheduled(_logger, attempt + 1, delay.TotalMilliseconds, failure.Message);
        ReportFailure(failure);
    }

    /// <summary>Logs a failure when it differs from the previous one (one line per state change).</summary>
    private void ReportFailure(Exception failure)
    {
        var (state, log) = failure switch
        {
            NodeApiException { Kind: ApiFailureKind.ClockSkew } e => ("clock-skew", (Action)(() => AgentLog.ClockSkew(_logger, Describe(e)))),
            NodeApiException { Kind: ApiFailureKind.Replayed, Operation: "heartbeat" } e => ("replayed-heartbeat", () => AgentLog.HeartbeatReplayed(_logger, Describe(e))),
            NodeApiException { Kind: ApiFailureKind.Rejected or ApiFailureKind.TokenRejected or ApiFailureKind.Replayed } e =>
                ($"rejected-{e.Operation}-{(int)e.StatusCode}-{e.Problem?.Type}", () => AgentLog.RequestRejected(_logger, e.Operation, (int)e.StatusCode, Describe(e))),
            _ => (FailureUnreachable, () => AgentLog.ApiUnreachable(_logger, failure.Message)),
        };

        if (!string.Equals(state, _failureState, StringComparison.Ordinal))
        {
            _failureState = state;
            log();
        }
    }

    /// <summary>Register answered a 4xx other than 408, 429 and 401 replayed (or a 3xx): the configuration is wrong, retrying cannot help.</summary>
    private sealed class RegistrationRejectedException(NodeApiException failure, string hint) : Exception(failure.Message, failure)
    {
        public NodeApiException Failure { get; } = failure;

        public string Hint { get; } = hint;
    }
}
