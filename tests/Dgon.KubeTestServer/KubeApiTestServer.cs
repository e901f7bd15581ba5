namespace Dgon.KubeTestServer;

/// <summary>A Kubernetes API server for tests, served over real HTTP(S) on 127.0.0.1 (stub, being implemented).</summary>
public sealed class KubeApiTestServer : IAsyncDisposable
{
    private KubeApiTestServer(Uri baseAddress) => BaseAddress = baseAddress;

    /// <summary>Base URL, e.g. <c>http://127.0.0.1:40123</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Every request served so far, in order.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [];

    /// <summary>Starts Kestrel on 127.0.0.1 on a free port.</summary>
    public static Task<KubeApiTestServer> StartAsync(KubeApiTestServerOptions? options = null, CancellationToken cancellationToken = default)
        => Task.FromResult(new KubeApiTestServer(new Uri("http://127.0.0.1:1")));

    /// <summary>Writes a kubeconfig usable by kubectl; returns <paramref name="path"/>.</summary>
    public string WriteKubeconfig(string path, string? @namespace = null, string? token = null, string? clientCertificatePemPath = null, string? clientKeyPemPath = null, string? certificateAuthorityPemPath = null)
        => path;

    /// <summary>Makes every resourceVersion below the current one "too old" (410 Gone for watches).</summary>
    public void ExpireWatchHistory()
    {
    }

    /// <summary>Ends every open watch stream cleanly.</summary>
    public void CloseWatches()
    {
    }

    /// <summary>The next <paramref name="times"/> requests matching <paramref name="match"/> fail with a Status of <paramref name="statusCode"/>.</summary>
    public void InjectFault(Func<RecordedRequest, bool> match, int times, int statusCode)
    {
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
