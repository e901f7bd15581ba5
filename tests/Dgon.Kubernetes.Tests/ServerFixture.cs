using System.Text.Json.Nodes;
using Dgon.KubeTestServer;
using k8s;
using Microsoft.Extensions.Logging.Testing;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary>
/// A Kubernetes API test server, a kubeconfig for it and an official client built from that kubeconfig
/// (one per test: tests expire history and close watches).
/// </summary>
public sealed class Cluster : IAsyncDisposable
{
    private readonly string _dir;

    private Cluster(KubeApiTestServer server, string dir)
    {
        Server = server;
        _dir = dir;
        // KubernetesClient refuses a kubeconfig user without credentials ("does not have appropriate auth credentials"),
        // so the kubeconfig carries a token (the server ignores it unless BearerToken is set).
        Kubeconfig = server.WriteKubeconfig(Path.Combine(dir, "kubeconfig"), token: "dgon-test-token");
        Client = NewClient();
    }

    public KubeApiTestServer Server { get; }

    /// <summary>Path of the kubeconfig written for <see cref="Server"/>.</summary>
    public string Kubeconfig { get; }

    public IKubernetes Client { get; }

    public static async Task<Cluster> StartAsync(KubeApiTestServerOptions? options = null)
    {
        var server = await KubeApiTestServer.StartAsync(options ?? new KubeApiTestServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(300) });
        var dir = Path.Combine(Path.GetTempPath(), "dgon-k8s-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return new Cluster(server, dir);
    }

    /// <summary>A new client (own connections) from the kubeconfig, as the API and the operator build theirs.</summary>
    public IKubernetes NewClient(params DelegatingHandler[] handlers) =>
        new k8s.Kubernetes(KubernetesClients.LoadConfiguration(Kubeconfig), handlers);

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static DgonNode Node(string name, string ns = "default", Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
        Spec = new DgonNodeSpec { Region = "eu-west", Runtime = "ollama" },
    };

    public static JsonObject Wallet(string wallet) => new() { ["spec"] = new JsonObject { ["walletAddress"] = wallet } };

    public static CancellationToken Timeout(int seconds = 20) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}

/// <summary>Loggers for tests: a <see cref="FakeLogger"/> that also writes to the xunit output (helps diagnose CI flakes).</summary>
public static class TestLog
{
    public static FakeLogger For(ITestOutputHelper? output, string category) => output is null
        ? new FakeLogger(collector: null, category)
        : new FakeLogger(
            line =>
            {
                try
                {
                    output.WriteLine(line);
                }
                catch (InvalidOperationException)
                {
                    // the test already finished
                }
            },
            category);
}

/// <summary>Records the requests a client sends (method, path, body) before passing them on.</summary>
public sealed class RecordingHandler : DelegatingHandler
{
    private readonly List<(string Method, string Path, string? Body)> _requests = [];

    /// <summary>When set, every request fails as if the server were unreachable.</summary>
    public volatile bool Unreachable;

    public int Failed;

    public IReadOnlyList<(string Method, string Path, string? Body)> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (Unreachable)
        {
            Interlocked.Increment(ref Failed);
            throw new HttpRequestException("connection refused (simulated)");
        }

        var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
        lock (_requests)
        {
            _requests.Add((request.Method.Method, request.RequestUri!.AbsolutePath, body));
        }

        return await base.SendAsync(request, cancellationToken);
    }
}
