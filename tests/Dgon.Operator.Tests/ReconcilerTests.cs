using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;
using Dgon.KubeTestServer;
using Dgon.Observability;
using Dgon.Operator.Configuration;
using Dgon.Operator.Observability;
using Dgon.Operator.Reconciliation;
using k8s;
using k8s.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Dgon.Operator.Tests;

/// <summary>
/// <see cref="DgonNodeReconciler"/> as a unit: a fake informer holds the DgonNode as the API wrote it, the clock is a
/// <see cref="FakeTimeProvider"/>, and the operator's own writes go to the Kubernetes API test server. The decisions
/// are the operator's alone (issue 10): phase from the API's observations, an Event per change, the requeue at the
/// real heartbeat deadline.
/// </summary>
public sealed class ReconcilerTests : IAsyncLifetime
{
    private const string Ns = "default";
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);
    // Starts a little after the server's clock: creationTimestamp (set by the server) counts as "last seen" too.
    private readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 2);
    private readonly FakeTimeProvider _clock;
    private readonly RecordingEvents _events = new();
    private readonly OneNodeInformer _informer = new();
    private KubeApiTestServer _server = null!;
    private IKubernetes _client = null!;
    private ServiceProvider _services = null!;
    private string _dir = null!;

    public ReconcilerTests() => _clock = new FakeTimeProvider(T0);

    public async Task InitializeAsync()
    {
        _server = await KubeApiTestServer.StartAsync();
        _dir = Directory.CreateTempSubdirectory("dgon-reconciler-").FullName;
        _client = new k8s.Kubernetes(KubernetesClients.LoadConfiguration(_server.WriteKubeconfig(Path.Combine(_dir, "kubeconfig"), Ns)));
        _services = new ServiceCollection().AddMetrics().AddScoped<INodeMirror, NullMirror>().BuildServiceProvider();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _services.DisposeAsync();
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private DgonNodeReconciler Reconciler()
    {
        var options = new OperatorOptions { ConnectionString = "unused", Lifecycle = new NodeLifecycleOptions { GracePeriod = Grace }, Identity = "op-test" };
        var meters = _services.GetRequiredService<IMeterFactory>();
        var metrics = new OperatorMetrics(meters, new OperatorState(), new HostMetrics("operator", typeof(OperatorMetrics).Assembly, [OperatorMetrics.MeterName], meters));
        return new DgonNodeReconciler(
            _client, _informer, _events, _services.GetRequiredService<IServiceScopeFactory>(), new NodeLifecycle(options.Lifecycle, _clock), options, metrics, _clock,
            NullLogger<DgonNodeReconciler>.Instance);
    }

    // Creates the node and writes the API's observation fields, as the ingress API would; the informer sees the result.
    private async Task<DgonNode> ObservedAsync(string name, DateTimeOffset? heartbeat, bool ready, DateTimeOffset registered)
    {
        var created = await _client.TryGetDgonNodeAsync(Ns, name, default) ?? await _client.CreateDgonNodeAsync(new DgonNode
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns },
            Spec = new DgonNodeSpec { Region = "eu-west", Runtime = "ollama" },
        }, default);
        var status = new JsonObject { ["ready"] = ready, ["lastRegistrationTime"] = DgonNodeMapping.MicroTime(registered) };
        if (heartbeat is { } hb)
        {
            status["lastHeartbeatTime"] = DgonNodeMapping.MicroTime(hb);
        }

        var node = await _client.PatchDgonNodeStatusAsync(Ns, created.Metadata.Name, new JsonObject { ["status"] = status }, default);
        _informer.Node = node;
        return node;
    }

    private async Task<(ReconcileResult Result, DgonNode Node)> ReconcileAsync(string name)
    {
        var result = await Reconciler().ReconcileAsync(new ReconcileRequest(Ns, name), default);
        var node = (await _client.TryGetDgonNodeAsync(Ns, name, default))!;
        _informer.Node = node;
        return (result, node);
    }

    [Fact]
    public async Task A_fresh_ready_heartbeat_makes_the_node_Active_with_an_Event_and_a_requeue_at_its_real_deadline()
    {
        await ObservedAsync("n1", heartbeat: T0, ready: true, registered: T0.AddSeconds(-5));

        var (result, node) = await ReconcileAsync("n1");

        Assert.Equal("Active", node.Status!.Phase);
        Assert.Equal(node.Metadata.Generation, node.Status.ObservedGeneration);
        Assert.Contains(node.Status.Conditions!, c => c is { Type: "Ready", Status: "True" });
        var ev = Assert.Single(_events.Recorded);
        Assert.Equal(("Normal", "RuntimeReady"), (ev.Type, ev.Reason));
        Assert.Contains("(none) -> Active", ev.Note, StringComparison.Ordinal);
        // Requeued for the instant the heartbeat runs out: last heartbeat + grace, not + any refresh lag.
        Assert.NotNull(result.RequeueAfter);
        // (The bound allows 2 s of slack: a fresh-clone run once measured 31.05 s; a refresh lag would add 10 s or more.)
        Assert.InRange(result.RequeueAfter!.Value, Grace, Grace + TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task Without_a_heartbeat_for_the_grace_period_it_goes_Offline_and_a_new_heartbeat_brings_it_back()
    {
        await ObservedAsync("n2", heartbeat: T0, ready: true, registered: T0.AddSeconds(-5));
        await ReconcileAsync("n2");

        _clock.Advance(Grace); // exactly at the deadline: not yet overdue
        Assert.Equal("Active", (await ReconcileAsync("n2")).Node.Status!.Phase);
        _clock.Advance(TimeSpan.FromMilliseconds(100));
        var (_, offline) = await ReconcileAsync("n2");
        Assert.Equal("Offline", offline.Status!.Phase);
        Assert.Contains(_events.Recorded, e => e is { Type: "Warning", Reason: "HeartbeatTimeout" });

        await ObservedAsync("n2", heartbeat: _clock.GetUtcNow(), ready: true, registered: T0.AddSeconds(-5));
        var (_, back) = await ReconcileAsync("n2");
        Assert.Equal("Active", back.Status!.Phase);
        Assert.Contains(_events.Recorded, e => e.Reason == "RuntimeReady" && e.Note.Contains("Offline -> Active", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_registration_newer_than_the_last_heartbeat_is_Pending_and_nothing_the_API_owns_is_written()
    {
        await ObservedAsync("n3", heartbeat: T0, ready: true, registered: T0.AddSeconds(-5));
        await ReconcileAsync("n3");
        var before = await ObservedAsync("n3", heartbeat: T0, ready: false, registered: T0.AddSeconds(1));

        var (_, node) = await ReconcileAsync("n3");

        Assert.Equal("Pending", node.Status!.Phase);
        Assert.Contains(_events.Recorded, e => e.Reason == "Registered" && e.Note.Contains("Active -> Pending", StringComparison.Ordinal));
        // The API's fields are as the API wrote them.
        Assert.Equal(before.Status!.LastHeartbeatTime, node.Status.LastHeartbeatTime);
        Assert.Equal(before.Status.LastRegistrationTime, node.Status.LastRegistrationTime);
        Assert.Equal(before.Status.Ready, node.Status.Ready);
    }

    [Fact]
    public async Task Quarantine_sets_the_label_and_clearing_it_removes_the_label()
    {
        await ObservedAsync("n4", heartbeat: T0, ready: true, registered: T0.AddSeconds(-5));
        await _client.PatchDgonNodeAsync(Ns, "n4", new JsonObject { ["spec"] = new JsonObject { ["quarantine"] = true } }, default);
        _informer.Node = (await _client.TryGetDgonNodeAsync(Ns, "n4", default))!;

        var (_, quarantined) = await ReconcileAsync("n4");
        Assert.Equal("Quarantined", quarantined.Status!.Phase);
        Assert.Equal("true", quarantined.Metadata.Labels?[DgonNodeMapping.QuarantinedLabel]);

        await _client.PatchDgonNodeAsync(Ns, "n4", new JsonObject { ["spec"] = new JsonObject { ["quarantine"] = false } }, default);
        _informer.Node = (await _client.TryGetDgonNodeAsync(Ns, "n4", default))!;
        var (_, released) = await ReconcileAsync("n4");
        Assert.Equal("Pending", released.Status!.Phase); // it proves readiness with a new heartbeat
        Assert.False(released.Metadata.Labels?.ContainsKey(DgonNodeMapping.QuarantinedLabel) ?? false);
    }

    private sealed class RecordingEvents : IEventRecorder
    {
        public List<(string Type, string Reason, string Note)> Recorded { get; } = [];

        public Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string note, CancellationToken ct)
        {
            Recorded.Add((type, reason, note));
            return Task.CompletedTask;
        }
    }

    private sealed class NullMirror : INodeMirror
    {
        public Task UpsertAsync(NodeRecord node, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<bool> DeleteAsync(string nodeId, CancellationToken cancellationToken) => Task.FromResult(false);

        public Task<IReadOnlyList<string>> ListIdsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);
    }

    // The fake informer: the one node the test set, as the cache would hold it.
    private sealed class OneNodeInformer : IInformer<DgonNode>
    {
        public DgonNode? Node { get; set; }

        public bool HasSynced => true;

        public string? LastSyncResourceVersion => Node?.Metadata.ResourceVersion;

        public Task RunAsync(CancellationToken ct) => Task.CompletedTask;

        public Task WaitForSyncAsync(CancellationToken ct) => Task.CompletedTask;

        public bool TryGet(string? ns, string name, out DgonNode? obj)
        {
            obj = Node is { } n && n.Metadata.Name == name ? n : null;
            return obj is not null;
        }

        public IReadOnlyList<DgonNode> List() => Node is { } n ? [n] : [];

        public IDisposable AddHandler(IInformerHandler<DgonNode> handler) => new Registration();

        private sealed class Registration : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }
}
