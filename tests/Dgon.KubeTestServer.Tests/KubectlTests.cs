using System.Text.Json.Nodes;
using Dgon.Testing;

namespace Dgon.KubeTestServer.Tests;

/// <summary>The real kubectl (v1.32) against the test server: CRDs, custom resources, columns, status, watch, GC, events, explain (OpenAPI v3), label and field selectors.</summary>
public sealed class KubectlTests : IAsyncLifetime
{
    private KubeApiTestServer _server = null!;
    private Kubectl _kubectl = null!;

    public async Task InitializeAsync()
    {
        _server = await KubeApiTestServer.StartAsync();
        _kubectl = TestKubectl.For(_server);
    }

    public async Task DisposeAsync()
    {
        _kubectl.Dispose();
        await _server.DisposeAsync();
    }

    private Task<KubectlResult> K(params string[] args) => _kubectl.RunAsync(args);

    private async Task<JsonObject> GetNodeJsonAsync(string name) =>
        (JsonObject)JsonNode.Parse((await K("get", "dgonnode", name, "-o", "json")).EnsureSuccess("get -o json").Stdout)!;

    [Fact]
    public async Task ApplyCrdsCreatesThenIsUnchangedThenPatchesAndDiscoveryShowsShortNameAndCategory()
    {
        await using var empty = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { CrdFiles = [] });
        using var kubectl = TestKubectl.For(empty);

        var first = (await kubectl.RunAsync("apply", "-f", Manifests.CrdDirectory)).EnsureSuccess("apply crds");
        Assert.Contains("customresourcedefinition.apiextensions.k8s.io/dgonnodes.dgon.io created", first.Stdout);
        var second = (await kubectl.RunAsync("apply", "-f", Manifests.CrdDirectory)).EnsureSuccess("apply crds again");
        Assert.Contains("dgonnodes.dgon.io unchanged", second.Stdout);

        // A changed manifest is applied as a strategic merge patch of the built-in CRD type.
        var changed = File.ReadAllText(Manifests.CrdFile).Replace("app.kubernetes.io/part-of: dgon-console", "app.kubernetes.io/part-of: dgon-console\n    test: changed", StringComparison.Ordinal);
        var third = (await kubectl.RunAsync("apply", "-f", kubectl.WriteFile("crd-changed.yaml", changed))).EnsureSuccess("apply changed crd");
        Assert.Contains("dgonnodes.dgon.io configured", third.Stdout);
        Assert.Contains(empty.Requests, r => r.Method == "PATCH" && r.Resource == "customresourcedefinitions" && r.StatusCode == 200);
        var label = await kubectl.RunAsync("get", "crd", "dgonnodes.dgon.io", "-o", "jsonpath={.metadata.labels.test} {.status.conditions[?(@.type==\"Established\")].status} {.metadata.generation}");
        Assert.Equal("changed True 1", label.EnsureSuccess("get crd").Stdout);

        var resources = (await kubectl.RunAsync("api-resources")).EnsureSuccess("api-resources").Stdout;
        var line = resources.Split('\n').Single(l => l.StartsWith("dgonnodes ", StringComparison.Ordinal));
        Assert.Equal(["dgonnodes", "dgn", "dgon.io/v1alpha1", "true", "DgonNode"], line.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var byCategory = (await kubectl.RunAsync("api-resources", "--categories=dgon", "-o", "name")).EnsureSuccess("api-resources --categories").Stdout;
        Assert.Equal("dgonnodes.dgon.io", byCategory.Trim());

        var none = (await kubectl.RunAsync("get", "dgon")).EnsureSuccess("get dgon");
        Assert.Contains("No resources found in default namespace.", none.All);
        (await kubectl.RunAsync("apply", "-f", kubectl.WriteFile("n.yaml", Manifests.DgonNode("cat-node")))).EnsureSuccess("apply node");
        var byCategoryGet = (await kubectl.RunAsync("get", "dgon")).EnsureSuccess("get dgon").Stdout;
        Assert.Contains("cat-node", byCategoryGet);
        var byShortName = (await kubectl.RunAsync("get", "dgn", "-o", "name")).EnsureSuccess("get dgn").Stdout;
        Assert.Equal("dgonnode.dgon.io/cat-node", byShortName.Trim());
    }

    [Fact]
    public async Task ApplyPrunesUnknownFieldsAppliesDefaultsAndShowsPrinterColumns()
    {
        var manifest = _kubectl.WriteFile("node.yaml", Manifests.DgonNode("node-a", extraSpec: "  bogus: 1\n"));

        // kubectl validates strictly by default (server-side fieldValidation=Strict): unknown fields are rejected …
        var strict = await K("apply", "-f", manifest);
        Assert.NotEqual(0, strict.ExitCode);
        Assert.Contains("unknown field \"spec.bogus\"", strict.Stderr);

        // … and with validation off they are pruned silently.
        (await K("apply", "-f", manifest, "--validate=false")).EnsureSuccess("apply --validate=false");
        var yaml = (await K("get", "dgonnode", "node-a", "-o", "yaml")).EnsureSuccess("get -o yaml").Stdout;
        Assert.Contains("quarantine: false", yaml);
        Assert.Contains("greenEnergy: false", yaml);
        Assert.Contains("generation: 1", yaml);
        Assert.Matches("resourceVersion: \"[0-9]+\"", yaml);
        Assert.Contains("runtime: ollama", yaml);
        Assert.DoesNotContain("bogus: 1\n  greenEnergy", yaml);
        var json = await GetNodeJsonAsync("node-a");
        Assert.Null(json["spec"]!["bogus"]);

        var heartbeat = DateTimeOffset.UtcNow.AddMinutes(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        (await K("patch", "dgonnode", "node-a", "--subresource=status", "--type=merge", "-p",
            $"{{\"status\":{{\"phase\":\"Active\",\"lastHeartbeatTime\":\"{heartbeat}\",\"ready\":true,\"reputation\":61.5}}}}")).EnsureSuccess("patch status");

        var table = (await K("get", "dgonnodes")).EnsureSuccess("get dgonnodes").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^NAME\s+STATUS\s+REGION\s+RUNTIME\s+LAST HEARTBEAT\s+AGE$", table[0]);
        Assert.Matches(@"^node-a\s+Active\s+eu-west-1\s+ollama\s+3m[0-9]*s?\s+[0-9]+s$", table[1]);

        var wide = (await K("get", "dgonnodes", "-o", "wide")).EnsureSuccess("get -o wide").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^NAME\s+STATUS\s+REGION\s+RUNTIME\s+LAST HEARTBEAT\s+AGE\s+READY\s+REPUTATION\s+KEY$", wide[0]);
        Assert.Matches(@"\s+true\s+61.5\s*$", wide[1]); // no key: the Key column is empty

        var statusYaml = (await K("get", "dgonnode", "node-a", "-o", "yaml")).EnsureSuccess("get -o yaml").Stdout;
        Assert.Contains("phase: Active", statusYaml);
        Assert.Contains("reputation: 61.5", statusYaml);
    }

    [Fact]
    public async Task SpecPatchBumpsGenerationStatusPatchDoesNotAndStatusViaMainResourceIsIgnored()
    {
        (await K("apply", "-f", _kubectl.WriteFile("node.yaml", Manifests.DgonNode("gen-node")))).EnsureSuccess("apply");
        var created = await GetNodeJsonAsync("gen-node");
        Assert.Equal(1, (long)created["metadata"]!["generation"]!);

        (await K("patch", "dgonnode", "gen-node", "--type=merge", "-p", "{\"spec\":{\"runtime\":\"vllm\"}}")).EnsureSuccess("patch spec");
        var afterSpec = await GetNodeJsonAsync("gen-node");
        Assert.Equal(2, (long)afterSpec["metadata"]!["generation"]!);

        (await K("patch", "dgonnode", "gen-node", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"phase\":\"Active\"}}")).EnsureSuccess("patch status");
        var afterStatus = await GetNodeJsonAsync("gen-node");
        Assert.Equal(2, (long)afterStatus["metadata"]!["generation"]!);
        Assert.Equal("Active", (string?)afterStatus["status"]!["phase"]);
        Assert.True(long.Parse((string)afterStatus["metadata"]!["resourceVersion"]!, System.Globalization.CultureInfo.InvariantCulture)
            > long.Parse((string)afterSpec["metadata"]!["resourceVersion"]!, System.Globalization.CultureInfo.InvariantCulture));

        // A status change sent to the main resource is ignored (status subresource enabled); the label change is kept.
        (await K("patch", "dgonnode", "gen-node", "--type=merge", "-p", "{\"metadata\":{\"labels\":{\"x\":\"y\"}},\"status\":{\"phase\":\"Offline\"}}")).EnsureSuccess("patch main with status");
        var afterMain = await GetNodeJsonAsync("gen-node");
        Assert.Equal("Active", (string?)afterMain["status"]!["phase"]);
        Assert.Equal("y", (string?)afterMain["metadata"]!["labels"]!["x"]);
        Assert.Equal(2, (long)afterMain["metadata"]!["generation"]!);

        // A spec change sent to /status is ignored as well.
        (await K("patch", "dgonnode", "gen-node", "--subresource=status", "--type=merge", "-p", "{\"spec\":{\"runtime\":\"tgi\"},\"status\":{\"phase\":\"Offline\"}}")).EnsureSuccess("patch status with spec");
        var afterStatus2 = await GetNodeJsonAsync("gen-node");
        Assert.Equal("vllm", (string?)afterStatus2["spec"]!["runtime"]);
        Assert.Equal("Offline", (string?)afterStatus2["status"]!["phase"]);
    }

    [Fact]
    public async Task InvalidRuntimeIsRejectedWithTheFieldPathAndSupportedValues()
    {
        var result = await K("apply", "-f", _kubectl.WriteFile("bad.yaml", Manifests.DgonNode("bad-node", runtime: "foo")));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("spec.runtime: Unsupported value: \"foo\": supported values: \"ollama\", \"vllm\", \"tensorrtllm\", \"tgi\"", result.Stderr);
        Assert.Contains("DgonNode \"bad-node\" is invalid", result.Stderr);

        var badName = await K("apply", "-f", _kubectl.WriteFile("bad-name.yaml", Manifests.DgonNode("Bad_Name")));
        Assert.NotEqual(0, badName.ExitCode);
        Assert.Contains("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain", badName.Stderr);

        var get = await K("get", "dgonnode", "bad-node");
        Assert.Contains("NotFound", get.Stderr);
    }

    [Fact]
    public async Task GetWatchReceivesAnUpdateMadeAfterItStarted()
    {
        (await K("apply", "-f", _kubectl.WriteFile("node.yaml", Manifests.DgonNode("watched")))).EnsureSuccess("apply");
        await using var watch = _kubectl.Start("get", "dgonnodes", "-w", "--request-timeout=30s");
        Assert.True(await watch.WaitForOutputAsync(l => l.StartsWith("watched", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), watch.Dump());
        await Eventually.Until(() => Task.FromResult(_server.Requests.Any(r => r.IsWatch && r.Resource == "dgonnodes")), TimeSpan.FromSeconds(10), "kubectl opens a watch");

        (await K("patch", "dgonnode", "watched", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"phase\":\"Offline\"}}")).EnsureSuccess("patch status");
        Assert.True(await watch.WaitForOutputAsync(l => l.Contains("Offline", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), watch.Dump());
        Assert.Matches(@"^watched\s+Offline\s+eu-west-1\s+ollama", watch.Output.Last(l => l.Contains("Offline", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task DeletingANodeGarbageCollectsItsOwnedSecret()
    {
        (await K("apply", "-f", _kubectl.WriteFile("node.yaml", Manifests.DgonNode("owner")))).EnsureSuccess("apply node");
        var uid = (string)(await GetNodeJsonAsync("owner"))["metadata"]!["uid"]!;
        var secret = $"""
            apiVersion: v1
            kind: Secret
            metadata:
              name: owner-hmac
              ownerReferences:
              - apiVersion: dgon.io/v1alpha1
                kind: DgonNode
                name: owner
                uid: {uid}
                controller: true
                blockOwnerDeletion: true
            stringData:
              key: s3cret
            """;
        (await K("apply", "-f", _kubectl.WriteFile("secret.yaml", secret))).EnsureSuccess("apply secret");
        Assert.Equal("czNjcmV0", (await K("get", "secret", "owner-hmac", "-o", "jsonpath={.data.key}")).EnsureSuccess("get secret").Stdout);
        var secrets = (await K("get", "secrets")).EnsureSuccess("get secrets").Stdout;
        Assert.Matches(@"owner-hmac\s+Opaque\s+1\s+", secrets);

        var deleted = (await K("delete", "dgonnode", "owner")).EnsureSuccess("delete");
        Assert.Contains("dgonnode.dgon.io \"owner\" deleted", deleted.Stdout);
        var gone = await K("get", "secret", "owner-hmac");
        Assert.NotEqual(0, gone.ExitCode);
        Assert.Contains("secrets \"owner-hmac\" not found", gone.Stderr);
    }

    [Fact]
    public async Task DescribeShowsAnEventCreatedThroughEventsV1()
    {
        (await K("apply", "-f", _kubectl.WriteFile("node.yaml", Manifests.DgonNode("described")))).EnsureSuccess("apply node");
        var node = await GetNodeJsonAsync("described");
        using var http = HttpHelpers.Client(_server);
        var (code, body) = await http.SendAsync(HttpMethod.Post, "/apis/events.k8s.io/v1/namespaces/default/events", new JsonObject
        {
            ["apiVersion"] = "events.k8s.io/v1",
            ["kind"] = "Event",
            ["metadata"] = new JsonObject { ["generateName"] = "described." },
            ["regarding"] = new JsonObject
            {
                ["apiVersion"] = "dgon.io/v1alpha1", ["kind"] = "DgonNode", ["name"] = "described", ["namespace"] = "default",
                ["uid"] = node["metadata"]!["uid"]!.DeepClone(),
            },
            ["note"] = "Heartbeats stopped for 90s",
            ["reason"] = "NodeOffline",
            ["type"] = "Warning",
            ["action"] = "MarkOffline",
            ["reportingController"] = "dgon.io/operator",
            ["reportingInstance"] = "dgon-operator-0",
            ["eventTime"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture),
        });
        Assert.Equal(System.Net.HttpStatusCode.Created, code);
        Assert.StartsWith("described.", body.Str("metadata.name"), StringComparison.Ordinal);

        var describe = (await K("describe", "dgonnode", "described")).EnsureSuccess("describe").Stdout;
        Assert.Matches(@"Events:\s+Type\s+Reason\s+Age\s+From\s+Message", describe);
        Assert.Matches(@"Warning\s+NodeOffline\s+[0-9]+s\s+dgon.io/operator\s+Heartbeats stopped for 90s", describe);
        // kubectl lists core/v1 events by involvedObject field selectors (in random order: a Go map).
        var eventQuery = Uri.UnescapeDataString(_server.Requests.Single(r => r.Resource == "events" && r.Method == "GET").Query);
        var selector = eventQuery.Split('&').Single(p => p.StartsWith("?fieldSelector=", StringComparison.Ordinal) || p.StartsWith("fieldSelector=", StringComparison.Ordinal));
        Assert.Equal(
            ["involvedObject.kind=DgonNode", "involvedObject.name=described", "involvedObject.namespace=default", $"involvedObject.uid={node["metadata"]!["uid"]}"],
            selector[(selector.IndexOf('=', StringComparison.Ordinal) + 1)..].Split(',').Order(StringComparer.Ordinal));

        var events = (await K("get", "events")).EnsureSuccess("get events").Stdout;
        Assert.Matches(@"LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE", events);
        Assert.Matches(@"Warning\s+NodeOffline\s+dgonnode/described\s+Heartbeats stopped for 90s", events);
    }

    [Fact]
    public async Task LabelSelectorsDeleteAndNamespacesWorkThroughKubectl()
    {
        (await K("apply", "-f", _kubectl.WriteFile("a.yaml", Manifests.DgonNode("sel-a", labels: "    tier: gpu\n")))).EnsureSuccess("apply a");
        (await K("apply", "-f", _kubectl.WriteFile("b.yaml", Manifests.DgonNode("sel-b", labels: "    tier: cpu\n")))).EnsureSuccess("apply b");
        Assert.Equal("dgonnode.dgon.io/sel-a", (await K("get", "dgn", "-l", "tier=gpu", "-o", "name")).EnsureSuccess("get -l").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/sel-b", (await K("get", "dgn", "-l", "tier notin (gpu)", "-o", "name")).EnsureSuccess("get -l notin").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/sel-a", (await K("get", "dgn", "--field-selector", "metadata.name=sel-a", "-o", "name")).EnsureSuccess("get --field-selector").Stdout.Trim());

        var missingNs = await K("apply", "-n", "nope", "-f", _kubectl.WriteFile("c.yaml", Manifests.DgonNode("sel-c")));
        Assert.NotEqual(0, missingNs.ExitCode);
        Assert.Contains("namespaces \"nope\" not found", missingNs.Stderr);

        (await K("apply", "-f", _kubectl.WriteFile("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n"))).EnsureSuccess("apply ns");
        (await K("apply", "-n", "team-a", "-f", _kubectl.WriteFile("c.yaml", Manifests.DgonNode("sel-c")))).EnsureSuccess("apply in team-a");
        var all = (await K("get", "dgn", "-A")).EnsureSuccess("get -A").Stdout;
        Assert.Matches(@"team-a\s+sel-c", all);
        Assert.Matches(@"default\s+sel-a", all);

        (await K("delete", "dgn", "-l", "tier=cpu")).EnsureSuccess("delete -l");
        Assert.Equal("dgonnode.dgon.io/sel-a", (await K("get", "dgn", "-o", "name")).EnsureSuccess("get").Stdout.Trim());

        (await K("delete", "namespace", "team-a")).EnsureSuccess("delete ns");
        Assert.Contains("No resources found", (await K("get", "dgn", "-n", "team-a")).All);
    }

    [Fact]
    public async Task TypedGeneratorsSendProtobufAndAreUnderstood()
    {
        // kubectl create namespace / create secret use the typed client, which sends application/vnd.kubernetes.protobuf.
        (await K("create", "namespace", "proto-ns")).EnsureSuccess("create namespace");
        (await K("-n", "proto-ns", "create", "secret", "generic", "proto-secret", "--from-literal=token=abc", "--type=dgon.io/hmac")).EnsureSuccess("create secret");
        var secret = (JsonObject)JsonNode.Parse((await K("-n", "proto-ns", "get", "secret", "proto-secret", "-o", "json")).EnsureSuccess("get secret").Stdout)!;
        Assert.Equal("YWJj", (string?)secret["data"]!["token"]);
        Assert.Equal("dgon.io/hmac", (string?)secret["type"]);
        Assert.Null(secret["metadata"]!["generateName"]);
        var ns = (await K("get", "namespace", "proto-ns", "-o", "jsonpath={.status.phase} {.metadata.labels.kubernetes\\.io/metadata\\.name}")).EnsureSuccess("get ns").Stdout;
        Assert.Equal("Active proto-ns", ns);
    }

    [Fact]
    public async Task JoinTokenSecretsAreSelectedByTypeAndTheirAnnotationsAreEditable()
    {
        // Issue 9: join tokens are Secrets of type dgon.io/join-token, created by hand like bootstrap tokens.
        (await K("create", "secret", "generic", "dgon-join-token-abc123", "--type=dgon.io/join-token",
            "--from-literal=token-id=abc123", "--from-literal=token-secret=0123456789abcdef", "--from-literal=expiration=2099-12-31T00:00:00Z")).EnsureSuccess("create join token");
        (await K("create", "secret", "generic", "plain", "--from-literal=k=v")).EnsureSuccess("create opaque");

        var selected = (await K("get", "secrets", "--field-selector", "type=dgon.io/join-token", "-o", "name")).EnsureSuccess("get --field-selector type").Stdout.Trim();
        Assert.Equal("secret/dgon-join-token-abc123", selected);
        var others = (await K("get", "secrets", "--field-selector", "type!=dgon.io/join-token", "-o", "name")).EnsureSuccess("get --field-selector type!=").Stdout;
        Assert.Contains("secret/plain", others);
        Assert.DoesNotContain("dgon-join-token", others);
        Assert.Matches(@"dgon-join-token-abc123\s+dgon\.io/join-token\s+3\s+", (await K("get", "secrets")).EnsureSuccess("get secrets").Stdout);

        // What an admin does by hand: revoke with an annotation (the API writes the same).
        (await K("annotate", "secret", "dgon-join-token-abc123", "dgon.io/revoked-at=2026-11-21T10:00:00Z")).EnsureSuccess("annotate");
        Assert.Equal("2026-11-21T10:00:00Z", (await K("get", "secret", "dgon-join-token-abc123", "-o", "jsonpath={.metadata.annotations.dgon\\.io/revoked-at}")).EnsureSuccess("get annotation").Stdout);
    }
    [Fact]
    public async Task ExplainShowsTheCrdSchemaWithDescriptionsAndEnumsFromOpenApiV3()
    {
        var root = (await K("explain", "dgonnode")).EnsureSuccess("explain dgonnode").Stdout;
        Assert.Matches(@"KIND:\s+DgonNode", root);
        Assert.Matches(@"VERSION:\s+v1alpha1", root);
        Assert.Contains("An inference node (Ollama, vLLM, TGI or TensorRT-LLM runtime)", root);
        Assert.Matches(@"metadata\s+<ObjectMeta>", root);
        Assert.Matches(@"spec\s+<Object> -required-", root);

        var phase = (await K("explain", "dgonnode.status.phase")).EnsureSuccess("explain dgonnode.status.phase").Stdout;
        Assert.Matches(@"FIELD:\s+phase <string>", phase);
        Assert.Matches(@"ENUM:\s+Pending\s+Active\s+Offline\s+Quarantined", phase);
        Assert.Contains("Written by the operator alone.", phase);

        var spec = (await K("explain", "dgonnode.spec")).EnsureSuccess("explain dgonnode.spec").Stdout;
        Assert.Matches(@"region\s+<string> -required-", spec);
        Assert.Contains("enum: ollama, vllm, tensorrtllm, tgi", spec);
        Assert.Contains("Written by the ingress API at", spec);

        var heartbeat = (await K("explain", "dgn.status.lastHeartbeatTime")).EnsureSuccess("explain lastHeartbeatTime").Stdout;
        Assert.Contains("DGON_STATUS_REFRESH_SECONDS", heartbeat);
        var labels = (await K("explain", "dgonnodes.metadata.labels")).EnsureSuccess("explain metadata.labels").Stdout;
        Assert.Contains("<map[string]string>", labels);
        Assert.Contains(_server.Requests, r => r.Path == "/openapi/v3/apis/dgon.io/v1alpha1" && r.StatusCode == 200);
    }

    [Fact]
    public async Task SelectableFieldsSelectByPhaseInListAndWatchAndOtherFieldsAre400()
    {
        (await K("apply", "-f", _kubectl.WriteFile("a.yaml", Manifests.DgonNode("phase-a", runtime: "vllm")))).EnsureSuccess("apply a");
        (await K("apply", "-f", _kubectl.WriteFile("b.yaml", Manifests.DgonNode("phase-b")))).EnsureSuccess("apply b");
        (await K("patch", "dgonnode", "phase-a", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"phase\":\"Active\"}}")).EnsureSuccess("patch a");
        (await K("patch", "dgonnode", "phase-b", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"phase\":\"Pending\"}}")).EnsureSuccess("patch b");

        Assert.Equal("dgonnode.dgon.io/phase-a", (await K("get", "dgn", "--field-selector", "status.phase=Active", "-o", "name")).EnsureSuccess("get phase=Active").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/phase-b", (await K("get", "dgn", "--field-selector", "status.phase!=Active", "-o", "name")).EnsureSuccess("get phase!=Active").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/phase-a", (await K("get", "dgn", "--field-selector", "spec.runtime=vllm,spec.region=eu-west-1", "-o", "name")).EnsureSuccess("get runtime,region").Stdout.Trim());

        var unsupported = await K("get", "dgn", "--field-selector", "spec.asnHint=x");
        Assert.NotEqual(0, unsupported.ExitCode);
        Assert.Contains("field label not supported: spec.asnHint", unsupported.Stderr);
        Assert.Contains(_server.Requests, r => r.Resource == "dgonnodes" && r.StatusCode == 400);

        // A watch by phase: phase-b entering Active is delivered (as ADDED for this selection), phase-a leaving it too.
        await using var watch = _kubectl.Start("get", "dgn", "-w", "--field-selector", "status.phase=Active", "--output-watch-events", "--request-timeout=30s");
        Assert.True(await watch.WaitForOutputAsync(l => l.Contains("phase-a", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), watch.Dump());
        await Eventually.Until(() => Task.FromResult(_server.Requests.Any(r => r.IsWatch && r.Resource == "dgonnodes" && r.Query.Contains("fieldSelector", StringComparison.Ordinal))), TimeSpan.FromSeconds(10), "kubectl opens a watch");
        (await K("patch", "dgonnode", "phase-b", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"phase\":\"Active\"}}")).EnsureSuccess("patch b active");
        Assert.True(await watch.WaitForOutputAsync(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^ADDED\s+phase-b\s+Active"), TimeSpan.FromSeconds(20)), watch.Dump());
        (await K("patch", "dgonnode", "phase-a", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"phase\":\"Offline\"}}")).EnsureSuccess("patch a offline");
        Assert.True(await watch.WaitForOutputAsync(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^DELETED\s+phase-a\s+"), TimeSpan.FromSeconds(20)), watch.Dump());
    }

    [Fact]
    public async Task RegionAndQuarantinedLabelsSelectNodes()
    {
        (await K("apply", "-f", _kubectl.WriteFile("a.yaml", Manifests.DgonNode("eu-node", region: "eu-west", labels: "    region: eu-west\n    runtime: ollama\n")))).EnsureSuccess("apply eu");
        (await K("apply", "-f", _kubectl.WriteFile("b.yaml", Manifests.DgonNode("us-node", region: "us-east", runtime: "vllm", labels: "    region: us-east\n    runtime: vllm\n    dgon.io/quarantined: \"true\"\n")))).EnsureSuccess("apply us");

        Assert.Equal("dgonnode.dgon.io/eu-node", (await K("get", "dgn", "-l", "region=eu-west", "-o", "name")).EnsureSuccess("get -l region").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/us-node", (await K("get", "dgn", "-l", "runtime=vllm", "-o", "name")).EnsureSuccess("get -l runtime").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/us-node", (await K("get", "dgn", "-l", "dgon.io/quarantined=true", "-o", "name")).EnsureSuccess("get -l quarantined").Stdout.Trim());
        Assert.Equal("dgonnode.dgon.io/eu-node", (await K("get", "dgn", "-l", "!dgon.io/quarantined", "-o", "name")).EnsureSuccess("get -l !quarantined").Stdout.Trim());
        var table = (await K("get", "dgn", "-l", "region=eu-west")).EnsureSuccess("get table -l").Stdout;
        Assert.Matches(@"eu-node\s+eu-west\s+ollama", table);
    }
}
