using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Dgon.Kubernetes;

/// <summary>
/// The <c>DgonNode</c> custom resource (<c>dgon.io/v1alpha1</c>, plural <c>dgonnodes</c>, namespaced), exactly the
/// shape of <c>crds/dgonnodes.dgon.io.yaml</c>, as a KubernetesClient entity (<see cref="KubernetesEntityAttribute"/>,
/// serialized by <c>KubernetesJson</c>). <see cref="Spec"/> is what the node declared plus admin intent;
/// <see cref="Status"/> is written only through the status subresource. Each field's writer is named on it (and in
/// the CRD's descriptions): the ingress API writes what it observes, the operator what it decides.
/// </summary>
[KubernetesEntity(Group = "dgon.io", ApiVersion = "v1alpha1", Kind = KindValue, PluralName = Plural)]
public sealed class DgonNode : IKubernetesObject<V1ObjectMeta>, ISpec<DgonNodeSpec>, IStatus<DgonNodeStatus?>
{
    /// <summary>The API group <c>dgon.io</c>.</summary>
    public const string Group = "dgon.io";

    /// <summary>The served version <c>v1alpha1</c>.</summary>
    public const string Version = "v1alpha1";

    /// <summary>The resource (plural) name <c>dgonnodes</c>.</summary>
    public const string Plural = "dgonnodes";

    /// <summary>The API version constant <c>dgon.io/v1alpha1</c>.</summary>
    public const string ApiVersionValue = "dgon.io/v1alpha1";

    /// <summary>The kind constant <c>DgonNode</c>.</summary>
    public const string KindValue = "DgonNode";

    /// <inheritdoc />
    public string ApiVersion { get; set; } = ApiVersionValue;

    /// <inheritdoc />
    public string Kind { get; set; } = KindValue;

    /// <inheritdoc />
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>Desired state (required by the CRD schema).</summary>
    public DgonNodeSpec Spec { get; set; } = new();

    /// <summary>Observed state; null until first written through the status subresource.</summary>
    public DgonNodeStatus? Status { get; set; }
}

/// <summary>
/// DgonNode spec (CRD <c>.spec</c>): region and runtime are required by the schema. Written by the ingress API at
/// registration, except <see cref="Quarantine"/> (operator intent: the operator or an admin) and the reset of
/// <see cref="PublicKey"/> (an admin).
/// </summary>
public sealed class DgonNodeSpec
{
    /// <summary>Region, a Kubernetes label value (1-63 chars, <c>^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$</c>).</summary>
    public string Region { get; set; } = "";

    /// <summary>LLM runtime: <c>ollama</c>, <c>vllm</c>, <c>tensorrtllm</c> or <c>tgi</c>.</summary>
    public string Runtime { get; set; } = "";

    /// <summary>Network (ASN) hint the node declared (≤ 128 chars).</summary>
    public string? AsnHint { get; set; }

    /// <summary>Payout wallet address the node declared (≤ 128 chars).</summary>
    public string? WalletAddress { get; set; }

    /// <summary>Whether the node declared green energy (schema default false).</summary>
    public bool GreenEnergy { get; set; }

    /// <summary>Operator intent: true holds the node in quarantine (schema default false).</summary>
    public bool Quarantine { get; set; }

    /// <summary>
    /// The node's enrolled Ed25519 public key, <c>ed25519:</c> + base64 of the 32 raw bytes (issue 9); null when the
    /// node has none (seed agent) or an admin reset it (<c>kubectl patch dgonnode X --type=merge -p
    /// '{"spec":{"publicKey":null}}'</c>), which also invalidates the node's tokens.
    /// </summary>
    public string? PublicKey { get; set; }

    /// <summary>Spec fields this model does not know, kept across read-modify-PUT.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>DgonNode status (CRD <c>.status</c>), written through the status subresource.</summary>
public sealed class DgonNodeStatus
{
    /// <summary>Lifecycle phase, CamelCase as the API conventions ask: <c>Pending</c>, <c>Active</c>, <c>Offline</c> or <c>Quarantined</c> (<see cref="DgonNodes.DgonNodeMapping.PhaseValue"/>). Written by the operator alone.</summary>
    public string? Phase { get; set; }

    /// <summary>The ready flag of the last heartbeat, as the node reported it. Written by the ingress API.</summary>
    public bool? Ready { get; set; }

    /// <summary>Time of the last accepted heartbeat (RFC 3339, microseconds, UTC). Written by the ingress API at most once per status refresh interval per node and always within that interval after the last heartbeat (trailing write), so it lags the real last heartbeat by at most that interval.</summary>
    public DateTimeOffset? LastHeartbeatTime { get; set; }

    /// <summary>Time of the node's last registration (a fresh HMAC secret was issued then); <c>status.lastRegistrationTime</c>. Written by the ingress API.</summary>
    public DateTimeOffset? LastRegistrationTime { get; set; }

    /// <summary>GPU utilisation ratio, 0-1, as last reported. Written by the ingress API.</summary>
    public double? GpuUtil { get; set; }

    /// <summary>Memory in use, gigabytes (0-1,000,000), as last reported. Written by the ingress API.</summary>
    public double? MemUsedGb { get; set; }

    /// <summary>p95 latency, milliseconds (0-86,400,000), as last reported. Written by the ingress API.</summary>
    public double? P95Ms { get; set; }

    /// <summary>Reputation score, 0-100. Written by the operator (default 100 at first reconcile).</summary>
    public double? Reputation { get; set; }

    /// <summary>The metadata.generation the operator last reconciled. Written by the operator.</summary>
    public long? ObservedGeneration { get; set; }

    /// <summary>Conditions (list-map keyed by type; at most 16): Ready, Heartbeating, Quarantined. Written by the operator alone.</summary>
    public List<V1Condition>? Conditions { get; set; }

    /// <summary>
    /// Recorded by the ingress API when evidence only the key holder can produce fails repeatedly (issue 9: valid
    /// signed requests replayed); the operator quarantines the node and clears it. Never written for failures a
    /// stranger can cause (bad signature, stale timestamp).
    /// </summary>
    public DgonNodeAuthFailures? AuthFailures { get; set; }

    /// <summary>Status fields this model does not know, kept across read-modify-PUT.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>DgonNode <c>.status.authFailures</c> (written by the ingress API): count, first/last failure time (RFC 3339 seconds) and last reason (≤ 64 chars).</summary>
public sealed class DgonNodeAuthFailures
{
    /// <summary>Failures counted in the window that crossed the threshold (≥ 0).</summary>
    public int Count { get; set; }

    /// <summary>Time of the first failure in the window.</summary>
    public DateTimeOffset FirstFailureTime { get; set; }

    /// <summary>Time of the last failure.</summary>
    public DateTimeOffset LastFailureTime { get; set; }

    /// <summary>Reason of the last failure, e.g. <c>Replayed</c>.</summary>
    public string? LastReason { get; set; }
}

/// <summary>A list of DgonNodes as the API server returns it (<c>DgonNodeList</c>).</summary>
public sealed class DgonNodeList : IKubernetesObject<V1ListMeta>, IItems<DgonNode>
{
    /// <inheritdoc />
    public string ApiVersion { get; set; } = DgonNode.ApiVersionValue;

    /// <inheritdoc />
    public string Kind { get; set; } = "DgonNodeList";

    /// <inheritdoc />
    public V1ListMeta Metadata { get; set; } = new();

    /// <inheritdoc />
    public IList<DgonNode> Items { get; set; } = [];
}
