using System.Text.Json.Nodes;

namespace Dgon.Kubernetes;

/// <summary>
/// The narrow typed Kubernetes client DGON codes against: CRUD, merge-patch, status subresource and watch for any
/// <see cref="ResourceType{T}"/>. A small stand-in for KubernetesClient's <c>IKubernetes</c> (which cannot be
/// restored here); <see cref="KubeClient"/> implements it over HttpClient, and an adapter over the official client
/// could implement it too. Every method throws <see cref="KubeApiException"/> (or the specific subclass:
/// <see cref="KubeNotFoundException"/>, <see cref="KubeConflictException"/>, <see cref="KubeAlreadyExistsException"/>,
/// <see cref="KubeGoneException"/>, <see cref="KubeInvalidException"/>) for an error response,
/// <see cref="HttpRequestException"/> for transport failures (connection refused, TLS), and
/// <see cref="OperationCanceledException"/> on cancellation or the configured timeout.
/// </summary>
public interface IKubeClient
{
    /// <summary>GET one object.</summary>
    /// <exception cref="KubeNotFoundException">404: it does not exist.</exception>
    Task<T> GetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken ct) where T : KubeObject;

    /// <summary>GET one object; null on 404 (other errors still throw).</summary>
    Task<T?> TryGetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken ct) where T : KubeObject;

    /// <summary>LIST one page of objects (follow <see cref="ListMeta.Continue"/> with <see cref="ListOptions.Continue"/> for more).</summary>
    /// <param name="type">The resource.</param>
    /// <param name="ns">Namespace; null for all namespaces (or a cluster-scoped resource).</param>
    /// <param name="options">Selectors, paging, resourceVersion; null for none.</param>
    /// <param name="ct">Cancellation.</param>
    /// <exception cref="KubeGoneException">410: the continue token expired.</exception>
    Task<KubeList<T>> ListAsync<T>(ResourceType<T> type, string? ns, ListOptions? options, CancellationToken ct) where T : KubeObject;

    /// <summary>POST a new object into <c>obj.Metadata.Namespace</c>; returns the stored object (uid, resourceVersion, generation set).</summary>
    /// <exception cref="KubeAlreadyExistsException">409 AlreadyExists.</exception>
    /// <exception cref="KubeInvalidException">422: validation failed.</exception>
    Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject;

    /// <summary>PUT the whole object (status is ignored by the server when the status subresource is enabled). Optimistic concurrency: <c>obj.Metadata.ResourceVersion</c> must be current.</summary>
    /// <exception cref="KubeConflictException">409 Conflict: the resourceVersion is stale.</exception>
    Task<T> ReplaceAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject;

    /// <summary>PUT the status subresource (only status changes are kept); optimistic concurrency as <see cref="ReplaceAsync{T}"/>.</summary>
    /// <exception cref="KubeConflictException">409 Conflict: the resourceVersion is stale.</exception>
    Task<T> ReplaceStatusAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject;

    /// <summary>PATCH with a JSON merge patch (<c>application/merge-patch+json</c>, RFC 7386: objects merge, <c>null</c> deletes a key, arrays are replaced whole). No resourceVersion check unless the patch carries <c>metadata.resourceVersion</c>.</summary>
    Task<T> PatchAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode mergePatch, CancellationToken ct) where T : KubeObject;

    /// <summary>PATCH the status subresource with a JSON merge patch (RFC 7386).</summary>
    Task<T> PatchStatusAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode mergePatch, CancellationToken ct) where T : KubeObject;

    /// <summary>DELETE one object with optional propagation policy and preconditions.</summary>
    /// <exception cref="KubeNotFoundException">404: it does not exist.</exception>
    /// <exception cref="KubeConflictException">409: a precondition failed.</exception>
    Task DeleteAsync<T>(ResourceType<T> type, string? ns, string name, DeleteOptions? options, CancellationToken ct) where T : KubeObject;

    /// <summary>
    /// WATCH over one streaming connection (newline-delimited JSON WatchEvents). Yields ADDED, MODIFIED, DELETED and
    /// BOOKMARK events; ends normally when the server closes the stream (e.g. its timeout).
    /// </summary>
    /// <exception cref="KubeGoneException">An ERROR event (or response) with code 410: the resourceVersion is too old — relist.</exception>
    /// <exception cref="KubeApiException">Any other ERROR event or error response.</exception>
    IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceType<T> type, string? ns, WatchOptions options, CancellationToken ct) where T : KubeObject;
}
