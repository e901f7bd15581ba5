using System.Security.Cryptography.X509Certificates;

namespace Dgon.KubeTestServer;

/// <summary>Options of <see cref="KubeApiTestServer"/>.</summary>
public sealed record KubeApiTestServerOptions
{
    /// <summary>CRD manifests loaded at start; null = every <c>*.yaml</c> in <c>&lt;repo&gt;/crds</c>.</summary>
    public IReadOnlyList<string>? CrdFiles { get; init; }

    /// <summary>When set, serve HTTPS with this certificate.</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>
    /// The CA that issued <see cref="ServerCertificate"/> (e.g. <see cref="TestPkiSet.Ca"/>): sent in the TLS chain and
    /// embedded by <see cref="KubeApiTestServer.WriteKubeconfig"/> as <c>certificate-authority-data</c>. Needed by the
    /// official C# client (KubernetesClient), which rejects a kubeconfig whose CA is the server certificate itself;
    /// kubectl accepts either.
    /// </summary>
    public X509Certificate2? ServerCertificateAuthority { get; init; }

    /// <summary>When set, a client certificate chained to this CA authenticates a request (401 otherwise).</summary>
    public X509Certificate2? ClientCertificateAuthority { get; init; }

    /// <summary>When set, <c>Authorization: Bearer &lt;token&gt;</c> is required (401 Status otherwise) unless a valid client certificate was presented.</summary>
    public string? BearerToken { get; init; }

    /// <summary>Watches with <c>allowWatchBookmarks=true</c> get a BOOKMARK event at least this often.</summary>
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Events retained for watch-from-resourceVersion; older resourceVersions get 410 Gone.</summary>
    public int WatchHistoryLimit { get; init; } = 10_000;

    /// <summary>Namespace written into kubeconfigs by default (always pre-created, as on a real cluster).</summary>
    public string DefaultNamespace { get; init; } = "default";
}

/// <summary>One request the server answered (recorded after the response status is known; watches when they end).</summary>
/// <param name="Method">HTTP method.</param>
/// <param name="Path">URL path.</param>
/// <param name="Query">Query string including the leading <c>?</c>, or empty.</param>
/// <param name="StatusCode">HTTP status code sent.</param>
/// <param name="Time">When the request arrived.</param>
/// <param name="Resource">Resource plural (e.g. <c>dgonnodes</c>) for API resource paths, else null.</param>
/// <param name="Subresource">Subresource (e.g. <c>status</c>) or null.</param>
/// <param name="Namespace">Namespace from the path, or null.</param>
/// <param name="Name">Object name from the path, or null.</param>
/// <param name="IsWatch">Whether this was a watch request.</param>
public sealed record RecordedRequest(string Method, string Path, string Query, int StatusCode, DateTimeOffset Time, string? Resource, string? Subresource, string? Namespace, string? Name, bool IsWatch);
