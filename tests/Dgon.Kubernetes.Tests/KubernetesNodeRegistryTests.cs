using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using Dgon.Api.Configuration;
using Dgon.Api.Kubernetes;
using Dgon.Domain.Auth;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes.Controllers;
using Dgon.Testing;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary>
/// Issues 9 and 10, Kubernetes mode: the DgonNode registry's registration preconditions, token rotation and identity
/// reset (through the API and with kubectl), and its status writes (observations only, throttled heartbeats) on the
/// Kubernetes API test server.
/// </summary>
public sealed class KubernetesNodeRegistryTests(ITestOutputHelper output)
{
    private const string Ns = "default";
    private static readonly string KeyA = NodeKeyProof.PublicKeyText(NodeKeyProof.NewKey());
    private static readonly string KeyB = NodeKeyProof.PublicKeyText(NodeKeyProof.NewKey());
    private static readonly NodeHeartbeat Beat = new(true, new Dgon.Domain.Ports.NodeMetrics(0.5, 12, 300));

    private static NodeRegistration Registration(string id, string? key, string region = "eu-west") =>
        new(id, region, NodeRuntime.Ollama, null, null, false, key);

    private static string Token() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private async Task<Replica> ReplicaAsync(Cluster c, TimeProvider? clock = null, TimeSpan? refresh = null, int budget = KubernetesRegistryOptions.DefaultStatusWritesPerSecond, Dgon.Api.Fleet.HeartbeatIntervals? intervals = null) =>
        await Replica.StartAsync(c, clock ?? TimeProvider.System, refresh ?? TimeSpan.FromSeconds(1), budget, intervals, output);

    private static async Task<DgonNode> NodeAsync(Cluster c, string id) => (await c.Client.TryGetDgonNodeAsync(Ns, id, Cluster.Timeout()))!;

    private static Task<V1Secret?> SecretAsync(Cluster c, string id) => c.Client.TryReadSecretAsync(Ns, "dgonnode-" + id, Cluster.Timeout());

    private static int StatusWrites(Cluster c, string id) =>
        c.Server.Requests.Count(r => r.Method == "PATCH" && r.Resource == "dgonnodes" && r.Subresource == "status" && r.Name == id && r.StatusCode == 200);

    [Fact]
    public async Task Enrollment_writes_the_key_and_a_token_bound_to_it()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        var token = Token();

        var outcome = await api.Registry.RegisterAsync(Registration("n1", KeyA), token, RegistrationPrecondition.Keyless, Cluster.Timeout());
        Assert.False(outcome.PreconditionFailed);
        Assert.Equal(KeyA, outcome.Node!.PublicKey);
        Assert.Equal(NodePhase.Pending, outcome.Node.Phase);

        var node = await NodeAsync(c, "n1");
        Assert.Equal(KeyA, node.Spec.PublicKey);
        Assert.Equal(KeyA, DgonNodeMapping.ToRecord(node).PublicKey);
        var secret = (await SecretAsync(c, "n1"))!;
        Assert.Equal(token, Encoding.UTF8.GetString(secret.Data!["token"]));
        Assert.Equal(KeyA, secret.Metadata.Annotations!["dgon.io/public-key"]);
        Assert.Contains(secret.Metadata.OwnerReferences!, o => o.Uid == node.Metadata.Uid);

        var credentials = await api.Registry.GetCredentialsAsync("n1", Cluster.Timeout());
        Assert.Equal([token], credentials!.Tokens);
        Assert.Equal(KeyA, credentials.PublicKey);
        Assert.Null(await api.Registry.GetCredentialsAsync("absent", Cluster.Timeout()));
    }

    [Fact]
    public async Task A_failed_precondition_writes_nothing()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        var ct = Cluster.Timeout();
        var token = Token();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), token, RegistrationPrecondition.Keyless, ct);
        var nodeBefore = await NodeAsync(c, "n1");
        var secretBefore = (await SecretAsync(c, "n1"))!;

        // A join-token enrollment for a node that has a key, a proof by another key, a proof for an absent node.
        Assert.True((await api.Registry.RegisterAsync(Registration("n1", KeyB, "us-east"), Token(), RegistrationPrecondition.Keyless, ct)).PreconditionFailed);
        Assert.True((await api.Registry.RegisterAsync(Registration("n1", KeyB, "us-east"), Token(), RegistrationPrecondition.KeyIs(KeyB), ct)).PreconditionFailed);
        Assert.True((await api.Registry.RegisterAsync(Registration("ghost", KeyA), Token(), RegistrationPrecondition.KeyIs(KeyA), ct)).PreconditionFailed);

        Assert.Equal(nodeBefore.Metadata.ResourceVersion, (await NodeAsync(c, "n1")).Metadata.ResourceVersion);
        Assert.Equal(secretBefore.Metadata.ResourceVersion, (await SecretAsync(c, "n1"))!.Metadata.ResourceVersion);
        Assert.Null(await c.Client.TryGetDgonNodeAsync(Ns, "ghost", ct));
        Assert.Equal([token], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);
    }

    [Fact]
    public async Task Proven_re_registration_keeps_the_key_and_an_admin_registration_replaces_it()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        var ct = Cluster.Timeout();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);

        var second = Token();
        var proven = await api.Registry.RegisterAsync(Registration("n1", null, "us-east"), second, RegistrationPrecondition.KeyIs(KeyA), ct);
        Assert.Equal((KeyA, "us-east"), (proven.Node!.PublicKey, proven.Node.Region));
        Assert.Equal([second], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens); // the earlier token is gone

        var third = Token();
        var admin = await api.Registry.RegisterAsync(Registration("n1", KeyB), third, RegistrationPrecondition.Any, ct);
        Assert.Equal(KeyB, admin.Node!.PublicKey);
        var credentials = await api.Registry.GetCredentialsAsync("n1", ct);
        Assert.Equal([third], credentials!.Tokens);
        Assert.Equal(KeyB, credentials.PublicKey);
        Assert.Equal(KeyB, (await SecretAsync(c, "n1"))!.Metadata.Annotations!["dgon.io/public-key"]);

        // An open (unconditional) registration without a key keeps the stored one.
        var open = await api.Registry.RegisterAsync(Registration("n1", null), Token(), RegistrationPrecondition.Any, ct);
        Assert.Equal(KeyB, open.Node!.PublicKey);
    }

    [Fact]
    public async Task Of_two_racing_enrollments_of_one_node_exactly_one_wins()
    {
        await using var c = await Cluster.StartAsync();
        var replicas = new List<Replica>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                replicas.Add(await ReplicaAsync(c));
            }

            for (var round = 0; round < 5; round++)
            {
                var id = $"race-{round}";
                var keys = replicas.Select(_ => NodeKeyProof.PublicKeyText(NodeKeyProof.NewKey())).ToList();
                using var go = new ManualResetEventSlim();
                var attempts = replicas.Select((r, i) => Task.Run(async () =>
                {
                    go.Wait();
                    return await r.Registry.RegisterAsync(Registration(id, keys[i]), Token(), RegistrationPrecondition.Keyless, Cluster.Timeout(60));
                })).ToList();
                go.Set();
                var outcomes = await Task.WhenAll(attempts);

                var winner = Assert.Single(outcomes, o => !o.PreconditionFailed);
                Assert.Equal(winner.Node!.PublicKey, (await NodeAsync(c, id)).Spec.PublicKey);
                Assert.Equal(winner.Node.PublicKey, (await SecretAsync(c, id))!.Metadata.Annotations!["dgon.io/public-key"]);
            }
        }
        finally
        {
            foreach (var r in replicas)
            {
                await r.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_stale_cache_cannot_let_a_second_enrollment_through()
    {
        await using var c = await Cluster.StartAsync();
        await using var stale = await ReplicaAsync(c);
        await using var other = await ReplicaAsync(c);
        var ct = Cluster.Timeout();
        await stale.Registry.RegisterAsync(Registration("n1", null), Token(), RegistrationPrecondition.Any, ct); // keyless (a seed agent)
        await Eventually.Until(() => Task.FromResult(other.Nodes.TryGet(Ns, "n1", out _)), TimeSpan.FromSeconds(10), "the other replica saw n1");
        await stale.StopInformersAsync(); // its cache and write-through copy now say: n1 has no key

        var winner = await other.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);
        Assert.False(winner.PreconditionFailed);

        var late = await stale.Registry.RegisterAsync(Registration("n1", KeyB), Token(), RegistrationPrecondition.Keyless, ct);
        Assert.True(late.PreconditionFailed);
        Assert.Equal(KeyA, (await NodeAsync(c, "n1")).Spec.PublicKey);
        Assert.Contains(c.Server.Requests, r => r.Method == "PATCH" && r.Resource == "dgonnodes" && r.Subresource is null && r.StatusCode == 409);
    }

    [Fact]
    public async Task Rotation_keeps_the_previous_token_valid_for_the_overlap()
    {
        await using var c = await Cluster.StartAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReplicaAsync(c, clock);
        var ct = Cluster.Timeout();
        var first = Token();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), first, RegistrationPrecondition.Keyless, ct);

        var second = Token();
        var until = clock.GetUtcNow().AddSeconds(60);
        Assert.True(await api.Registry.RotateTokenAsync("n1", second, until, ct));
        Assert.Equal([second, first], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);
        var secret = (await SecretAsync(c, "n1"))!;
        Assert.Equal(first, Encoding.UTF8.GetString(secret.Data!["previous-token"]));
        Assert.True(DateTimeOffset.TryParse(Encoding.UTF8.GetString(secret.Data["previous-token-valid-until"]), out var stored));
        Assert.True((stored - until).Duration() < TimeSpan.FromMilliseconds(1), $"{stored:O} vs {until:O}");

        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal([second, first], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([second], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);

        // A second rotation drops the first token and keeps the second one for the overlap.
        var third = Token();
        Assert.True(await api.Registry.RotateTokenAsync("n1", third, clock.GetUtcNow().AddSeconds(60), ct));
        Assert.Equal([third, second], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);
        Assert.False(await api.Registry.RotateTokenAsync("absent", Token(), until, ct));
    }

    [Fact]
    public async Task Reset_through_the_api_forgets_the_key_and_every_token_and_the_node_can_enroll_again()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        await using var other = await ReplicaAsync(c);
        var ct = Cluster.Timeout();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);
        await api.Registry.RotateTokenAsync("n1", Token(), DateTimeOffset.UtcNow.AddMinutes(5), ct);

        Assert.True(await api.Registry.ResetIdentityAsync("n1", ct));
        Assert.False(await api.Registry.ResetIdentityAsync("absent", ct));
        var credentials = await api.Registry.GetCredentialsAsync("n1", ct);
        Assert.Equal((0, null), (credentials!.Tokens.Count, credentials.PublicKey));
        Assert.Null((await NodeAsync(c, "n1")).Spec.PublicKey);
        var secret = await SecretAsync(c, "n1");
        Assert.Empty(secret?.Data ?? new Dictionary<string, byte[]>());
        // Another replica agrees once its caches saw the writes.
        await Eventually.Until(async () => (await other.Registry.GetCredentialsAsync("n1", ct)) is { Tokens.Count: 0, PublicKey: null }, TimeSpan.FromSeconds(10), "the other replica sees the reset");

        var fresh = Token();
        Assert.False((await api.Registry.RegisterAsync(Registration("n1", KeyB), fresh, RegistrationPrecondition.Keyless, ct)).PreconditionFailed);
        Assert.Equal([fresh], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);
    }

    [Fact]
    public async Task Removing_the_key_with_kubectl_revokes_the_tokens()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        using var kubectl = new Kubectl(home => c.Server.WriteKubeconfig(Path.Combine(home, "kubeconfig"), Ns));
        var ct = Cluster.Timeout();
        var token = Token();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), token, RegistrationPrecondition.Keyless, ct);
        Assert.Equal([token], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);

        // An invalid key is refused by the CRD schema.
        var invalid = await kubectl.RunAsync("patch", "dgonnode", "n1", "--type=merge", "-p", """{"spec":{"publicKey":"ed25519:short"}}""");
        Assert.NotEqual(0, invalid.ExitCode);
        Assert.Contains("spec.publicKey", invalid.All, StringComparison.Ordinal);

        (await kubectl.RunAsync("patch", "dgonnode", "n1", "--type=merge", "-p", """{"spec":{"publicKey":null}}""")).EnsureSuccess("patch publicKey");
        await Eventually.Until(async () => (await api.Registry.GetCredentialsAsync("n1", ct)) is { Tokens.Count: 0, PublicKey: null }, TimeSpan.FromSeconds(10), "tokens refused after the key was removed");

        // Enrolling again (a join token) issues a working token bound to the new key.
        var fresh = Token();
        Assert.False((await api.Registry.RegisterAsync(Registration("n1", KeyB), fresh, RegistrationPrecondition.Keyless, ct)).PreconditionFailed);
        Assert.Equal([fresh], (await api.Registry.GetCredentialsAsync("n1", ct))!.Tokens);
    }

    [Fact]
    public async Task A_secret_of_a_previous_node_with_the_same_name_does_not_authenticate()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        var ct = Cluster.Timeout();
        await api.Registry.RegisterAsync(Registration("n1", null), Token(), RegistrationPrecondition.Any, ct);
        var secret = (await SecretAsync(c, "n1"))!;
        secret.Metadata.OwnerReferences![0].Uid = "00000000-0000-0000-0000-000000000000";
        await c.Client.CoreV1.ReplaceNamespacedSecretAsync(secret, secret.Metadata.Name, Ns, cancellationToken: ct);
        await Eventually.Until(async () => (await api.Registry.GetCredentialsAsync("n1", ct)) is { Tokens.Count: 0 }, TimeSpan.FromSeconds(10), "a foreign-owned Secret is ignored");
    }

    [Fact]
    public async Task Registration_sets_the_region_and_runtime_labels()
    {
        await using var c = await Cluster.StartAsync();
        await using var api = await ReplicaAsync(c);
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, Cluster.Timeout());
        var labels = (await NodeAsync(c, "n1")).Metadata.Labels;
        Assert.Equal(("eu-west", "ollama", "dgon-api"), (labels["region"], labels["runtime"], labels["app.kubernetes.io/managed-by"]));

        await api.Registry.RegisterAsync(Registration("n1", null, "us-east"), Token(), RegistrationPrecondition.KeyIs(KeyA), Cluster.Timeout());
        Assert.Equal("us-east", (await NodeAsync(c, "n1")).Metadata.Labels["region"]);
    }

    [Fact]
    public async Task A_steady_node_costs_at_most_one_status_write_per_refresh_interval()
    {
        await using var c = await Cluster.StartAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var refresh = TimeSpan.FromSeconds(10);
        await using var api = await ReplicaAsync(c, clock, refresh);
        var ct = Cluster.Timeout(40);
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);
        var afterRegistration = StatusWrites(c, "n1");

        // 31 heartbeats, one every 2 s, over 60 s: the first is written, then one per 10 s.
        for (var i = 0; i <= 30; i++)
        {
            Assert.NotNull(await api.Registry.RecordHeartbeatAsync("n1", Beat, ct));
            clock.Advance(TimeSpan.FromSeconds(2));
        }

        var writes = StatusWrites(c, "n1") - afterRegistration;
        Assert.InRange(writes, 1, 1 + 6);

        // A changed ready flag is written at once.
        await api.Registry.RecordHeartbeatAsync("n1", Beat with { Ready = false }, ct);
        Assert.Equal(writes + 1, StatusWrites(c, "n1") - afterRegistration);
        Assert.False((await NodeAsync(c, "n1")).Status!.Ready);
    }

    [Fact]
    public async Task The_trailing_write_brings_lastHeartbeatTime_to_the_last_heartbeat_once_due()
    {
        await using var c = await Cluster.StartAsync();
        var t0 = new DateTimeOffset(DateTime.UtcNow.Ticks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var clock = new FakeTimeProvider(t0);
        await using var api = await ReplicaAsync(c, clock, TimeSpan.FromSeconds(10));
        var ct = Cluster.Timeout();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);

        await api.Registry.RecordHeartbeatAsync("n1", Beat, ct); // t0: written at once
        Assert.Equal(t0, (await NodeAsync(c, "n1")).Status!.LastHeartbeatTime);
        clock.Advance(TimeSpan.FromSeconds(3));
        await api.Registry.RecordHeartbeatAsync("n1", Beat, ct);
        clock.Advance(TimeSpan.FromSeconds(3));
        await api.Registry.RecordHeartbeatAsync("n1", Beat with { Metrics = new Dgon.Domain.Ports.NodeMetrics(0.9, 13, 250) }, ct); // t0 + 6 s: the last one
        Assert.Equal(1, api.Registry.HeldObservations);
        Assert.Equal(0, await api.Registry.FlushDueAsync(ct)); // due at t0 + 10 s
        Assert.Equal(t0, (await NodeAsync(c, "n1")).Status!.LastHeartbeatTime);

        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(1, await api.Registry.FlushDueAsync(ct));
        var status = (await NodeAsync(c, "n1")).Status!;
        Assert.Equal(t0.AddSeconds(6), status.LastHeartbeatTime);
        Assert.Equal(0.9, status.GpuUtil);
        Assert.Equal(0, api.Registry.HeldObservations);
        Assert.Equal(0, await api.Registry.FlushDueAsync(ct));
    }

    [Fact]
    public async Task A_fixed_rate_agent_keeps_its_writes_one_interval_apart_however_late_the_flush_tick_runs()
    {
        // bench/kubernetes-mode.sh SCHEDULE=fixed found the hold growing heartbeat by heartbeat when the next due time
        // counted from when the flush got to a write; it counts from the due time now.
        await using var c = await Cluster.StartAsync();
        var t0 = new DateTimeOffset(DateTime.UtcNow.Ticks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var clock = new FakeTimeProvider(t0);
        await using var api = await ReplicaAsync(c, clock, TimeSpan.FromSeconds(10));
        var ct = Cluster.Timeout();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);
        await api.Registry.RecordHeartbeatAsync("n1", Beat, ct); // t0: written

        for (var period = 1; period <= 20; period++)
        {
            // Each heartbeat arrives 0.1 s before its due time and is held; the flush tick gets to it 0.25 s or 0.05 s
            // late (a tick's delay differs from one interval to the next).
            clock.SetUtcNow(t0 + TimeSpan.FromMilliseconds((10_000 * period) - 100));
            await api.Registry.RecordHeartbeatAsync("n1", Beat, ct);
            Assert.Equal(1, api.Registry.HeldObservations);
            clock.SetUtcNow(t0 + TimeSpan.FromMilliseconds((10_000 * period) + (period % 2 == 1 ? 250 : 50)));
            Assert.Equal(1, await api.Registry.FlushDueAsync(ct));
            // What kubectl shows is never older than one interval plus the flush delay.
            Assert.Equal(t0 + TimeSpan.FromMilliseconds((10_000 * period) - 100), (await NodeAsync(c, "n1")).Status!.LastHeartbeatTime);
        }
    }

    [Fact]
    public async Task The_registry_never_writes_phase_or_conditions()
    {
        await using var c = await Cluster.StartAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReplicaAsync(c, clock);
        var ct = Cluster.Timeout();
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);
        await api.Registry.RecordHeartbeatAsync("n1", Beat, ct);
        clock.Advance(TimeSpan.FromSeconds(0.5));
        await api.Registry.RecordHeartbeatAsync("n1", Beat, ct); // held
        clock.Advance(TimeSpan.FromSeconds(1));
        await api.Registry.FlushDueAsync(ct);
        await api.Registry.RecordHeartbeatAsync("n1", Beat with { Ready = false }, ct);
        await api.Registry.RecordAuthFailuresAsync("n1", new AuthFailureRecord(3, clock.GetUtcNow(), clock.GetUtcNow(), "bad signature"), ct);

        var patches = api.Requests.Requests.Where(r => r.Method == "PATCH" && r.Path.EndsWith("/dgonnodes/n1/status", StringComparison.Ordinal)).ToList();
        Assert.True(patches.Count >= 4, $"{patches.Count} status patches");
        foreach (var patch in patches)
        {
            var status = Assert.IsType<JsonObject>(JsonNode.Parse(patch.Body!)!["status"]);
            Assert.False(status.ContainsKey("phase"), patch.Body);
            Assert.False(status.ContainsKey("conditions"), patch.Body);
            Assert.False(status.ContainsKey("reputation"), patch.Body);
        }

        var node = await NodeAsync(c, "n1");
        Assert.Null(node.Status!.Phase);
        Assert.Null(node.Status.Conditions);
        Assert.Equal(3, node.Status.AuthFailures!.Count);
    }

    [Fact]
    public async Task Steady_nodes_above_the_status_write_budget_get_no_more_writes_than_it_allows_and_decisions_go_first()
    {
        // 30 nodes heartbeating every second with a 1 s refresh want 30 writes/s; the budget is 5/s.
        const int budget = 5;
        const int nodes = 30;
        await using var c = await Cluster.StartAsync();
        var t0 = new DateTimeOffset(DateTime.UtcNow.Ticks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var clock = new FakeTimeProvider(t0);
        await using var api = await ReplicaAsync(c, clock, TimeSpan.FromSeconds(1), budget);
        var ct = Cluster.Timeout(60);
        var ids = Enumerable.Range(0, nodes).Select(i => $"n{i:00}").ToList();
        foreach (var id in ids)
        {
            await api.Registry.RegisterAsync(Registration(id, null), Token(), RegistrationPrecondition.Any, ct);
        }

        int Writes() => ids.Sum(id => StatusWrites(c, id));
        var baseline = Writes(); // registration writes are not budgeted
        var perSecond = new List<int>();
        var firstRecordedBy = -1;
        const int seconds = 20;
        for (var second = 0; second < seconds; second++)
        {
            var before = Writes();
            for (var tick = 0; tick < 4; tick++)
            {
                if (tick == 0)
                {
                    foreach (var id in ids)
                    {
                        Assert.NotNull(await api.Registry.RecordHeartbeatAsync(id, Beat, ct));
                    }
                }

                await api.Registry.FlushDueAsync(ct);
                clock.Advance(KubernetesNodeRegistry.FlushTick);
            }

            perSecond.Add(Writes() - before);
            if (firstRecordedBy < 0 && (await Task.WhenAll(ids.Select(id => NodeAsync(c, id)))).All(n => n.Status?.LastHeartbeatTime is not null))
            {
                firstRecordedBy = second;
            }
        }

        output.WriteLine($"writes per second: {string.Join(' ', perSecond)}; first heartbeats all recorded by second {firstRecordedBy}");
        // A full bucket holds one second's worth: any second sees at most 2 × budget, the whole window budget × (W + 1).
        Assert.All(perSecond, w => Assert.InRange(w, 0, 2 * budget));
        Assert.InRange(Writes() - baseline, (budget * seconds) - budget, budget * (seconds + 1));
        Assert.True(api.Registry.PendingWrites > 0, "the budget binds: observations wait");
        // The 30 first heartbeats (decision-changing) took the first 30 tokens: recorded within 30 / 5 = 6 s.
        Assert.InRange(firstRecordedBy, 0, (nodes / budget) + 1);

        // The tokens are shared fairly (oldest due first), not won by whichever heartbeat comes first: every node's
        // recorded heartbeat is within its fair share, nodes / budget = 6 s, plus a second, of now.
        var stalest = (await Task.WhenAll(ids.Select(id => NodeAsync(c, id)))).Max(n => clock.GetUtcNow() - n.Status!.LastHeartbeatTime!.Value);
        output.WriteLine($"stalest recorded heartbeat: {stalest.TotalSeconds} s");
        Assert.InRange(stalest, TimeSpan.Zero, TimeSpan.FromSeconds((nodes / budget) + 1));

        // A changed ready flag jumps the queue of waiting refresh writes: written within a second.
        await api.Registry.RecordHeartbeatAsync("n07", Beat with { Ready = false }, ct);
        for (var tick = 0; tick < 4 && (await NodeAsync(c, "n07")).Status!.Ready != false; tick++)
        {
            clock.Advance(KubernetesNodeRegistry.FlushTick);
            await api.Registry.FlushDueAsync(ct);
        }

        Assert.False((await NodeAsync(c, "n07")).Status!.Ready);
    }

    [Fact]
    public async Task The_refresh_interval_stretches_to_the_heartbeat_interval_told_to_nodes()
    {
        await using var c = await Cluster.StartAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // 40 nodes at a budget of 1 write/s: nodes are told 40 s (grace 300 s allows up to 100 s).
        var intervals = new Dgon.Api.Fleet.HeartbeatIntervals(
            new HeartbeatIntervalPolicy(TimeSpan.FromSeconds(10), 1, TimeSpan.FromSeconds(300)), new FixedFleet(40), clock,
            NullLogger<Dgon.Api.Fleet.HeartbeatIntervals>.Instance);
        await using var api = await ReplicaAsync(c, clock, TimeSpan.FromSeconds(10), intervals: intervals);
        Assert.Equal(TimeSpan.FromSeconds(40), api.Registry.EffectiveRefresh());
        var ct = Cluster.Timeout(40);
        await api.Registry.RegisterAsync(Registration("n1", KeyA), Token(), RegistrationPrecondition.Keyless, ct);
        var afterRegistration = StatusWrites(c, "n1");

        // A seed agent ignoring the told interval heartbeats every 10 s for 120 s: first write, then one per 40 s.
        for (var i = 0; i <= 12; i++)
        {
            await api.Registry.RecordHeartbeatAsync("n1", Beat, ct);
            await api.Registry.FlushDueAsync(ct);
            clock.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(1 + 3, StatusWrites(c, "n1") - afterRegistration);
    }

    private sealed class FixedFleet(int nodes) : Dgon.Api.Fleet.IFleetSize
    {
        public int NodeCount => nodes;
    }

    /// <summary>One API replica's Kubernetes side: its own client (requests recorded), informers and registry.</summary>
    private sealed class Replica : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly IKubernetes _client;
        private readonly Task _informers;

        private Replica(IKubernetes client, RecordingHandler requests, Informer<DgonNode> nodes, Informer<V1Secret> secrets, KubernetesNodeRegistry registry)
        {
            _client = client;
            Requests = requests;
            Nodes = nodes;
            Registry = registry;
            _informers = Task.WhenAll(nodes.RunAsync(_stop.Token), secrets.RunAsync(_stop.Token));
        }

        public KubernetesNodeRegistry Registry { get; }

        public Informer<DgonNode> Nodes { get; }

        public RecordingHandler Requests { get; }

        public static async Task<Replica> StartAsync(Cluster c, TimeProvider clock, TimeSpan refresh, int budget, Dgon.Api.Fleet.HeartbeatIntervals? intervals, ITestOutputHelper output)
        {
            var requests = new RecordingHandler();
            var client = c.NewClient(requests);
            var nodes = new Informer<DgonNode>(ListerWatchers.DgonNodes(client, Ns), new InformerOptions(), TestLog.For(output, "nodes"));
            var secrets = new Informer<V1Secret>(ListerWatchers.Secrets(client, Ns), new InformerOptions { LabelSelector = "app.kubernetes.io/managed-by=dgon-api,dgon.io/node" }, TestLog.For(output, "secrets"));
            var registry = new KubernetesNodeRegistry(
                client, nodes, secrets, new KubeNamespace(Ns),
                new KubernetesRegistryOptions { StatusRefreshInterval = refresh, StatusWritesPerSecond = budget },
                new NodeLifecycle(new NodeLifecycleOptions(), clock), clock, new TestMeterFactory(), NullLogger<KubernetesNodeRegistry>.Instance, intervals);
            var replica = new Replica(client, requests, nodes, secrets, registry);
            await nodes.WaitForSyncAsync(Cluster.Timeout());
            await secrets.WaitForSyncAsync(Cluster.Timeout());
            return replica;
        }

        public async Task StopInformersAsync()
        {
            await _stop.CancelAsync();
            await _informers;
        }

        public async ValueTask DisposeAsync()
        {
            await StopInformersAsync();
            _stop.Dispose();
            _client.Dispose();
        }
    }

    private sealed class TestMeterFactory : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options);
            _meters.Add(meter);
            return meter;
        }

        public void Dispose() => _meters.ForEach(m => m.Dispose());
    }
}
