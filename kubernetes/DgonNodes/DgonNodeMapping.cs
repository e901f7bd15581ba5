using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using k8s.Models;

namespace Dgon.Kubernetes.DgonNodes;

/// <summary>
/// The mapping between the DgonNode custom resource (crds/dgonnodes.dgon.io.yaml) and the domain's node model,
/// shared by the ingress API (which writes heartbeats into <c>status</c>) and the operator (which applies the
/// lifecycle and mirrors nodes into PostgreSQL). Pure functions.
/// </summary>
public static partial class DgonNodeMapping
{
    /// <summary>Label on every object the DGON components create (Kubernetes recommended labels).</summary>
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";

    /// <summary>Label naming the node a Secret belongs to.</summary>
    public const string NodeLabel = "dgon.io/node";

    /// <summary>Label <c>region</c> on each DgonNode (its <c>spec.region</c>), for <c>kubectl get dgn -l region=eu-west</c>. Written by the ingress API at registration.</summary>
    public const string RegionLabel = "region";

    /// <summary>Label <c>runtime</c> on each DgonNode (its <c>spec.runtime</c>). Written by the ingress API at registration.</summary>
    public const string RuntimeLabel = "runtime";

    /// <summary>Label <c>dgon.io/quarantined: "true"</c> while the node's Quarantined condition holds. Written by the operator.</summary>
    public const string QuarantinedLabel = "dgon.io/quarantined";

    /// <summary>Key of the HMAC token in a node's Secret.</summary>
    public const string TokenKey = "token";

    /// <summary>
    /// Key of the token that verified until the last rotation (issue 9); present only after a rotation, together
    /// with <see cref="PreviousTokenValidUntilKey"/>.
    /// </summary>
    public const string PreviousTokenKey = "previous-token";

    /// <summary>Key of the RFC 3339 UTC time until which <see cref="PreviousTokenKey"/> still verifies.</summary>
    public const string PreviousTokenValidUntilKey = "previous-token-valid-until";

    /// <summary>
    /// Annotation on a node's Secret: the public key (<c>spec.publicKey</c>) its tokens were issued for. The tokens
    /// count only while the DgonNode still has that key, so removing or changing <c>spec.publicKey</c> (an admin
    /// reset with kubectl) revokes them at once. Absent on Secrets of keyless nodes (seed agents).
    /// </summary>
    public const string TokenPublicKeyAnnotation = "dgon.io/public-key";

    /// <summary>Secret type of node secrets.</summary>
    public const string SecretType = "dgon.io/node-token";

    /// <summary>Annotation on a DgonNode: id of the join token its last join-token enrollment consumed (audit; written by the ingress API).</summary>
    public const string EnrolledWithAnnotation = "dgon.io/enrolled-with";

    /// <summary>
    /// Annotation on a DgonNode: id of the user who owns it (issue 12), the owner of the join token that enrolled it;
    /// written by the ingress API at each join-token enrollment (removed when that token had no owner).
    /// </summary>
    public const string OwnerAnnotation = "dgon.io/owner";

    /// <summary>Annotation naming why the operator set <c>spec.quarantine</c> (written by the operator, removed once the quarantine is cleared).</summary>
    public const string QuarantineReasonAnnotation = "dgon.io/quarantine-reason";

    /// <summary>
    /// Reason (annotation, Event and <c>Quarantined</c> condition) of a quarantine for repeated replays of valid
    /// signed requests (issue 9), the only failures recorded on a DgonNode.
    /// </summary>
    public const string ReplayedRequestsReason = "ReplayedRequests";

    /// <summary>Message of the <c>Quarantined</c> condition when <see cref="ReplayedRequestsReason"/> is its reason.</summary>
    public const string ReplayedRequestsMessage =
        "Valid signed requests of this node were replayed repeatedly: its token may have leaked. Reset its identity "
        + "(POST /v1/admin/nodes/{id}/reset-key, or remove spec.publicKey), then clear spec.quarantine to let it rejoin.";

    /// <summary>Name of the Secret holding a node's HMAC token: <c>dgonnode-{id}</c> (≤ 72 characters, a valid name).</summary>
    public static string SecretName(string nodeId) => "dgonnode-" + nodeId;

    /// <summary>The node's phase; <c>pending</c> while the status has none (a fresh resource).</summary>
    public static NodePhase Phase(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return TryParsePhase(node.Status?.Phase, out var phase) ? phase : NodePhase.Pending;
    }

    /// <summary>
    /// The CRD's <c>status.phase</c> value of a lifecycle phase, CamelCase as the Kubernetes API conventions ask
    /// (<c>Pending</c>, <c>Active</c>, <c>Offline</c>, <c>Quarantined</c>); the v1 HTTP API keeps seed 000's
    /// lowercase (<see cref="NodePhases.ToWire"/>).
    /// </summary>
    public static string PhaseValue(NodePhase phase) => phase switch
    {
        NodePhase.Pending => "Pending",
        NodePhase.Active => "Active",
        NodePhase.Offline => "Offline",
        NodePhase.Quarantine => "Quarantined",
        _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, "unknown phase"),
    };

    /// <summary>Parses a <c>status.phase</c> value (<see cref="PhaseValue"/>; seed 000's lowercase too, as written by releases before the CamelCase CRD).</summary>
    public static bool TryParsePhase(string? value, out NodePhase phase)
    {
        foreach (var candidate in NodePhases.All)
        {
            if (string.Equals(PhaseValue(candidate), value, StringComparison.Ordinal))
            {
                phase = candidate;
                return true;
            }
        }

        return NodePhases.TryParse(value, out phase);
    }

    /// <summary>
    /// The lifecycle's timeout anchor: the latest of the recorded heartbeat, the last registration and the creation time.
    /// </summary>
    public static DateTimeOffset LastSeen(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var seen = Utc(node.Metadata.CreationTimestamp) ?? DateTimeOffset.MinValue;
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
            ? [.. list.Select(c => new NodeCondition(c.Type, ParseState(c.Status), c.Reason ?? "", c.Message ?? "", Utc(c.LastTransitionTime) ?? DateTimeOffset.UnixEpoch, c.ObservedGeneration))]
            : [];
    }

    /// <summary>The heartbeat observation recorded on <paramref name="node"/>; <paramref name="lastWrite"/> is when this API process last wrote it (null: unknown).</summary>
    public static RecordedObservation Recorded(DgonNode node, DateTimeOffset? lastWrite)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new RecordedObservation(node.Status?.LastHeartbeatTime, node.Status?.Ready, HasHeartbeat(node), lastWrite);
    }

    /// <summary>The node as the domain (and the PostgreSQL mirror) sees it.</summary>
    /// <exception cref="FormatException">spec.runtime is not a known runtime (the CRD's enum prevents it).</exception>
    public static NodeRecord ToRecord(DgonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var created = Utc(node.Metadata.CreationTimestamp) ?? DateTimeOffset.UnixEpoch;
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
            PublicKey = node.Spec.PublicKey,
            OwnerId = node.Metadata.Annotations?.TryGetValue(OwnerAnnotation, out var owner) == true ? owner : null,
            Ready = node.Status?.Ready ?? false,
            LastHeartbeat = node.Status?.LastHeartbeatTime,
            Metrics = new Dgon.Domain.Ports.NodeMetrics(node.Status?.GpuUtil, node.Status?.MemUsedGb, node.Status?.P95Ms),
            CreatedAt = created,
            RegisteredAt = node.Status?.LastRegistrationTime ?? created,
        };
    }

    private static Dictionary<string, string>? EnrollmentAnnotations(NodeRegistration registration)
    {
        if (registration.EnrolledWith is not { } tokenId)
        {
            return null;
        }

        var annotations = new Dictionary<string, string>(StringComparer.Ordinal) { [EnrolledWithAnnotation] = tokenId };
        if (registration.OwnerId is { } owner)
        {
            annotations[OwnerAnnotation] = owner;
        }

        return annotations;
    }

    /// <summary>A new DgonNode (spec only; the status is written through the status subresource).</summary>
    public static DgonNode NewNode(string @namespace, NodeRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        return new DgonNode
        {
            Metadata = new V1ObjectMeta
            {
                Name = registration.NodeId,
                NamespaceProperty = @namespace,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    [ManagedByLabel] = "dgon-api",
                    [RegionLabel] = registration.Region,
                    [RuntimeLabel] = registration.Runtime.ToWire(),
                },
                Annotations = EnrollmentAnnotations(registration),
            },
            Spec = new DgonNodeSpec
            {
                Region = registration.Region,
                Runtime = registration.Runtime.ToWire(),
                AsnHint = registration.AsnHint,
                WalletAddress = registration.WalletAddress,
                GreenEnergy = registration.GreenEnergy,
                PublicKey = registration.PublicKey,
            },
        };
    }

    /// <summary>
    /// JSON merge patch (RFC 7386) of the declared spec fields; <c>spec.quarantine</c> (operator intent) is left alone.
    /// Null optional fields are removed. <c>spec.publicKey</c> is set to <paramref name="publicKey"/> when given and
    /// left as stored otherwise (a registration never removes a key; only an admin reset does). With
    /// <paramref name="resourceVersion"/> the API server applies it only to that version (409 Conflict otherwise):
    /// the registration's precondition was checked against exactly that version. A join-token enrollment
    /// (<see cref="NodeRegistration.EnrolledWith"/>) also sets the annotation <see cref="EnrolledWithAnnotation"/>.
    /// </summary>
    public static JsonObject DeclaredSpecPatch(NodeRegistration registration, string? publicKey = null, string? resourceVersion = null)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var spec = new JsonObject
        {
            ["region"] = registration.Region,
            ["runtime"] = registration.Runtime.ToWire(),
            ["asnHint"] = registration.AsnHint,
            ["walletAddress"] = registration.WalletAddress,
            ["greenEnergy"] = registration.GreenEnergy,
        };
        if (publicKey is not null)
        {
            spec["publicKey"] = publicKey;
        }

        var patch = new JsonObject { ["spec"] = spec };
        var metadata = new JsonObject
        {
            ["labels"] = new JsonObject { [RegionLabel] = registration.Region, [RuntimeLabel] = registration.Runtime.ToWire() },
        };
        if (resourceVersion is not null)
        {
            metadata["resourceVersion"] = resourceVersion;
        }

        if (registration.EnrolledWith is { } tokenId)
        {
            // A join-token enrollment names the token and its owner (null removes a previous owner, RFC 7386).
            metadata["annotations"] = new JsonObject { [EnrolledWithAnnotation] = tokenId, [OwnerAnnotation] = registration.OwnerId };
        }

        patch["metadata"] = metadata;
        return patch;
    }

    /// <summary>
    /// <see cref="NodeConditions.Compute"/> on the node's stored conditions, with the DgonNode's own wording: a
    /// <c>Quarantined</c> condition whose reason is <see cref="ReplayedRequestsReason"/> carries
    /// <see cref="ReplayedRequestsMessage"/>. The API and the operator both write conditions through this, so they
    /// agree on every message (no write ping-pong).
    /// </summary>
    public static IReadOnlyList<NodeCondition> ComputeConditions(DgonNode node, NodeConditionInputs inputs, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(node);
        var computed = NodeConditions.Compute(Conditions(node), inputs, now);
        return
        [
            .. computed.Select(c => c is { Type: NodeConditions.Quarantined, Status: ConditionState.True, Reason: ReplayedRequestsReason }
                ? c with { Message = ReplayedRequestsMessage }
                : c),
        ];
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

    /// <summary>
    /// Whether <paramref name="reason"/> is a valid condition reason (the CRD's pattern
    /// <c>^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$</c>, at most 1024 characters), e.g. the value of
    /// <see cref="QuarantineReasonAnnotation"/> an admin may set.
    /// </summary>
    public static bool IsConditionReason(string? reason) => reason is { Length: > 0 and <= 1024 } && ReasonShape().IsMatch(reason);

    [GeneratedRegex("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", RegexOptions.CultureInvariant)]
    private static partial Regex ReasonShape();

    /// <summary>A KubernetesClient timestamp (a <see cref="DateTime"/> the library parses as UTC or local) as a UTC <see cref="DateTimeOffset"/>; null stays null.</summary>
    public static DateTimeOffset? Utc(DateTime? time) => time is not { } t
        ? null
        : new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime());

    private static ConditionState ParseState(string? s) => s switch
    {
        "True" => ConditionState.True,
        "False" => ConditionState.False,
        _ => ConditionState.Unknown,
    };
}
