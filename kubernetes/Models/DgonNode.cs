using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Kubernetes;

/// <summary>
/// The <c>DgonNode</c> custom resource (<c>dgon.io/v1alpha1</c>, plural <c>dgonnodes</c>, namespaced), exactly the
/// shape of <c>crds/dgonnodes.dgon.io.yaml</c>: <see cref="Spec"/> is what the node declared plus operator intent,
/// <see cref="Status"/> is written only through the status subresource. Typed model for DGON's own small client
/// (a stand-in for a KubernetesClient-generated CRD class, which cannot be restored here).
/// </summary>
public sealed class DgonNode : KubeObject
{
    /// <summary>The API version constant <c>dgon.io/v1alpha1</c>.</summary>
    public const string ApiVersionValue = "dgon.io/v1alpha1";

    /// <summary>The kind constant <c>DgonNode</c>.</summary>
    public const string KindValue = "DgonNode";

    /// <summary>Creates an empty DgonNode with apiVersion and kind set.</summary>
    public DgonNode()
    {
        ApiVersion = ApiVersionValue;
        Kind = KindValue;
    }

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
    /// <summary>Lifecycle phase: <c>pending</c>, <c>active</c>, <c>offline</c> or <c>quarantine</c>.</summary>
    public string? Phase { get; set; }

    /// <summary>The ready flag of the last recorded heartbeat.</summary>
    public bool? Ready { get; set; }

    /// <summary>Time of the last recorded valid heartbeat (RFC 3339 seconds, UTC).</summary>
    public DateTimeOffset? LastHeartbeatTime { get; set; }

    /// <summary>Time of the node's last registration (a fresh HMAC secret was issued then); <c>status.lastRegistrationTime</c>.</summary>
    public DateTimeOffset? LastRegistrationTime { get; set; }

    /// <summary>GPU utilisation ratio, 0-1.</summary>
    public double? GpuUtil { get; set; }

    /// <summary>Memory in use, gigabytes (0-1,000,000).</summary>
    public double? MemUsedGb { get; set; }

    /// <summary>p95 latency, milliseconds (0-86,400,000).</summary>
    public double? P95Ms { get; set; }

    /// <summary>Reputation score, 0-100.</summary>
    public double? Reputation { get; set; }

    /// <summary>The metadata.generation the operator last reconciled.</summary>
    public long? ObservedGeneration { get; set; }

    /// <summary>Conditions (list-map keyed by type; at most 16): Ready, Heartbeating, Quarantined.</summary>
    public List<Condition>? Conditions { get; set; }

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
