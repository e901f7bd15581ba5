namespace Dgon.Kubernetes;

/// <summary>
/// The meta/v1 <c>Status</c> object the API server returns for failed calls and ERROR watch events (Kubernetes API
/// conventions, "Response Status Kind"). Stand-in for KubernetesClient's <c>V1Status</c>.
/// </summary>
public sealed class KubeStatus
{
    /// <summary>Always <c>Status</c> on the wire.</summary>
    public string? Kind { get; set; }

    /// <summary>Always <c>v1</c> on the wire.</summary>
    public string? ApiVersion { get; set; }

    /// <summary><c>Success</c> or <c>Failure</c>.</summary>
    public string? Status { get; set; }

    /// <summary>Human-readable description.</summary>
    public string? Message { get; set; }

    /// <summary>Machine-readable reason, e.g. <c>NotFound</c>, <c>AlreadyExists</c>, <c>Conflict</c>, <c>Invalid</c>, <c>Expired</c>, <c>Gone</c>.</summary>
    public string? Reason { get; set; }

    /// <summary>The HTTP status code this Status stands for (0 when absent).</summary>
    public int Code { get; set; }

    /// <summary>Extra detail: the object concerned and, for 422 Invalid, the field causes.</summary>
    public KubeStatusDetails? Details { get; set; }
}

/// <summary>meta/v1 StatusDetails. Stand-in for KubernetesClient's <c>V1StatusDetails</c>.</summary>
public sealed class KubeStatusDetails
{
    /// <summary>Name of the object concerned.</summary>
    public string? Name { get; set; }

    /// <summary>API group of the object concerned.</summary>
    public string? Group { get; set; }

    /// <summary>Kind (or resource) of the object concerned.</summary>
    public string? Kind { get; set; }

    /// <summary>UID of the object concerned.</summary>
    public string? Uid { get; set; }

    /// <summary>Individual causes, e.g. one per invalid field for 422.</summary>
    public List<KubeStatusCause>? Causes { get; set; }

    /// <summary>Seconds after which the client may retry (e.g. 429/503/500 ServerTimeout).</summary>
    public int? RetryAfterSeconds { get; set; }
}

/// <summary>meta/v1 StatusCause: one reason of a failure. Stand-in for KubernetesClient's <c>V1StatusCause</c>.</summary>
public sealed class KubeStatusCause
{
    /// <summary>Machine-readable cause, e.g. <c>FieldValueInvalid</c>, <c>FieldValueRequired</c>.</summary>
    public string? Reason { get; set; }

    /// <summary>Human-readable description.</summary>
    public string? Message { get; set; }

    /// <summary>The field path, e.g. <c>spec.region</c>.</summary>
    public string? Field { get; set; }
}

/// <summary>
/// A status condition (meta/v1 Condition; Kubernetes API conventions, "Typical status properties"): <c>type</c>,
/// <c>status</c> (<c>True</c>/<c>False</c>/<c>Unknown</c>), <c>lastTransitionTime</c> (RFC 3339 seconds),
/// <c>reason</c> (CamelCase), <c>message</c>, <c>observedGeneration</c>. Stand-in for KubernetesClient's <c>V1Condition</c>.
/// </summary>
public sealed class Condition
{
    /// <summary>Condition type, e.g. <c>Ready</c>.</summary>
    public string Type { get; set; } = "";

    /// <summary><c>True</c>, <c>False</c> or <c>Unknown</c>.</summary>
    public string Status { get; set; } = "Unknown";

    /// <summary>The metadata.generation this condition was computed from.</summary>
    public long? ObservedGeneration { get; set; }

    /// <summary>When <see cref="Status"/> last changed (UTC, whole seconds on the wire).</summary>
    public DateTimeOffset LastTransitionTime { get; set; }

    /// <summary>CamelCase machine-readable reason for the last transition.</summary>
    public string Reason { get; set; } = "";

    /// <summary>Human-readable detail.</summary>
    public string Message { get; set; } = "";
}

/// <summary>
/// A reference to another object (core/v1 ObjectReference), used as <c>regarding</c> of an Event. Stand-in for
/// KubernetesClient's <c>V1ObjectReference</c>.
/// </summary>
public sealed class ObjectReference
{
    /// <summary>API version of the referent.</summary>
    public string? ApiVersion { get; set; }

    /// <summary>Kind of the referent.</summary>
    public string? Kind { get; set; }

    /// <summary>Namespace of the referent.</summary>
    public string? Namespace { get; set; }

    /// <summary>Name of the referent.</summary>
    public string? Name { get; set; }

    /// <summary>UID of the referent.</summary>
    public string? Uid { get; set; }

    /// <summary>The referent's resourceVersion when the reference was made.</summary>
    public string? ResourceVersion { get; set; }

    /// <summary>A field within the referent, e.g. <c>spec.containers{name}</c>.</summary>
    public string? FieldPath { get; set; }
}
