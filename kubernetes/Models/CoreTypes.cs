using System.Text.Json.Serialization;
using Dgon.Kubernetes.Json;

namespace Dgon.Kubernetes;

/// <summary>
/// core/v1 Secret. <see cref="Data"/> values are raw bytes in memory and base64 on the wire (as the API defines);
/// <see cref="StringData"/> is write-only convenience merged into data by the server. Stand-in for KubernetesClient's
/// <c>V1Secret</c>, which cannot be restored here.
/// </summary>
public sealed class Secret : KubeObject
{
    /// <summary>Creates an empty Secret with apiVersion <c>v1</c> and kind <c>Secret</c>.</summary>
    public Secret()
    {
        ApiVersion = "v1";
        Kind = "Secret";
    }

    /// <summary>Secret type, e.g. <c>Opaque</c>.</summary>
    public string? Type { get; set; }

    /// <summary>Secret data: raw bytes (base64 on the wire).</summary>
    public Dictionary<string, byte[]>? Data { get; set; }

    /// <summary>Write-only string data; the server merges it into <see cref="Data"/>.</summary>
    public Dictionary<string, string>? StringData { get; set; }

    /// <summary>When true, the data cannot be updated (only the metadata).</summary>
    public bool? Immutable { get; set; }
}

/// <summary>
/// coordination.k8s.io/v1 Lease, the lock object of leader election. Stand-in for KubernetesClient's <c>V1Lease</c>.
/// </summary>
public sealed class Lease : KubeObject
{
    /// <summary>Creates an empty Lease with apiVersion <c>coordination.k8s.io/v1</c> and kind <c>Lease</c>.</summary>
    public Lease()
    {
        ApiVersion = "coordination.k8s.io/v1";
        Kind = "Lease";
    }

    /// <summary>The lease record.</summary>
    public LeaseSpec? Spec { get; set; }
}

/// <summary>
/// coordination.k8s.io/v1 LeaseSpec. <see cref="AcquireTime"/> and <see cref="RenewTime"/> are metav1.MicroTime:
/// <c>yyyy-MM-ddTHH:mm:ss.ffffffZ</c> on the wire. Stand-in for KubernetesClient's <c>V1LeaseSpec</c>.
/// </summary>
public sealed class LeaseSpec
{
    /// <summary>Identity of the current holder; null/empty when nobody holds the lease (e.g. after a release).</summary>
    public string? HolderIdentity { get; set; }

    /// <summary>Seconds a candidate waits after the last observed renewal before it may take the lease over.</summary>
    public int? LeaseDurationSeconds { get; set; }

    /// <summary>When the current holder acquired the lease (MicroTime).</summary>
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? AcquireTime { get; set; }

    /// <summary>When the current holder last renewed the lease (MicroTime).</summary>
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? RenewTime { get; set; }

    /// <summary>Number of times the lease changed holder.</summary>
    public int? LeaseTransitions { get; set; }
}

/// <summary>
/// events.k8s.io/v1 Event: a report of something that happened to <see cref="Regarding"/>. <see cref="EventTime"/> is
/// metav1.MicroTime (<c>yyyy-MM-ddTHH:mm:ss.ffffffZ</c>); <see cref="ReportingController"/>,
/// <see cref="ReportingInstance"/>, <see cref="Action"/> and <see cref="EventTime"/> are required by the API;
/// <see cref="Note"/> is at most 1 KiB. Stand-in for KubernetesClient's <c>Eventsv1Event</c>.
/// </summary>
public sealed class EventsV1Event : KubeObject
{
    /// <summary>Creates an empty Event with apiVersion <c>events.k8s.io/v1</c> and kind <c>Event</c>.</summary>
    public EventsV1Event()
    {
        ApiVersion = "events.k8s.io/v1";
        Kind = "Event";
    }

    /// <summary>When the event was first observed (MicroTime).</summary>
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? EventTime { get; set; }

    /// <summary>Data about a series of repeated events; null for a singleton.</summary>
    public EventSeries? Series { get; set; }

    /// <summary>The controller that emitted the event, e.g. <c>dgon.io/operator</c>.</summary>
    public string? ReportingController { get; set; }

    /// <summary>The instance (e.g. pod name) of the controller that emitted the event.</summary>
    public string? ReportingInstance { get; set; }

    /// <summary>What was done (or failed), e.g. <c>Quarantine</c>.</summary>
    public string? Action { get; set; }

    /// <summary>Why the action was taken, CamelCase, e.g. <c>AuthFailures</c>.</summary>
    public string? Reason { get; set; }

    /// <summary>The object this event is about.</summary>
    public ObjectReference? Regarding { get; set; }

    /// <summary>An optional secondary object.</summary>
    public ObjectReference? Related { get; set; }

    /// <summary>Human-readable description, at most 1 KiB.</summary>
    public string? Note { get; set; }

    /// <summary><c>Normal</c> or <c>Warning</c>.</summary>
    public string? Type { get; set; }
}

/// <summary>events.k8s.io/v1 EventSeries: count and last observation of a repeated event.</summary>
public sealed class EventSeries
{
    /// <summary>Number of occurrences in this series up to the last heartbeat.</summary>
    public int Count { get; set; }

    /// <summary>Time of the last occurrence (MicroTime).</summary>
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset LastObservedTime { get; set; }
}
