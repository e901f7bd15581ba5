using System.Globalization;
using System.Text.Json.Nodes;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;

namespace Dgon.Kubernetes.DgonNodes;

/// <summary>
/// The mapping between the DgonNode custom resource (crds/dgonnodes.dgon.io.yaml) and the domain's node model,
/// shared by the ingress API (which writes heartbeats into <c>status</c>) and the operator (which applies the
/// lifecycle and mirrors nodes into PostgreSQL). Pure functions.
/// </summary>
public static class DgonNodeMapping
{
    /// <summary>Label on every object the DGON components create (Kubernetes recommended labels).</summary>
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";

    /// <summary>Label naming the node a Secret belongs to.</summary>
    public const string NodeLabel = "dgon.io/node";

    /// <summary>Key of the HMAC token in a node's Secret.</summary>
    public const string TokenKey = "token";

    /// <summary>Secret type of node secrets.</summary>
    public const string SecretType = "dgon.io/node-token";

    /// <summary>Name of the Secret holding a node's HMAC token: <c>dgonnode-{id}</c> (≤ 72 characters, a valid name).</summary>
    public static string SecretName(string nodeId) => "dgonnode-" + nodeId;

    /// <summary>The node's phase; <c>pending</c> while the status has none (a fresh resource).</summary>
    public static NodePhase Phase(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return NodePhases.TryParse(node.Status?.Phase, out var phase) ? phase : NodePhase.Pending;
    }

    /// <summary>
    /// The lifecycle's timeout anchor: the latest of the recorded heartbeat, the last registration and the creation time.
    /// </summary>
    public static DateTimeOffset LastSeen(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var seen = node.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue;
        if (node.Status?.LastRegistrationTime is { } registered && registered > seen)
        {
            seen = registered;
        }

        if (node.Status?.LastHeartbeatTime is { } heartbeat && heartbeat > seen)
        {
            seen = heartbeat;
        }

        return seen;
    }

    /// <summary>Whether a heartbeat was recorded since the last registration.</summary>
    public static bool HasHeartbeat(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Status?.LastHeartbeatTime is { } hb && (node.Status.LastRegistrationTime is not { } reg || hb >= reg);
    }

    /// <summary>The status conditions in domain form (unparseable statuses read as Unknown).</summary>
    public static IReadOnlyList<NodeCondition> Conditions(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Status?.Conditions is { } list
            ? [.. list.Select(c => new NodeCondition(c.Type, ParseState(c.Status), c.Reason, c.Message, c.LastTransitionTime, c.ObservedGeneration))]
            : [];
    }

    /// <summary>The part of the status that decides heartbeat write coalescing.</summary>
    public static RecordedNodeStatus Recorded(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        NodePhase? phase = NodePhases.TryParse(node.Status?.Phase, out var p) ? p : null;
        return new RecordedNodeStatus(phase, node.Status?.Ready, node.Status?.LastHeartbeatTime, Conditions(node));
    }

    /// <summary>The node as the domain (and the PostgreSQL mirror) sees it.</summary>
    /// <exception cref="FormatException">spec.runtime is not a known runtime (the CRD's enum prevents it).</exception>
    public static NodeRecord ToRecord(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var created = node.Metadata.CreationTimestamp ?? DateTimeOffset.UnixEpoch;
        return new NodeRecord
        {
            Id = node.Metadata.Name ?? throw new FormatException("DgonNode has no metadata.name"),
            Region = node.Spec.Region,
            Runtime = NodeRuntimes.TryParse(node.Spec.Runtime, out var runtime)
                ? runtime
                : throw new FormatException($"DgonNode {node.Metadata.Name}: unknown spec.runtime '{node.Spec.Runtime}'"),
            Phase = Phase(node),
            Reputation = node.Status?.Reputation ?? NodeRecord.DefaultReputation,
            GreenEnergy = node.Spec.GreenEnergy,
            AsnHint = node.Spec.AsnHint,
            WalletAddress = node.Spec.WalletAddress,
            Ready = node.Status?.Ready ?? false,
            LastHeartbeat = node.Status?.LastHeartbeatTime,
            Metrics = new NodeMetrics(node.Status?.GpuUtil, node.Status?.MemUsedGb, node.Status?.P95Ms),
            CreatedAt = created,
            RegisteredAt = node.Status?.LastRegistrationTime ?? created,
        };
    }

    /// <summary>A new DgonNode (spec only; the status is written through the status subresource).</summary>
    public static DgonNode NewNode(string @namespace, NodeRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        return new DgonNode
        {
            Metadata = new ObjectMeta
            {
                Name = registration.NodeId,
                Namespace = @namespace,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal) { [ManagedByLabel] = "dgon-api" },
            },
            Spec = new DgonNodeSpec
            {
                Region = registration.Region,
                Runtime = registration.Runtime.ToWire(),
                AsnHint = registration.AsnHint,
                WalletAddress = registration.WalletAddress,
                GreenEnergy = registration.GreenEnergy,
            },
        };
    }

    /// <summary>
    /// JSON merge patch (RFC 7386) of the declared spec fields; <c>spec.quarantine</c> (operator intent) is left alone.
    /// Null optional fields are removed.
    /// </summary>
    public static JsonObject DeclaredSpecPatch(NodeRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        return new JsonObject
        {
            ["spec"] = new JsonObject
            {
                ["region"] = registration.Region,
                ["runtime"] = registration.Runtime.ToWire(),
                ["asnHint"] = registration.AsnHint,
                ["walletAddress"] = registration.WalletAddress,
                ["greenEnergy"] = registration.GreenEnergy,
            },
        };
    }

    /// <summary>
    /// Starts a status merge patch. With <paramref name="resourceVersion"/> the API server applies it only to that
    /// version (optimistic concurrency: 409 Conflict otherwise).
    /// </summary>
    /// <returns>The patch document and its <c>status</c> object to fill.</returns>
    public static (JsonObject Patch, JsonObject Status) StatusPatch(string? resourceVersion)
    {
        var status = new JsonObject();
        var patch = new JsonObject { ["status"] = status };
        if (resourceVersion is not null)
        {
            patch["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion };
        }

        return (patch, status);
    }

    /// <summary>The conditions as a JSON array for a merge patch (which replaces the whole list).</summary>
    public static JsonArray ConditionsJson(IReadOnlyList<NodeCondition> conditions)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var array = new JsonArray();
        foreach (var c in conditions)
        {
            var o = new JsonObject
            {
                ["type"] = c.Type,
                ["status"] = c.Status.ToString(),
                ["lastTransitionTime"] = Time(c.LastTransitionTime),
                ["reason"] = c.Reason,
                ["message"] = c.Message,
            };
            if (c.ObservedGeneration is { } g)
            {
                o["observedGeneration"] = g;
            }

            array.Add(o);
        }

        return array;
    }

    /// <summary>A metav1.Time wire value: RFC 3339, UTC, whole seconds (<c>2026-11-21T10:00:00Z</c>).</summary>
    public static string Time(DateTimeOffset t) =>
        NodeConditions.TruncateToSeconds(t).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// A microsecond-precision RFC 3339 UTC time (<c>2026-11-21T10:00:00.123456Z</c>, the metav1.MicroTime form).
    /// Used for <c>status.lastHeartbeatTime</c>: write coalescing compares it against a refresh interval, which
    /// whole-second truncation would skew by up to a second.
    /// </summary>
    public static string MicroTime(DateTimeOffset t) =>
        new DateTimeOffset(t.UtcTicks - (t.UtcTicks % 10), TimeSpan.Zero).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static ConditionState ParseState(string? s) => s switch
    {
        "True" => ConditionState.True,
        "False" => ConditionState.False,
        _ => ConditionState.Unknown,
    };
}
