using System.Globalization;
using System.Text.Json;
using Dgon.Domain.Contracts;
using Dgon.Kubernetes;
using Dgon.Kubernetes.DgonNodes;
using Dgon.KubeTestServer;
using Dgon.Testing;
using k8s;
using k8s.Models;

namespace Dgon.Operator.Tests;

/// <summary>
/// Kubernetes mode end to end: the Kubernetes API test server (in process, real HTTP on loopback), a real PostgreSQL
/// database, the real API process with <c>DGON_REGISTRY=kubernetes</c> and one real operator process.
/// Grace period 3 s and status refresh 1 s, so the lifecycle timeout is 4 s. The operator deletes nodes that never
/// sent a heartbeat after <see cref="PendingNodeTtlSeconds"/> and cleans join-token Secrets every second.
/// </summary>
public sealed class KubernetesModeFixture : IAsyncLifetime
{
    public const double GraceSeconds = 3;
    public const double RefreshSeconds = 1;
    public const string Namespace = "default";
    public const double PendingNodeTtlSeconds = 15;

    private readonly DirectoryInfo _dir = System.IO.Directory.CreateTempSubdirectory("dgon-k8s-e2e-");

    public KubeApiTestServer Server { get; private set; } = null!;

    public string Kubeconfig { get; private set; } = null!;

    public string DatabaseUrl { get; private set; } = null!;

    public ApiHost Api { get; private set; } = null!;

    public OperatorProcess Operator { get; private set; } = null!;

    public IKubernetes Kube { get; private set; } = null!;

    public Kubectl Kubectl { get; private set; } = null!;

    public string Directory => _dir.FullName;

    public static TimeSpan Timeout => TimeSpan.FromSeconds(GraceSeconds);

    public async Task InitializeAsync()
    {
        Server = await KubeApiTestServer.StartAsync();
        Kubeconfig = Server.WriteKubeconfig(Path.Combine(Directory, "kubeconfig"), Namespace);
        Kube = new k8s.Kubernetes(KubernetesClients.LoadConfiguration(Kubeconfig));
        Kubectl = new Kubectl(_ => Kubeconfig);
        var pg = await SharedPostgres.GetAsync();
        DatabaseUrl = await pg.CreateDatabaseAsync();
        Api = await StartApiAsync(DatabaseUrl, Kubeconfig);
        Operator = await StartOperatorAsync("operator-a");
    }

    public static Task<ApiHost> StartApiAsync(string databaseUrl, string kubeconfig, IDictionary<string, string?>? extra = null)
    {
        var env = new Dictionary<string, string?>
        {
            ["DGON_REGISTRY"] = "kubernetes",
            ["KUBECONFIG"] = kubeconfig,
            ["DGON_NAMESPACE"] = Namespace,
            ["DGON_STATUS_REFRESH_SECONDS"] = RefreshSeconds.ToString(CultureInfo.InvariantCulture),
            ["DGON_SECRET_KEY"] = null, // not needed in Kubernetes mode: node secrets are Kubernetes Secrets
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, string?>())
        {
            env[k] = v;
        }

        return ApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = databaseUrl, GraceSeconds = GraceSeconds, Environment = env });
    }

    public Task<OperatorProcess> StartOperatorAsync(string identity, string? databaseUrl = null, string? kubeconfig = null) =>
        OperatorProcess.StartAsync(new OperatorProcessOptions
        {
            DatabaseUrl = databaseUrl ?? DatabaseUrl,
            Kubeconfig = kubeconfig ?? Kubeconfig,
            Identity = identity,
            GraceSeconds = GraceSeconds,
            RefreshSeconds = RefreshSeconds,
            Environment = new Dictionary<string, string?>
            {
                ["DGON_PENDING_NODE_TTL_SECONDS"] = PendingNodeTtlSeconds.ToString(CultureInfo.InvariantCulture),
                ["DGON_JOIN_TOKEN_CLEANUP_SECONDS"] = "1",
            },
        });

    /// <summary>The node as <c>GET /v1/nodes</c> lists it (served from the PostgreSQL mirror), or null.</summary>
    public async Task<NodeView?> ListedNodeAsync(string nodeId)
    {
        var text = await Api.Admin.GetStringAsync("/v1/nodes");
        return (JsonSerializer.Deserialize(text, DgonJsonContext.Default.ListNodeView) ?? []).SingleOrDefault(n => n.Id == nodeId);
    }

    public Task<DgonNode?> DgonNodeAsync(string nodeId) => Kube.TryGetDgonNodeAsync(Namespace, nodeId, CancellationToken.None);

    public Task<V1Secret?> SecretAsync(string name) => Kube.TryReadSecretAsync(Namespace, name, CancellationToken.None);

    public Task<IReadOnlyList<Eventsv1Event>> EventsAboutAsync(string nodeId) => EventsAboutAsync("DgonNode", nodeId);

    public async Task<IReadOnlyList<Eventsv1Event>> EventsAboutAsync(string kind, string name)
    {
        var list = await Kube.EventsV1.ListNamespacedEventAsync(Namespace);
        return [.. list.Items.Where(e => e.Regarding?.Name == name && e.Regarding.Kind == kind)];
    }

    /// <summary>All output of the API and operator, for failure messages.</summary>
    public string Dump() => Api.Process.Dump() + "\n" + Operator.Process.Dump();

    public async Task DisposeAsync()
    {
        await Operator.DisposeAsync();
        await Api.DisposeAsync();
        await Server.DisposeAsync();
        Kubectl.Dispose();
        try
        {
            _dir.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
