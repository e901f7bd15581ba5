using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Dgon.Api.Configuration;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;
using k8s;
using k8s.Models;

namespace Dgon.Api.Kubernetes;

/// <summary>
/// <see cref="INodeRegistry"/> on DgonNode custom resources (issues 3 and 9, <c>DGON_REGISTRY=kubernetes</c>).
/// <list type="bullet">
/// <item>Register creates or updates the DgonNode's spec (with <c>spec.publicKey</c>, the node's Ed25519 key) and a
/// per-node Secret <c>dgonnode-&lt;id&gt;</c> holding the HMAC token, owned by the DgonNode (ownerReference), so
/// <c>kubectl delete dgonnode X</c> revokes the node. The <see cref="RegistrationPrecondition"/> is checked on the
/// DgonNode as cached (or as last written here) and enforced by the spec write itself: it carries that
/// resourceVersion, so when the node changed meanwhile the write fails with 409, the node is re-read and the
/// precondition checked again. A failed precondition writes nothing.</item>
/// <item>Tokens are served from informer caches of DgonNodes and Secrets (no API-server round trip per heartbeat).
/// A token counts only while its Secret is owned by the current DgonNode (same uid) and, when the Secret names the
/// key its tokens were issued for (annotation <c>dgon.io/public-key</c>), while the DgonNode still has that key:
/// an admin's <c>kubectl patch dgonnode X --type=merge -p '{"spec":{"publicKey":null}}'</c> revokes them.</item>
/// <item>Rotation keeps the replaced token in the Secret as <c>previous-token</c> until
/// <c>previous-token-valid-until</c> (RFC 3339). Reset removes <c>spec.publicKey</c> and every token from the Secret.</item>
/// <item>One writer per field (issue 10): the API writes only what it observes — spec at registration, and in status
/// <c>lastRegistrationTime</c>, <c>lastHeartbeatTime</c>, <c>ready</c>, the reported metrics and
/// <c>authFailures</c>. Phase, conditions, reputation and Events are the operator's. These status writes are merge
/// patches of the API's own fields only, so they need no resourceVersion precondition and never conflict with the
/// operator's writes.</item>
/// <item>Heartbeat observations are throttled per node by <see cref="StatusWriteCoalescing"/> (leading and trailing
/// edge): written at once when they matter to the operator's decision, else held and written at the last write +
/// the refresh interval by <see cref="RunFlusherAsync"/>, so steady nodes cost at most one status write per refresh
/// interval and <c>status.lastHeartbeatTime</c> is never more than that interval behind the real last heartbeat.
/// A held observation lives only in this process: if it crashes, the node's recorded heartbeat is up to one refresh
/// interval older than the truth until its next heartbeat.</item>
/// <item>Issue 11: every heartbeat status write spends a token of this replica's <see cref="StatusWriteBudget"/>
/// (<c>DGON_STATUS_WRITES_PER_SECOND</c>). Writes that change the operator's decision
/// (<see cref="StatusWriteCoalescing.ChangesDecision"/>) go first: written at once when a token is there, else held
/// and written by the flusher before any refresh write. Refresh writes (leading or trailing) wait for tokens, oldest
/// due first, so a fleet above the budget sees its recorded <c>lastHeartbeatTime</c> lag grow
/// (<c>dgon_kubernetes_status_writes_pending</c>, <c>dgon_kubernetes_status_write_lag_seconds</c>) instead of the API
/// server seeing more writes. The refresh interval in effect is the longer of <c>DGON_STATUS_REFRESH_SECONDS</c> and
/// the heartbeat interval told to nodes (<see cref="Fleet.HeartbeatIntervals"/>): a node heartbeating every 40 s
/// needs no 10 s refresh. Registration and auth-failure writes are not budgeted (they follow registrations and
/// failed requests, both rate-limited at the edge).</item>
/// </list>
/// Writes are also kept locally (write-through), so the next request sees them before the watch echoes them back.
/// Kubernetes verbs used: DgonNodes get, list, watch, create, patch; dgonnodes/status patch; Secrets get, list,
/// watch, create, update.
/// </summary>
public sealed partial class KubernetesNodeRegistry : INodeRegistry, INodeAdministration
{
    private const int MaxWriteAttempts = 8;

    /// <summary>How often held observations are checked for being due (adds at most this much to the trailing write).</summary>
    public static readonly TimeSpan FlushTick = TimeSpan.FromMilliseconds(250);

    // A trailing write later than this after its due time (it waited for the budget) counts from when it was made.
    private static readonly TimeSpan MaxAnchorLateness = 4 * FlushTick;

    private readonly IKubernetes _client;
    private readonly IInformer<DgonNode> _nodes;
    private readonly IInformer<V1Secret> _secrets;
    private readonly NodeLifecycle _lifecycle;
    private readonly TimeProvider _clock;
    private readonly ILogger<KubernetesNodeRegistry> _logger;
    private readonly TimeSpan _refresh;
    private readonly StatusWriteBudget _budget;
    private readonly Fleet.HeartbeatIntervals? _intervals;
    private readonly ConcurrentDictionary<string, DgonNode> _writtenNodes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Held> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastWrite = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, V1Secret> _writtenSecrets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly Counter<long> _statusWrites;
    private volatile int _pending; // due (or decision-changing) observations left waiting for a token by the last flush
    private volatile int _decisivePending; // of which change the operator's decision
    private long _lagTicks; // how long the oldest of them had been due, at the last flush
    private DateTimeOffset _bindingLoggedAt = DateTimeOffset.MinValue;

    /// <summary>
    /// Creates the registry over running (or soon running) informers of the namespace's DgonNodes and node Secrets.
    /// <c>intervals</c> is the heartbeat interval told to nodes, which stretches the refresh interval; null (tests) =
    /// the configured refresh interval only.
    /// </summary>
    public KubernetesNodeRegistry(
        IKubernetes client,
        IInformer<DgonNode> nodes,
        IInformer<V1Secret> secrets,
        KubeNamespace ns,
        KubernetesRegistryOptions options,
        NodeLifecycle lifecycle,
        TimeProvider clock,
        IMeterFactory meters,
        ILogger<KubernetesNodeRegistry> logger,
        Fleet.HeartbeatIntervals? intervals = null)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(meters);
        _client = client;
        _nodes = nodes;
        _secrets = secrets;
        Namespace = ns.Name;
        _refresh = options.StatusRefreshInterval;
        _budget = new StatusWriteBudget(options.StatusWritesPerSecond, clock);
        _intervals = intervals;
        _lifecycle = lifecycle;
        _clock = clock;
        _logger = logger;
        _statusWrites = meters.Create(Observability.ApiMetrics.MeterName).CreateCounter<long>(
            "dgon_kubernetes_status_writes_total", unit: null, description: "DgonNode status writes by the ingress API, by reason (register, heartbeat, heartbeat_trailing, auth_failures).");
        // Only deletions matter: they drop our write-through copies (additions and updates are read from the caches).
        var meter = meters.Create(Observability.ApiMetrics.MeterName);
        meter.CreateObservableGauge(
            "dgon_kubernetes_status_writes_pending", () => _pending, unit: null,
            description: "Heartbeat observations due for a DgonNode status write but waiting for the status-write budget (DGON_STATUS_WRITES_PER_SECOND), at the last flush.");
        meter.CreateObservableGauge(
            "dgon_kubernetes_status_write_lag_seconds", () => TimeSpan.FromTicks(Interlocked.Read(ref _lagTicks)).TotalSeconds, unit: null,
            description: "How long the oldest observation waiting for the status-write budget had been due, at the last flush (0 while the budget holds).");
        nodes.AddHandler(new InformerHandler<DgonNode>(onDelete: OnNodeDeleted));
        secrets.AddHandler(new InformerHandler<V1Secret>(onDelete: OnSecretDeleted));
    }

    /// <summary>Namespace of the DgonNodes and their Secrets.</summary>
    public string Namespace { get; }

    /// <summary>Whether both caches have completed their initial list.</summary>
    public bool HasSynced => _nodes.HasSynced && _secrets.HasSynced;

    /// <inheritdoc />
    /// <remarks>
    /// The key written: with <see cref="RegistrationPrecondition.Any"/> or <see cref="RegistrationPrecondition.Keyless"/>
    /// the registration's key when it has one (else the stored key stays); with
    /// <see cref="RegistrationPrecondition.KeyIs"/> the stored key stays. The node's Secret is replaced by one holding
    /// only <paramref name="nodeToken"/>, bound to the resulting <c>spec.publicKey</c>.
    /// </remarks>
    /// <exception cref="k8s.Autorest.HttpOperationException">The API server refused a write (after conflict retries).</exception>
    public async Task<RegisterOutcome> RegisterAsync(NodeRegistration registration, string nodeToken, RegistrationPrecondition precondition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentNullException.ThrowIfNull(precondition);
        var id = registration.NodeId;
        var gate = Lock(id);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var node = await UpsertSpecAsync(registration, precondition, cancellationToken);
            if (node is null)
            {
                LogPreconditionFailed(id, precondition.ExpectedPublicKey is null ? "absent or keyless" : "enrolled with the proven key");
                return new RegisterOutcome(null);
            }

            _writtenNodes[id] = node;
            var data = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [DgonNodeMapping.TokenKey] = Encoding.UTF8.GetBytes(nodeToken) };
            _writtenSecrets[id] = await WriteSecretAsync(node, data, cancellationToken);

            _held.TryRemove(id, out _); // an observation from before this registration must not follow it
            var (patch, status) = DgonNodeMapping.StatusPatch(resourceVersion: null);
            status["ready"] = false;
            status["lastRegistrationTime"] = DgonNodeMapping.MicroTime(_clock.GetUtcNow());
            try
            {
                node = await _client.PatchDgonNodeStatusAsync(Namespace, id, patch, cancellationToken);
                _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", "register"));
            }
            catch (Exception e) when (e.IsNotFound())
            {
                return new RegisterOutcome(null); // deleted in between
            }

            _writtenNodes[id] = node;
            // The phase this registration leads to (the operator writes it): pending, or quarantine while held.
            var record = DgonNodeMapping.ToRecord(node);
            var transition = _lifecycle.Apply(new NodeLifecycleState(record.Phase, DgonNodeMapping.LastSeen(node)), new NodeEvent.Registered());
            return new RegisterOutcome(record with { Phase = transition.Phase });
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    /// <exception cref="KubernetesNotReadyException">The caches have not completed their first list yet.</exception>
    public Task<NodeCredentials?> GetCredentialsAsync(string nodeId, CancellationToken cancellationToken)
    {
        EnsureSynced();
        var node = CurrentNode(nodeId);
        if (node is null)
        {
            return Task.FromResult<NodeCredentials?>(null);
        }

        return Task.FromResult<NodeCredentials?>(new NodeCredentials(ValidTokens(node, CurrentSecret(nodeId)), node.Spec.PublicKey));
    }

    /// <inheritdoc />
    /// <remarks>
    /// Reads the DgonNode and its Secret from the API server (rotations are rare; the cache may lag), then replaces
    /// the Secret: <c>token</c> = <paramref name="newToken"/>, <c>previous-token</c> = the token valid until now (when
    /// there is one), <c>previous-token-valid-until</c> = <paramref name="previousValidUntil"/>; conflicts are retried
    /// on a fresh read.
    /// </remarks>
    /// <exception cref="k8s.Autorest.HttpOperationException">The API server refused the write (after conflict retries).</exception>
    public async Task<bool> RotateTokenAsync(string nodeId, string newToken, DateTimeOffset previousValidUntil, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(newToken);
        var gate = Lock(nodeId);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var node = await _client.TryGetDgonNodeAsync(Namespace, nodeId, cancellationToken);
            if (node is null)
            {
                return false;
            }

            Remember(node);
            var secret = await KubeRetry.OnConflictAsync(
                async ct =>
                {
                    var current = await _client.TryReadSecretAsync(Namespace, DgonNodeMapping.SecretName(nodeId), ct);
                    var data = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [DgonNodeMapping.TokenKey] = Encoding.UTF8.GetBytes(newToken) };
                    if (ValidTokens(node, current) is [var previous, ..])
                    {
                        data[DgonNodeMapping.PreviousTokenKey] = Encoding.UTF8.GetBytes(previous);
                        data[DgonNodeMapping.PreviousTokenValidUntilKey] = Encoding.UTF8.GetBytes(DgonNodeMapping.MicroTime(previousValidUntil));
                    }

                    return await PutSecretAsync(node, data, current, ct);
                },
                _clock,
                cancellationToken);
            _writtenSecrets[nodeId] = secret;
            LogRotated(nodeId, DgonNodeMapping.Time(previousValidUntil));
            return true;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Removes <c>spec.publicKey</c> (merge patch; what <c>kubectl patch dgonnode X --type=merge -p
    /// '{"spec":{"publicKey":null}}'</c> does) and every token from the node's Secret (the Secret stays, empty, owned
    /// by the DgonNode). The DgonNode and its status stay.
    /// </remarks>
    /// <exception cref="k8s.Autorest.HttpOperationException">The API server refused a write.</exception>
    public async Task<bool> ResetIdentityAsync(string nodeId, CancellationToken cancellationToken)
    {
        var gate = Lock(nodeId);
        await gate.WaitAsync(cancellationToken);
        try
        {
            DgonNode node;
            try
            {
                node = await _client.PatchDgonNodeAsync(Namespace, nodeId, new JsonObject { ["spec"] = new JsonObject { ["publicKey"] = null } }, cancellationToken);
            }
            catch (Exception e) when (e.IsNotFound())
            {
                return false;
            }

            Remember(node);
            var secret = await KubeRetry.OnConflictAsync(
                async ct =>
                {
                    var current = await _client.TryReadSecretAsync(Namespace, DgonNodeMapping.SecretName(nodeId), ct);
                    return current is null ? null : await PutSecretAsync(node, new Dictionary<string, byte[]>(StringComparer.Ordinal), current, ct);
                },
                _clock,
                cancellationToken);
            if (secret is not null)
            {
                _writtenSecrets[nodeId] = secret;
            }

            LogReset(nodeId);
            return true;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// A merge patch of <c>spec.quarantine</c>, the admin's intent (issue 12); the operator then moves
    /// <c>status.phase</c> and records the Event. The status is never written here.
    /// </remarks>
    public async Task<bool> SetQuarantineAsync(string nodeId, bool quarantine, CancellationToken cancellationToken)
    {
        try
        {
            var node = await _client.PatchDgonNodeAsync(Namespace, nodeId, new JsonObject { ["spec"] = new JsonObject { ["quarantine"] = quarantine } }, cancellationToken);
            Remember(node);
            return true;
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return false;
        }
    }

    /// <inheritdoc />
    /// <remarks>Deletes the DgonNode; its Secret goes with it by garbage collection (owner reference).</remarks>
    public async Task<bool> DeleteAsync(string nodeId, CancellationToken cancellationToken)
    {
        try
        {
            await _client.DeleteDgonNodeAsync(Namespace, nodeId, null, null, cancellationToken);
            _writtenSecrets.TryRemove(nodeId, out _);
            return true;
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return false;
        }
    }

    /// <inheritdoc />
    public async Task<PhaseChange?> RecordHeartbeatAsync(string nodeId, NodeHeartbeat heartbeat, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        var gate = Lock(nodeId);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var node = CurrentNode(nodeId);
            if (node is null)
            {
                return null;
            }

            var now = _clock.GetUtcNow();
            var from = DgonNodeMapping.Phase(node);
            // The phase this heartbeat leads to, reported to the node; the operator decides and writes it.
            var transition = _lifecycle.Apply(new NodeLifecycleState(from, DgonNodeMapping.LastSeen(node)), new NodeEvent.HeartbeatReceived(heartbeat.Ready));
            var change = new PhaseChange(nodeId, from, transition.Phase, transition.Reason);
            var observation = new Observation(now, heartbeat);
            var recorded = DgonNodeMapping.Recorded(node, _lastWrite.TryGetValue(nodeId, out var last) ? last : null);
            var decisive = StatusWriteCoalescing.ChangesDecision(recorded, heartbeat.Ready);
            // Inline only while nothing of its kind waits for a token: once the budget binds, the flusher hands the
            // tokens out, decision-changing writes first, then oldest due first. (Measured: letting heartbeats take
            // tokens as they arrived starved some nodes for 90 s with a 25 s fair share; bench/README.md section 3.)
            if (!StatusWriteCoalescing.WriteNow(recorded, heartbeat.Ready, now, EffectiveRefresh())
                || !((decisive ? _decisivePending == 0 : _pending == 0) && _budget.TryTake()))
            {
                if (decisive && !_held.ContainsKey(nodeId))
                {
                    Interlocked.Increment(ref _decisivePending);
                }

                _held[nodeId] = new Held(observation, decisive);
                return change;
            }

            _held.TryRemove(nodeId, out _);
            return await WriteObservationAsync(nodeId, observation, "heartbeat", null, cancellationToken) ? change : null;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Writes held heartbeat observations once due (the trailing edge of <see cref="StatusWriteCoalescing"/>), every
    /// <see cref="FlushTick"/> until cancelled. Failures are logged and retried at the next tick.
    /// </summary>
    public async Task RunFlusherAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(FlushTick, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                await FlushDueAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Writes held observations as far as the status-write budget allows: first those that change the operator's
    /// decision (oldest first), then those whose due time has come (oldest due first); the rest wait for the next
    /// tick and are counted in <see cref="PendingWrites"/>. Returns how many were written.
    /// </summary>
    public async Task<int> FlushDueAsync(CancellationToken ct)
    {
        var now = _clock.GetUtcNow();
        var refresh = EffectiveRefresh();
        var candidates = new List<(string NodeId, Held Held, bool Decisive, DateTimeOffset Due)>();
        foreach (var (nodeId, held) in _held)
        {
            var node = CurrentNode(nodeId);
            if (node is null)
            {
                _held.TryRemove(new KeyValuePair<string, Held>(nodeId, held));
                continue;
            }

            var recorded = DgonNodeMapping.Recorded(node, _lastWrite.TryGetValue(nodeId, out var last) ? last : null);
            // Decided on the recorded state, not the flag kept when it was held: a write may have landed since.
            if (StatusWriteCoalescing.ChangesDecision(recorded, held.Observation.Heartbeat.Ready))
            {
                candidates.Add((nodeId, held, true, held.Observation.Time));
            }
            else if (StatusWriteCoalescing.DueAt(recorded, refresh) is var due && now >= due)
            {
                candidates.Add((nodeId, held, false, due));
            }
        }

        candidates.Sort((a, b) => a.Decisive != b.Decisive ? (a.Decisive ? -1 : 1) : a.Due.CompareTo(b.Due));
        var written = 0;
        var taken = 0;
        for (; taken < candidates.Count && _budget.TryTake(); taken++)
        {
            var (nodeId, held, decisive, due) = candidates[taken];
            var gate = Lock(nodeId);
            await gate.WaitAsync(ct);
            try
            {
                // Only if no newer heartbeat replaced or wrote it meanwhile.
                if (_held.TryRemove(new KeyValuePair<string, Held>(nodeId, held)))
                {
                    try
                    {
                        if (await WriteObservationAsync(nodeId, held.Observation, decisive ? "heartbeat" : "heartbeat_trailing", decisive ? null : due, ct))
                        {
                            written++;
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        _held.TryAdd(nodeId, held);
                        LogFlushFailed(nodeId, e);
                    }
                }
            }
            finally
            {
                gate.Release();
            }
        }

        var waiting = candidates.Count - taken;
        _pending = waiting;
        _decisivePending = candidates.Skip(taken).Count(c => c.Decisive);
        var lag = waiting > 0 ? now - candidates.Skip(taken).Min(c => c.Due) : TimeSpan.Zero;
        Interlocked.Exchange(ref _lagTicks, Math.Max(0, lag.Ticks));
        // The flusher is the only caller in production; at most one warning a minute.
        if (waiting > 0 && now - _bindingLoggedAt >= TimeSpan.FromMinutes(1))
        {
            _bindingLoggedAt = now;
            LogBudgetBinding(waiting, _budget.WritesPerSecond, refresh.TotalSeconds);
        }

        return written;
    }

    /// <summary>Observations left waiting for the status-write budget by the last flush (the <c>dgon_kubernetes_status_writes_pending</c> gauge).</summary>
    public int PendingWrites => _pending;

    /// <summary>
    /// The refresh interval in effect: the longer of <c>DGON_STATUS_REFRESH_SECONDS</c> and the heartbeat interval told
    /// to nodes (which is at most a third of the grace period, so the lag stays inside it).
    /// </summary>
    public TimeSpan EffectiveRefresh()
    {
        var told = _intervals is null ? TimeSpan.Zero : TimeSpan.FromSeconds(_intervals.CurrentSeconds);
        return told > _refresh ? told : _refresh;
    }

    /// <summary>Number of heartbeat observations held for a trailing write.</summary>
    public int HeldObservations => _held.Count;

    // A trailing write counts as made at its due time, not when the flush tick got to it: otherwise each tick's delay
    // (up to FlushTick) would push the next due time later, and with a fixed-rate agent whose heartbeats arrive just
    // before the due time the hold would grow heartbeat by heartbeat (measured by bench/kubernetes-mode.sh: kubectl
    // showed heartbeats up to two intervals old after 6 minutes). Anchored, the writes stay one refresh interval apart.
    private async Task<bool> WriteObservationAsync(string nodeId, Observation observation, string reason, DateTimeOffset? due, CancellationToken ct)
    {
        var started = _clock.GetUtcNow(); // before the round trip: its latency must not push the next due time either
        // Only the API's own fields: no resourceVersion precondition, no conflict with the operator's writes.
        var (patch, status) = DgonNodeMapping.StatusPatch(resourceVersion: null);
        status["ready"] = observation.Heartbeat.Ready;
        status["lastHeartbeatTime"] = DgonNodeMapping.MicroTime(observation.Time);
        status["gpuUtil"] = observation.Heartbeat.Metrics.GpuUtil;
        status["memUsedGb"] = observation.Heartbeat.Metrics.MemUsedGb;
        status["p95Ms"] = observation.Heartbeat.Metrics.P95Ms;
        try
        {
            // A real API server cannot answer 409 to a patch without a precondition; a proxy or webhook may: retry.
            _writtenNodes[nodeId] = await KubeRetry.OnConflictAsync(c => _client.PatchDgonNodeStatusAsync(Namespace, nodeId, patch, c), _clock, ct);
        }
        catch (Exception e) when (e.IsNotFound())
        {
            return false;
        }

        _lastWrite[nodeId] = due is { } d && d < started && started - d <= MaxAnchorLateness ? d : started;
        _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", reason));
        return true;
    }

    /// <inheritdoc />
    /// <remarks>Writes <c>status.authFailures</c> (a merge patch of the API's own field); the operator acts on it and clears it.</remarks>
    public async Task RecordAuthFailuresAsync(string nodeId, AuthFailureRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var (patch, status) = DgonNodeMapping.StatusPatch(resourceVersion: null);
        status["authFailures"] = new JsonObject
        {
            ["count"] = record.Count,
            ["firstFailureTime"] = DgonNodeMapping.Time(record.FirstFailureTime),
            ["lastFailureTime"] = DgonNodeMapping.Time(record.LastFailureTime),
            ["lastReason"] = record.LastReason,
        };
        try
        {
            _writtenNodes[nodeId] = await _client.PatchDgonNodeStatusAsync(Namespace, nodeId, patch, cancellationToken);
            _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", "auth_failures"));
        }
        catch (Exception e) when (e.IsNotFound())
        {
            // Deleted meanwhile: nothing left to quarantine.
        }
    }

    private void OnNodeDeleted(DgonNode obj)
    {
        if (obj.Metadata.Name is { } name)
        {
            // Only forget our copy if it is not newer than the deletion (a re-creation may already have been written).
            if (_writtenNodes.TryGetValue(name, out var written) && written.Metadata.Uid == obj.Metadata.Uid)
            {
                _writtenNodes.TryRemove(name, out _);
            }

            _held.TryRemove(name, out _);
            _lastWrite.TryRemove(name, out _);

            LogNodeDeleted(name);
        }
    }

    private void OnSecretDeleted(V1Secret obj)
    {
        if (obj.Metadata.Labels?.ValueOrDefault(DgonNodeMapping.NodeLabel) is { } nodeId
            && _writtenSecrets.TryGetValue(nodeId, out var written) && written.Metadata.Uid == obj.Metadata.Uid)
        {
            _writtenSecrets.TryRemove(nodeId, out _);
        }
    }

    /// <summary>
    /// Creates the DgonNode or merges the declared spec into it, if <paramref name="precondition"/> holds on the node
    /// as it is at the time of the write; null (nothing written) when it does not. A precondition that fails on the
    /// cached copy is checked once more on a fresh read before it is reported.
    /// </summary>
    private async Task<DgonNode?> UpsertSpecAsync(NodeRegistration registration, RegistrationPrecondition precondition, CancellationToken ct)
    {
        var id = registration.NodeId;
        var key = precondition.Unconditional || precondition.ExpectedPublicKey is null ? registration.PublicKey : null;
        var node = CurrentNode(id);
        var fresh = false;
        for (var attempt = 1; attempt <= MaxWriteAttempts; attempt++)
        {
            if (!Holds(precondition, node))
            {
                if (fresh)
                {
                    return null;
                }

                node = await _client.TryGetDgonNodeAsync(Namespace, id, ct);
                fresh = true;
                continue;
            }

            try
            {
                return node is null
                    ? await _client.CreateDgonNodeAsync(DgonNodeMapping.NewNode(Namespace, registration with { PublicKey = key }), ct)
                    : await _client.PatchDgonNodeAsync(Namespace, id, DgonNodeMapping.DeclaredSpecPatch(registration, key, node.Metadata.ResourceVersion), ct);
            }
            catch (Exception e) when (e.IsAlreadyExists() || e.IsConflict() || e.IsNotFound())
            {
                // Created, changed or deleted since we looked: look again and decide on what is there now.
                node = await _client.TryGetDgonNodeAsync(Namespace, id, ct);
                fresh = true;
            }
        }

        throw new InvalidOperationException($"DgonNode {id}: the spec kept changing during {MaxWriteAttempts} registration attempts");
    }

    /// <summary>Whether the precondition holds on <paramref name="node"/> (null: absent).</summary>
    private static bool Holds(RegistrationPrecondition precondition, DgonNode? node) =>
        precondition.Unconditional
        || (precondition.ExpectedPublicKey is { } expected
            ? node is not null && string.Equals(node.Spec.PublicKey, expected, StringComparison.Ordinal)
            : node?.Spec.PublicKey is null);

    /// <summary>
    /// The tokens of <paramref name="secret"/> that authenticate <paramref name="node"/> now: none unless the Secret
    /// is owned by this DgonNode (same uid) and bound to its current key; then the current token, and the previous
    /// one while <c>previous-token-valid-until</c> is in the future.
    /// </summary>
    private List<string> ValidTokens(DgonNode node, V1Secret? secret)
    {
        var tokens = new List<string>(2);
        if (node.Metadata.Uid is not { } uid || secret?.Data is not { } data)
        {
            return tokens;
        }

        // A Secret left over from a deleted DgonNode (garbage collection pending) must not authenticate its successor.
        var owned = secret.Metadata.OwnerReferences?.Any(o => o.Uid == uid && o.Kind == DgonNode.KindValue) ?? false;
        // Tokens issued for a key stop counting when the key is removed or replaced (an admin reset).
        var bound = secret.Metadata.Annotations?.ValueOrDefault(DgonNodeMapping.TokenPublicKeyAnnotation) is not { } issuedFor
            || string.Equals(issuedFor, node.Spec.PublicKey, StringComparison.Ordinal);
        if (!owned || !bound)
        {
            return tokens;
        }

        if (data.TryGetValue(DgonNodeMapping.TokenKey, out var token) && token.Length > 0)
        {
            tokens.Add(Encoding.UTF8.GetString(token));
        }

        if (data.TryGetValue(DgonNodeMapping.PreviousTokenKey, out var previous) && previous.Length > 0
            && data.TryGetValue(DgonNodeMapping.PreviousTokenValidUntilKey, out var untilBytes)
            && DateTimeOffset.TryParse(Encoding.UTF8.GetString(untilBytes), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var until)
            && _clock.GetUtcNow() < until)
        {
            tokens.Add(Encoding.UTF8.GetString(previous));
        }

        return tokens;
    }

    /// <summary>Creates the node's Secret with <paramref name="data"/>, or replaces the existing one (conflicts retried).</summary>
    private async Task<V1Secret> WriteSecretAsync(DgonNode owner, Dictionary<string, byte[]> data, CancellationToken ct)
    {
        try
        {
            return await _client.CoreV1.CreateNamespacedSecretAsync(DesiredSecret(owner, data), Namespace, cancellationToken: ct);
        }
        catch (Exception e) when (e.IsAlreadyExists())
        {
            return await KubeRetry.OnConflictAsync(
                async c => await PutSecretAsync(owner, data, await _client.TryReadSecretAsync(Namespace, DgonNodeMapping.SecretName(owner.Metadata.Name!), c), c),
                _clock,
                ct);
        }
    }

    /// <summary>
    /// Writes the node's Secret as <paramref name="data"/>, owned by <paramref name="owner"/> and bound to its key:
    /// a PUT on <paramref name="current"/>'s resourceVersion (409 if it changed since), or a create when there is none.
    /// </summary>
    private Task<V1Secret> PutSecretAsync(DgonNode owner, Dictionary<string, byte[]> data, V1Secret? current, CancellationToken ct)
    {
        var desired = DesiredSecret(owner, data);
        if (current is null)
        {
            return _client.CoreV1.CreateNamespacedSecretAsync(desired, Namespace, cancellationToken: ct);
        }

        desired.Metadata.ResourceVersion = current.Metadata.ResourceVersion;
        return _client.CoreV1.ReplaceNamespacedSecretAsync(desired, desired.Metadata.Name, Namespace, cancellationToken: ct);
    }

    private V1Secret DesiredSecret(DgonNode owner, Dictionary<string, byte[]> data)
    {
        var id = owner.Metadata.Name!;
        var secret = new V1Secret
        {
            Metadata = new V1ObjectMeta
            {
                Name = DgonNodeMapping.SecretName(id),
                NamespaceProperty = Namespace,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    [DgonNodeMapping.ManagedByLabel] = "dgon-api",
                    [DgonNodeMapping.NodeLabel] = id,
                },
                OwnerReferences =
                [
                    new V1OwnerReference { ApiVersion = DgonNode.ApiVersionValue, Kind = DgonNode.KindValue, Name = id, Uid = owner.Metadata.Uid!, Controller = true },
                ],
            },
            Type = DgonNodeMapping.SecretType,
            Data = data,
        };
        if (owner.Spec.PublicKey is { } key)
        {
            secret.Metadata.Annotations = new Dictionary<string, string>(StringComparer.Ordinal) { [DgonNodeMapping.TokenPublicKeyAnnotation] = key };
        }

        return secret;
    }

    private DgonNode? CurrentNode(string id)
    {
        _nodes.TryGet(Namespace, id, out var cached);
        _writtenNodes.TryGetValue(id, out var written);
        return Newer(cached, written);
    }

    private V1Secret? CurrentSecret(string nodeId)
    {
        _secrets.TryGet(Namespace, DgonNodeMapping.SecretName(nodeId), out var cached);
        _writtenSecrets.TryGetValue(nodeId, out var written);
        return Newer(cached, written);
    }

    private void Remember(DgonNode? node)
    {
        if (node?.Metadata.Name is { } name)
        {
            _writtenNodes[name] = node;
        }
    }

    /// <summary>
    /// The newer of the informer's copy and our own last write. Compares resourceVersions numerically: they are
    /// opaque by contract, but etcd-backed API servers (and our test server) issue increasing integers. When the
    /// informer's copy belongs to another object (different uid) it wins, being the server's view.
    /// </summary>
    private static T? Newer<T>(T? cached, T? written)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        if (cached is null || written is null)
        {
            return cached ?? (written is { Metadata.DeletionTimestamp: null } ? written : null);
        }

        if (cached.Metadata.Uid != written.Metadata.Uid)
        {
            return cached;
        }

        return long.TryParse(written.Metadata.ResourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var w)
            && long.TryParse(cached.Metadata.ResourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var c)
            && w > c
            ? written
            : cached;
    }

    private void EnsureSynced()
    {
        if (!HasSynced)
        {
            throw new KubernetesNotReadyException("the DgonNode and Secret caches have not completed their first list yet");
        }
    }

    private SemaphoreSlim Lock(string nodeId) => _locks.GetOrAdd(nodeId, _ => new SemaphoreSlim(1, 1));

    [LoggerMessage(Level = LogLevel.Warning, Message = "The status-write budget binds: {Waiting} heartbeat observations wait for DGON_STATUS_WRITES_PER_SECOND={Budget} (refresh in effect {Refresh} s); recorded lastHeartbeatTime lags until the told heartbeat interval catches up, or raise the budget or DGON_HEARTBEAT_GRACE_SECONDS")]
    private partial void LogBudgetBinding(int waiting, int budget, double refresh);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DgonNode {NodeId}: the held heartbeat could not be written; retrying")]
    private partial void LogFlushFailed(string nodeId, Exception error);

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} deleted; its token is revoked")]
    private partial void LogNodeDeleted(string nodeId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Registration of DgonNode {NodeId} refused: it is no longer {Expected}; nothing written")]
    private partial void LogPreconditionFailed(string nodeId, string expected);

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId}: token rotated; the previous one verifies until {ValidUntil}")]
    private partial void LogRotated(string nodeId, string validUntil);

    [LoggerMessage(Level = LogLevel.Warning, Message = "DgonNode {NodeId}: identity reset (spec.publicKey and tokens removed)")]
    private partial void LogReset(string nodeId);
}


/// <summary>Kubernetes state is not available yet (caches not synced); answered with 503 so nodes retry.</summary>
public sealed class KubernetesNotReadyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KubernetesNotReadyException()
        : base("Kubernetes caches are not ready")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubernetesNotReadyException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public KubernetesNotReadyException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>A heartbeat as observed by the API: when it was accepted and what it reported.</summary>
/// <param name="Time">Acceptance time (the API's clock).</param>
/// <param name="Heartbeat">Ready flag and metrics.</param>
internal sealed record Observation(DateTimeOffset Time, NodeHeartbeat Heartbeat);

/// <summary>An observation held for a later write; <paramref name="Decisive"/> when it changes the operator's decision (written first).</summary>
internal sealed record Held(Observation Observation, bool Decisive);
