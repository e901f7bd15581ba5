using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Dgon.Api.Configuration;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;

namespace Dgon.Api.Kubernetes;

/// <summary>
/// <see cref="INodeRegistry"/> on DgonNode custom resources (issue 3, <c>DGON_REGISTRY=kubernetes</c>).
/// <list type="bullet">
/// <item>Register creates or updates the DgonNode's spec and a per-node Secret holding the HMAC token, owned by the
/// DgonNode (ownerReference), so <c>kubectl delete dgonnode X</c> revokes the node.</item>
/// <item>Tokens are served from informer caches of DgonNodes and Secrets (no API-server round trip per heartbeat);
/// a token counts only while its Secret is owned by the current DgonNode (same uid).</item>
/// <item>Heartbeats patch the status subresource only when <see cref="StatusWriteCoalescing.NeedsWrite"/> says so,
/// with the resourceVersion as precondition; a 409 re-reads the resource and recomputes.</item>
/// </list>
/// Writes are also kept locally (write-through), so the next request sees them before the watch echoes them back.
/// </summary>
public sealed partial class KubernetesNodeRegistry : INodeRegistry
{
    private const int MaxWriteAttempts = 5;

    private readonly IKubeClient _client;
    private readonly IInformer<DgonNode> _nodes;
    private readonly IInformer<Secret> _secrets;
    private readonly NodeLifecycle _lifecycle;
    private readonly TimeProvider _clock;
    private readonly ILogger<KubernetesNodeRegistry> _logger;
    private readonly TimeSpan _refresh;
    private readonly ConcurrentDictionary<string, DgonNode> _writtenNodes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Secret> _writtenSecrets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly Counter<long> _statusWrites;

    /// <summary>Creates the registry over running (or soon running) informers of the namespace's DgonNodes and node Secrets.</summary>
    public KubernetesNodeRegistry(
        IKubeClient client,
        IInformer<DgonNode> nodes,
        IInformer<Secret> secrets,
        KubeNamespace ns,
        KubernetesRegistryOptions options,
        NodeLifecycle lifecycle,
        TimeProvider clock,
        IMeterFactory meters,
        ILogger<KubernetesNodeRegistry> logger)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(meters);
        _client = client;
        _nodes = nodes;
        _secrets = secrets;
        Namespace = ns.Name;
        _refresh = options.StatusRefreshInterval;
        _lifecycle = lifecycle;
        _clock = clock;
        _logger = logger;
        _statusWrites = meters.Create(Observability.ApiMetrics.MeterName).CreateCounter<long>(
            "dgon_kubernetes_status_writes_total", unit: null, description: "DgonNode status writes by the ingress API, by reason (register, heartbeat, auth_failures).");
        // Only deletions matter: they drop our write-through copies (additions and updates are read from the caches).
        nodes.AddHandler(new InformerHandler<DgonNode>(onDelete: OnNodeDeleted));
        secrets.AddHandler(new InformerHandler<Secret>(onDelete: OnSecretDeleted));
    }

    /// <summary>Namespace of the DgonNodes and their Secrets.</summary>
    public string Namespace { get; }

    /// <summary>Whether both caches have completed their initial list.</summary>
    public bool HasSynced => _nodes.HasSynced && _secrets.HasSynced;

    /// <inheritdoc />
    /// <exception cref="KubeApiException">The API server refused a write (after conflict retries).</exception>
    public async Task<NodeRecord> RegisterAsync(NodeRegistration registration, string nodeToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var id = registration.NodeId;
        var gate = Lock(id);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var node = await UpsertSpecAsync(registration, cancellationToken);
            var secret = await WriteSecretAsync(node, nodeToken, cancellationToken);
            _writtenSecrets[id] = secret;

            for (var attempt = 1; ; attempt++)
            {
                var now = _clock.GetUtcNow();
                var transition = _lifecycle.Apply(new NodeLifecycleState(DgonNodeMapping.Phase(node), DgonNodeMapping.LastSeen(node)), new NodeEvent.Registered());
                var conditions = NodeConditions.Compute(
                    DgonNodeMapping.Conditions(node),
                    new NodeConditionInputs(transition.Phase, transition.Changed ? transition.Reason : "Unchanged", false, false, false, _lifecycle.Timeout, node.Metadata.Generation),
                    now);
                var (patch, status) = DgonNodeMapping.StatusPatch(node.Metadata.ResourceVersion);
                status["phase"] = transition.Phase.ToWire();
                status["ready"] = false;
                status["lastRegistrationTime"] = DgonNodeMapping.MicroTime(now);
                status["conditions"] = DgonNodeMapping.ConditionsJson(conditions);
                if (node.Status?.Reputation is null)
                {
                    status["reputation"] = NodeRecord.DefaultReputation;
                }

                try
                {
                    node = await _client.PatchStatusAsync(KubeResources.DgonNodes, Namespace, id, patch, cancellationToken);
                    _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", "register"));
                    break;
                }
                catch (KubeConflictException) when (attempt < MaxWriteAttempts)
                {
                    node = await _client.GetAsync(KubeResources.DgonNodes, Namespace, id, cancellationToken);
                }
            }

            _writtenNodes[id] = node;
            return DgonNodeMapping.ToRecord(node);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    /// <exception cref="KubernetesNotReadyException">The caches have not completed their first list yet.</exception>
    public Task<string?> GetTokenAsync(string nodeId, CancellationToken cancellationToken)
    {
        EnsureSynced();
        var node = CurrentNode(nodeId);
        var secret = CurrentSecret(nodeId);
        if (node?.Metadata.Uid is not { } uid || secret?.Data is null || !secret.Data.TryGetValue(DgonNodeMapping.TokenKey, out var token))
        {
            return Task.FromResult<string?>(null);
        }

        // A Secret left over from a deleted DgonNode (garbage collection pending) must not authenticate its successor.
        var owned = secret.Metadata.OwnerReferences?.Any(o => o.Uid == uid && o.Kind == DgonNode.KindValue) ?? false;
        return Task.FromResult(owned ? Encoding.UTF8.GetString(token) : null);
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
            for (var attempt = 1; node is not null; attempt++)
            {
                var now = _clock.GetUtcNow();
                var from = DgonNodeMapping.Phase(node);
                var transition = _lifecycle.Apply(new NodeLifecycleState(from, DgonNodeMapping.LastSeen(node)), new NodeEvent.HeartbeatReceived(heartbeat.Ready));
                var conditions = NodeConditions.Compute(
                    DgonNodeMapping.Conditions(node),
                    new NodeConditionInputs(transition.Phase, transition.Changed ? transition.Reason : "Unchanged", heartbeat.Ready, true, false, _lifecycle.Timeout, node.Metadata.Generation),
                    now);
                var desired = new RecordedNodeStatus(transition.Phase, heartbeat.Ready, now, conditions);
                var change = new PhaseChange(nodeId, from, transition.Phase, transition.Reason);
                if (!StatusWriteCoalescing.NeedsWrite(DgonNodeMapping.Recorded(node), desired, now, _refresh))
                {
                    return change;
                }

                var (patch, status) = DgonNodeMapping.StatusPatch(node.Metadata.ResourceVersion);
                status["phase"] = transition.Phase.ToWire();
                status["ready"] = heartbeat.Ready;
                status["lastHeartbeatTime"] = DgonNodeMapping.MicroTime(now);
                status["gpuUtil"] = heartbeat.Metrics.GpuUtil;
                status["memUsedGb"] = heartbeat.Metrics.MemUsedGb;
                status["p95Ms"] = heartbeat.Metrics.P95Ms;
                status["conditions"] = DgonNodeMapping.ConditionsJson(conditions);
                try
                {
                    _writtenNodes[nodeId] = await _client.PatchStatusAsync(KubeResources.DgonNodes, Namespace, nodeId, patch, cancellationToken);
                    _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", "heartbeat"));
                    return change;
                }
                catch (KubeConflictException) when (attempt < MaxWriteAttempts)
                {
                    // Someone (the operator) wrote in between: re-read and decide again on the fresh state.
                    node = await _client.TryGetAsync(KubeResources.DgonNodes, Namespace, nodeId, cancellationToken);
                    Remember(node);
                }
                catch (KubeNotFoundException)
                {
                    return null;
                }
            }

            return null;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task RecordAuthFailuresAsync(string nodeId, AuthFailureRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var (patch, status) = DgonNodeMapping.StatusPatch(resourceVersion: null);
        status["authFailures"] = new System.Text.Json.Nodes.JsonObject
        {
            ["count"] = record.Count,
            ["firstFailureTime"] = DgonNodeMapping.Time(record.FirstFailureTime),
            ["lastFailureTime"] = DgonNodeMapping.Time(record.LastFailureTime),
            ["lastReason"] = record.LastReason,
        };
        try
        {
            _writtenNodes[nodeId] = await _client.PatchStatusAsync(KubeResources.DgonNodes, Namespace, nodeId, patch, cancellationToken);
            _statusWrites.Add(1, new KeyValuePair<string, object?>("reason", "auth_failures"));
        }
        catch (KubeNotFoundException)
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

            LogNodeDeleted(name);
        }
    }

    private void OnSecretDeleted(Secret obj)
    {
        if (obj.Metadata.Labels?.GetValueOrDefault(DgonNodeMapping.NodeLabel) is { } nodeId
            && _writtenSecrets.TryGetValue(nodeId, out var written) && written.Metadata.Uid == obj.Metadata.Uid)
        {
            _writtenSecrets.TryRemove(nodeId, out _);
        }
    }

    private async Task<DgonNode> UpsertSpecAsync(NodeRegistration registration, CancellationToken ct)
    {
        var existing = await _client.TryGetAsync(KubeResources.DgonNodes, Namespace, registration.NodeId, ct);
        if (existing is null || existing.Metadata.DeletionTimestamp is not null)
        {
            try
            {
                return await _client.CreateAsync(KubeResources.DgonNodes, DgonNodeMapping.NewNode(Namespace, registration), ct);
            }
            catch (KubeAlreadyExistsException)
            {
                // Created concurrently (or still terminating): fall through to the update.
            }
        }

        return await _client.PatchAsync(KubeResources.DgonNodes, Namespace, registration.NodeId, DgonNodeMapping.DeclaredSpecPatch(registration), ct);
    }

    private async Task<Secret> WriteSecretAsync(DgonNode owner, string token, CancellationToken ct)
    {
        var id = owner.Metadata.Name!;
        var desired = new Secret
        {
            Metadata = new ObjectMeta
            {
                Name = DgonNodeMapping.SecretName(id),
                Namespace = Namespace,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    [DgonNodeMapping.ManagedByLabel] = "dgon-api",
                    [DgonNodeMapping.NodeLabel] = id,
                },
                OwnerReferences =
                [
                    new OwnerReference { ApiVersion = DgonNode.ApiVersionValue, Kind = DgonNode.KindValue, Name = id, Uid = owner.Metadata.Uid!, Controller = true },
                ],
            },
            Type = DgonNodeMapping.SecretType,
            Data = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [DgonNodeMapping.TokenKey] = Encoding.UTF8.GetBytes(token) },
        };

        try
        {
            return await _client.CreateAsync(KubeResources.Secrets, desired, ct);
        }
        catch (KubeAlreadyExistsException)
        {
            return await KubeRetry.OnConflictAsync(
                async c =>
                {
                    var current = await _client.GetAsync(KubeResources.Secrets, Namespace, desired.Metadata.Name!, c);
                    desired.Metadata.ResourceVersion = current.Metadata.ResourceVersion;
                    return await _client.ReplaceAsync(KubeResources.Secrets, desired, c);
                },
                ct);
        }
    }

    private DgonNode? CurrentNode(string id)
    {
        _nodes.TryGet(Namespace, id, out var cached);
        _writtenNodes.TryGetValue(id, out var written);
        return Newer(cached, written);
    }

    private Secret? CurrentSecret(string nodeId)
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
        where T : KubeObject
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

    [LoggerMessage(Level = LogLevel.Information, Message = "DgonNode {NodeId} deleted; its token is revoked")]
    private partial void LogNodeDeleted(string nodeId);
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
