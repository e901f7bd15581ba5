namespace Dgon.Kubernetes;

/// <summary>
/// Query options of a LIST call (meta/v1 ListOptions): label/field selectors, page size and continue token, and the
/// resourceVersion semantics (unset = most recent, consistent read; <c>"0"</c> = any cached version).
/// Stand-in for KubernetesClient's list parameters.
/// </summary>
public sealed class ListOptions
{
    /// <summary>Label selector, e.g. <c>app=dgon,tier in (a,b)</c>.</summary>
    public string? LabelSelector { get; set; }

    /// <summary>Field selector, e.g. <c>metadata.name=n1</c>.</summary>
    public string? FieldSelector { get; set; }

    /// <summary>Maximum items per page; the server returns a continue token when more remain.</summary>
    public int? Limit { get; set; }

    /// <summary>Continue token from the previous page's <see cref="ListMeta.Continue"/> (expires: 410 Gone).</summary>
    public string? Continue { get; set; }

    /// <summary>resourceVersion constraint of the read.</summary>
    public string? ResourceVersion { get; set; }
}

/// <summary>
/// Query options of a WATCH call (meta/v1 ListOptions with <c>watch=true</c>): start at
/// <see cref="ResourceVersion"/> (events strictly after it; a version older than the server's history yields an
/// ERROR event with 410 Gone), bookmarks on by default, optional server-side timeout.
/// Stand-in for KubernetesClient's watch parameters.
/// </summary>
public sealed class WatchOptions
{
    /// <summary>Start after this resourceVersion (normally the list's); unset = "start at most recent" with synthetic ADDED events for existing objects.</summary>
    public string? ResourceVersion { get; set; }

    /// <summary>Ask for BOOKMARK events (<c>allowWatchBookmarks=true</c>); default true.</summary>
    public bool AllowBookmarks { get; set; } = true;

    /// <summary>Label selector.</summary>
    public string? LabelSelector { get; set; }

    /// <summary>Field selector.</summary>
    public string? FieldSelector { get; set; }

    /// <summary>Seconds after which the server ends the stream (cleanly).</summary>
    public int? TimeoutSeconds { get; set; }
}

/// <summary>
/// Body of a DELETE call (meta/v1 DeleteOptions): propagation policy and preconditions (a mismatch is 409 Conflict).
/// Stand-in for KubernetesClient's <c>V1DeleteOptions</c>.
/// </summary>
public sealed class DeleteOptions
{
    /// <summary>Always <c>DeleteOptions</c> on the wire.</summary>
    public string Kind { get; set; } = "DeleteOptions";

    /// <summary>Always <c>v1</c> on the wire.</summary>
    public string ApiVersion { get; set; } = "v1";

    /// <summary><c>Background</c>, <c>Foreground</c> or <c>Orphan</c>.</summary>
    public string? PropagationPolicy { get; set; }

    /// <summary>Seconds of graceful deletion (0 = immediately).</summary>
    public long? GracePeriodSeconds { get; set; }

    /// <summary>Delete only if the object still has this uid / resourceVersion.</summary>
    public Preconditions? Preconditions { get; set; }
}

/// <summary>meta/v1 Preconditions of a delete: the uid and/or resourceVersion the object must still have.</summary>
public sealed class Preconditions
{
    /// <summary>Required uid.</summary>
    public string? Uid { get; set; }

    /// <summary>Required resourceVersion.</summary>
    public string? ResourceVersion { get; set; }
}
