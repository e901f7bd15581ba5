using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Testing;
using k8s;
using k8s.Autorest;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using k8s.Models;

namespace Dgon.KubeTestServer.Tests;

/// <summary>
/// The official C# client (KubernetesClient 21.0.8, which the product uses) against the test server over HTTPS with a
/// bearer token, configured from the kubeconfig the server writes: Secrets, DgonNodes (create, get, merge patch,
/// status patch/replace, list by label and resourceVersion, watch with bookmarks and 410), events.k8s.io Events,
/// Leases and leader election, 409 on a stale resourceVersion.
/// </summary>
public sealed class OfficialClientTests : IAsyncLifetime
{
    private const string Group = "dgon.io";
    private const string Version = "v1alpha1";
    private const string Plural = "dgonnodes";
    private const string Ns = "default";
    private const string Token = "official-client-token";

    private KubeApiTestServer _server = null!;
    private string _home = null!;
    private Kubernetes _client = null!;

    public async Task InitializeAsync()
    {
        var pki = TestPki.Create();
        _server = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { ServerCertificate = pki.Server, BearerToken = Token });
        _home = Directory.CreateTempSubdirectory("official-client-").FullName;
        pki.WritePemFiles(_home);
        var kubeconfig = _server.WriteKubeconfig(Path.Combine(_home, "kubeconfig.yaml"), certificateAuthorityPemPath: Path.Combine(_home, "ca.crt"));
        _client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_home, recursive: true);
    }

    private static JsonObject Node(string name, string region = "eu-west", string runtime = "ollama") => new()
    {
        ["apiVersion"] = $"{Group}/{Version}",
        ["kind"] = "DgonNode",
        ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = new JsonObject { ["region"] = region, ["runtime"] = runtime } },
        ["spec"] = new JsonObject { ["region"] = region, ["runtime"] = runtime },
    };

    private static string Rv(JsonNode? obj) => (string)obj!["metadata"]!["resourceVersion"]!;

    [Fact]
    public async Task KubeconfigGivesTlsWithTheCaAndTheBearerToken()
    {
        var list = await _client.CoreV1.ListNamespaceAsync();
        Assert.Contains(list.Items, n => n.Metadata.Name == "default");
        Assert.All(_server.Requests, r => Assert.Equal(200, r.StatusCode));

        // The same kubeconfig with another token is refused: the client does send the configured token.
        var wrong = _server.WriteKubeconfig(Path.Combine(_home, "wrong.yaml"), token: "wrong", certificateAuthorityPemPath: Path.Combine(_home, "ca.crt"));
        using var refused = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(wrong));
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => refused.CoreV1.ListNamespaceAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, e.Response.StatusCode);

        // The server's default kubeconfig embeds ServerCertificateAuthority as the trusted CA (the official client, unlike
        // kubectl, does not accept the server certificate itself as the CA: it builds the chain up to a CA it trusts).
        var pki = TestPki.Create();
        await using var withCa = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { ServerCertificate = pki.Server, ServerCertificateAuthority = pki.Ca, BearerToken = Token });
        var embedded = withCa.WriteKubeconfig(Path.Combine(_home, "embedded.yaml"));
        Assert.Contains("certificate-authority-data: " + Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(pki.CaPem)), File.ReadAllText(embedded), StringComparison.Ordinal);
        using var viaEmbedded = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(embedded));
        Assert.NotEmpty((await viaEmbedded.CoreV1.ListNamespaceAsync()).Items);
    }

    [Fact]
    public async Task PlainHttpWorksAndTheTokenIsSentThereToo()
    {
        // Over plain HTTP the client speaks HTTP/1.1 and, unlike kubectl (client-go), sends the bearer token.
        await using var plain = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { BearerToken = Token });
        var kubeconfig = plain.WriteKubeconfig(Path.Combine(_home, "plain.yaml"));
        using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig));
        await client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("plain"), Group, Version, Ns, Plural);
        var list = await client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, labelSelector: "region=eu-west");
        Assert.Single(list["items"]!.AsArray());
        Assert.All(plain.Requests, r => Assert.True(r.StatusCode is 200 or 201, $"{r.Method} {r.Path}: {r.StatusCode}"));
    }

    [Fact]
    public async Task SecretsAreCreatedReadReplacedAndDeletedAndAStaleReplaceIsAConflict()
    {
        var created = await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "node-a-hmac", Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "dgon-console" } },
            Type = "dgon.io/hmac",
            StringData = new Dictionary<string, string> { ["key"] = "s3cret" },
        }, Ns);
        Assert.Equal("s3cret"u8.ToArray(), created.Data["key"]);
        Assert.NotNull(created.Metadata.Uid);

        var read = await _client.CoreV1.ReadNamespacedSecretAsync("node-a-hmac", Ns);
        Assert.Equal("dgon.io/hmac", read.Type);
        Assert.Equal(created.Metadata.ResourceVersion, read.Metadata.ResourceVersion);

        read.Data["key"] = "r0tated"u8.ToArray();
        var replaced = await _client.CoreV1.ReplaceNamespacedSecretAsync(read, "node-a-hmac", Ns);
        Assert.Equal("r0tated"u8.ToArray(), replaced.Data["key"]);
        Assert.NotEqual(read.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);

        // read still carries the old resourceVersion: the apiserver answers 409 Conflict.
        read.Data["key"] = "l0st"u8.ToArray();
        var conflict = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedSecretAsync(read, "node-a-hmac", Ns));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);
        Assert.Contains("the object has been modified", conflict.Response.Content, StringComparison.Ordinal);

        var deleted = await _client.CoreV1.DeleteNamespacedSecretAsync("node-a-hmac", Ns);
        Assert.Equal("Success", deleted.Status);
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedSecretAsync("node-a-hmac", Ns));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
    }

    [Fact]
    public async Task DgonNodesAreCreatedPatchedAndTheirStatusIsPatchedAndReplacedAndListedByLabel()
    {
        var created = await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("node-a"), Group, Version, Ns, Plural);
        Assert.Equal(1, (long)created["metadata"]!["generation"]!);
        Assert.False((bool)created["spec"]!["quarantine"]!); // defaulted by the schema
        await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("node-b", region: "us-east", runtime: "vllm"), Group, Version, Ns, Plural);

        var got = await _client.CustomObjects.GetNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, "node-a");
        Assert.Equal(Rv(created), Rv(got));

        var patched = await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonObject>(
            new V1Patch("""{"spec":{"quarantine":true}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "node-a");
        Assert.True((bool)patched["spec"]!["quarantine"]!);
        Assert.Equal(2, (long)patched["metadata"]!["generation"]!);

        var statusPatched = await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonObject>(
            new V1Patch("""{"status":{"phase":"Quarantined","observedGeneration":2,"reputation":60}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "node-a");
        Assert.Equal("Quarantined", (string?)statusPatched["status"]!["phase"]);
        Assert.Equal(2, (long)statusPatched["metadata"]!["generation"]!);

        // A JSON patch (application/json-patch+json) works as well, here with a test-and-set on the phase.
        var jsonPatched = await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonObject>(
            new V1Patch("""[{"op":"test","path":"/status/phase","value":"Quarantined"},{"op":"replace","path":"/status/reputation","value":55}]""", V1Patch.PatchType.JsonPatch),
            Group, Version, Ns, Plural, "node-a");
        Assert.Equal(55, (double)jsonPatched["status"]!["reputation"]!);

        // Replace status (PUT /status) with the resourceVersion read: accepted; the spec in the body is ignored.
        jsonPatched["status"]!["phase"] = "Offline";
        jsonPatched["spec"]!["runtime"] = "tgi";
        var replaced = await _client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonObject>(jsonPatched, Group, Version, Ns, Plural, "node-a");
        Assert.Equal("Offline", (string?)replaced["status"]!["phase"]);
        Assert.Equal("ollama", (string?)replaced["spec"]!["runtime"]);

        // The same body again carries a stale resourceVersion: 409 Conflict as HttpOperationException.
        var conflict = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonObject>(jsonPatched, Group, Version, Ns, Plural, "node-a"));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);

        // An enum violation is a 422 with the field path.
        var invalid = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonObject>(
            new V1Patch("""{"status":{"phase":"active"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "node-a"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.Response.StatusCode);
        Assert.Contains("status.phase: Unsupported value: \"active\"", (string?)JsonNode.Parse(invalid.Response.Content)!["message"], StringComparison.Ordinal);

        var byLabel = await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, labelSelector: "region=us-east");
        Assert.Equal(["node-b"], byLabel["items"]!.AsArray().Select(i => (string?)i!["metadata"]!["name"]));
        var fromCache = await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, resourceVersion: "0");
        Assert.Equal(2, fromCache["items"]!.AsArray().Count);
        Assert.Equal("DgonNodeList", (string?)fromCache["kind"]);
        var byField = await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, fieldSelector: "status.phase=Offline");
        Assert.Equal(["node-a"], byField["items"]!.AsArray().Select(i => (string?)i!["metadata"]!["name"]));
        var unsupported = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, fieldSelector: "spec.asnHint=x"));
        Assert.Equal(HttpStatusCode.BadRequest, unsupported.Response.StatusCode);

        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, "node-b");
        var rest = await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural);
        Assert.Single(rest["items"]!.AsArray());
    }

    [Fact]
    public async Task AWatchFromAResourceVersionReceivesAddedModifiedDeletedAndBookmarks()
    {
        var first = await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("before"), Group, Version, Ns, Plural);
        var list = await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural);
        var listRv = Rv(list);
        Assert.Equal(Rv(first), listRv);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var errors = new List<Exception>();
        var seen = new List<(WatchEventType Type, string? Name, string Rv)>();
        var watch = Task.Run(async () =>
        {
            await foreach (var (type, item) in _client.CustomObjects.WatchListNamespacedCustomObjectAsync(
                Group, Version, Ns, Plural, allowWatchBookmarks: true, resourceVersion: listRv, timeoutSeconds: 50, onError: errors.Add, cancellationToken: cts.Token))
            {
                // The untyped watch yields each object as a JsonElement.
                var obj = JsonNode.Parse(((JsonElement)item).GetRawText())!;
                lock (seen)
                {
                    seen.Add((type, (string?)obj["metadata"]!["name"], Rv(obj)));
                }

                if (type == WatchEventType.Bookmark && seen.Any(s => s.Type == WatchEventType.Deleted))
                {
                    break;
                }
            }
        }, cts.Token);
        await Eventually.Until(() => Task.FromResult(_server.Requests.Any(r => r.IsWatch && r.Resource == Plural)), TimeSpan.FromSeconds(20), "the client opens a watch");

        await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("watched"), Group, Version, Ns, Plural);
        await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonObject>(
            new V1Patch("""{"status":{"phase":"Active"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "watched");
        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonObject>(Group, Version, Ns, Plural, "watched");
        await watch.WaitAsync(cts.Token);

        Assert.Empty(errors);
        List<(WatchEventType Type, string? Name, string Rv)> events;
        lock (seen)
        {
            events = [.. seen];
        }

        Assert.Equal([WatchEventType.Added, WatchEventType.Modified, WatchEventType.Deleted],
            events.Where(e => e.Type != WatchEventType.Bookmark).Select(e => e.Type));
        Assert.All(events.Where(e => e.Type != WatchEventType.Bookmark), e => Assert.Equal("watched", e.Name));
        Assert.Equal(WatchEventType.Bookmark, events[^1].Type);

        var watchRequest = _server.Requests.First(r => r.IsWatch && r.Resource == Plural);
        Assert.Contains("watch=true", watchRequest.Query, StringComparison.Ordinal);
        Assert.Contains("allowWatchBookmarks=true", watchRequest.Query, StringComparison.Ordinal);
        Assert.Contains($"resourceVersion={listRv}", watchRequest.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATypedStreamingListWatchSendsInitialEventsThenTheInitialEventsEndBookmark()
    {
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "existing" }, StringData = new Dictionary<string, string> { ["k"] = "v" } }, Ns);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var errors = new List<Exception>();
        var events = new List<(WatchEventType Type, V1Secret Secret)>();
        await foreach (var (type, secret) in _client.CoreV1.WatchListNamespacedSecretAsync(
            Ns, allowWatchBookmarks: true, resourceVersionMatch: "NotOlderThan", sendInitialEvents: true, timeoutSeconds: 50, onError: errors.Add, cancellationToken: cts.Token))
        {
            events.Add((type, secret));
            if (type == WatchEventType.Bookmark)
            {
                await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "later" } }, Ns, cancellationToken: cts.Token);
            }
            else if (secret.Metadata.Name == "later")
            {
                break;
            }
        }

        Assert.Empty(errors);
        Assert.Equal([WatchEventType.Added, WatchEventType.Bookmark, WatchEventType.Added], events.Select(e => e.Type));
        Assert.Equal("existing", events[0].Secret.Metadata.Name);
        Assert.Equal("true", events[1].Secret.Metadata.Annotations["k8s.io/initial-events-end"]);
        Assert.Equal("later", events[2].Secret.Metadata.Name);
        var query = _server.Requests.Single(r => r.IsWatch && r.Resource == "secrets").Query;
        Assert.Contains("sendInitialEvents=true", query, StringComparison.Ordinal);
        Assert.Contains("resourceVersionMatch=NotOlderThan", query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWatchFromATooOldResourceVersionGetsA410StatusThroughOnError()
    {
        var created = await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("old"), Group, Version, Ns, Plural);
        await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonObject>(
            new V1Patch("""{"status":{"phase":"Pending"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Plural, "old");
        _server.ExpireWatchHistory();

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var errors = new List<Exception>();
        var events = new List<WatchEventType>();
        await foreach (var (type, _) in _client.CustomObjects.WatchListNamespacedCustomObjectAsync(
            Group, Version, Ns, Plural, allowWatchBookmarks: true, resourceVersion: Rv(created), onError: errors.Add, cancellationToken: cts.Token))
        {
            events.Add(type);
        }

        // The client turns the ERROR event (a Status) into a KubernetesException given to onError; the stream then ends.
        Assert.Empty(events);
        var error = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, error.Status.Code);
        Assert.Equal("Expired", error.Status.Reason);
    }

    [Fact]
    public async Task EventsV1EventsAreCreatedAndReadBackAsCoreEvents()
    {
        var node = await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(Node("evented"), Group, Version, Ns, Plural);
        var created = await _client.EventsV1.CreateNamespacedEventAsync(new Eventsv1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = "evented." },
            EventTime = DateTime.UtcNow,
            Action = "MarkOffline",
            Reason = "NodeOffline",
            Note = "Heartbeats stopped for 90s",
            Type = "Warning",
            ReportingController = "dgon.io/operator",
            ReportingInstance = "dgon-operator-0",
            Regarding = new V1ObjectReference
            {
                ApiVersion = $"{Group}/{Version}", Kind = "DgonNode", Name = "evented", NamespaceProperty = Ns,
                Uid = (string?)node["metadata"]!["uid"],
            },
        }, Ns);
        Assert.StartsWith("evented.", created.Metadata.Name, StringComparison.Ordinal);
        Assert.NotNull(created.EventTime);

        var core = await _client.CoreV1.ListNamespacedEventAsync(Ns, fieldSelector: "involvedObject.name=evented,involvedObject.kind=DgonNode");
        var e = Assert.Single(core.Items);
        Assert.Equal("Heartbeats stopped for 90s", e.Message);
        Assert.Equal("dgon.io/operator", e.ReportingComponent);
    }

    [Fact]
    public async Task LeasesAreCreatedReadAndReplacedAndOneLeaderElectorCandidateHoldsTheLease()
    {
        var now = DateTime.UtcNow;
        var lease = await _client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = "manual" },
            Spec = new V1LeaseSpec { HolderIdentity = "a", LeaseDurationSeconds = 15, AcquireTime = now, RenewTime = now, LeaseTransitions = 0 },
        }, Ns);
        var read = await _client.CoordinationV1.ReadNamespacedLeaseAsync("manual", Ns);
        Assert.Equal("a", read.Spec.HolderIdentity);
        Assert.NotNull(read.Spec.RenewTime);
        read.Spec.HolderIdentity = "b";
        read.Spec.LeaseTransitions = 1;
        var replaced = await _client.CoordinationV1.ReplaceNamespacedLeaseAsync(read, "manual", Ns);
        Assert.Equal("b", replaced.Spec.HolderIdentity);
        lease.Spec.HolderIdentity = "c";
        var stale = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, "manual", Ns));
        Assert.Equal(HttpStatusCode.Conflict, stale.Response.StatusCode);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        LeaderElector Candidate(string identity) => new(new LeaderElectionConfig(new LeaseLock(_client, Ns, "dgon-operator", identity))
        {
            LeaseDuration = TimeSpan.FromSeconds(10),
            RenewDeadline = TimeSpan.FromSeconds(8),
            RetryPeriod = TimeSpan.FromMilliseconds(300),
        });
        using var a = Candidate("candidate-a");
        using var b = Candidate("candidate-b");
        var runs = new[] { a.RunAndTryToHoldLeadershipForeverAsync(cts.Token), b.RunAndTryToHoldLeadershipForeverAsync(cts.Token) };

        string? holder = null;
        await Eventually.Until(async () =>
        {
            V1Lease current;
            try
            {
                current = await _client.CoordinationV1.ReadNamespacedLeaseAsync("dgon-operator", Ns, cancellationToken: cts.Token);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                return false; // no candidate has created it yet
            }

            holder = current.Spec.HolderIdentity;
            var leaders = new[] { a, b }.Where(c => c.IsLeader()).ToList();
            return leaders.Count == 1 && holder is not null && leaders[0].GetLeader() == holder;
        }, TimeSpan.FromSeconds(30), "one candidate leads and the Lease names it");
        Assert.Contains(holder, new[] { "candidate-a", "candidate-b" });
        var held = await _client.CoordinationV1.ReadNamespacedLeaseAsync("dgon-operator", Ns, cancellationToken: cts.Token);
        Assert.Equal(10, held.Spec.LeaseDurationSeconds);
        Assert.NotNull(held.Spec.RenewTime);

        await cts.CancelAsync();
        foreach (var run in runs)
        {
            try
            {
                await run;
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }
    }
}
