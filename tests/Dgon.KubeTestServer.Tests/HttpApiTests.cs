using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using static Dgon.KubeTestServer.Tests.HttpHelpers;

namespace Dgon.KubeTestServer.Tests;

/// <summary>REST semantics over plain HTTP: concurrency, selectors, paging, status, patches, GC, faults.</summary>
public sealed class HttpApiTests : ServerPerTest
{
    private static long Rv(JsonNode obj) => long.Parse(obj.Str("metadata.resourceVersion")!, CultureInfo.InvariantCulture);

    [Fact]
    public async Task PutWithAStaleResourceVersionIsAConflictAndWithoutOneIsInvalidForCustomResources()
    {
        var created = await Http.CreateNodeAsync("cas");
        Assert.Equal("1", created.Str("metadata.generation"));
        Assert.Matches("^[0-9a-f-]{36}$", created.Str("metadata.uid"));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", created.Str("metadata.creationTimestamp"));

        var (patchCode, patched) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/cas", new JsonObject { ["spec"] = new JsonObject { ["asnHint"] = "AS1" } }, "application/merge-patch+json");
        Assert.Equal(HttpStatusCode.OK, patchCode);
        Assert.True(Rv(patched) > Rv(created));
        Assert.Equal("2", patched.Str("metadata.generation"));

        var stale = (JsonObject)created.DeepClone();
        stale["spec"]!["runtime"] = "vllm";
        var (code, status) = await Http.SendAsync(HttpMethod.Put, $"{NodesPath}/cas", stale);
        Assert.Equal(HttpStatusCode.Conflict, code);
        Assert.Equal("Status", status.Str("kind"));
        Assert.Equal("Failure", status.Str("status"));
        Assert.Equal("Conflict", status.Str("reason"));
        Assert.Equal("409", status.Str("code"));
        Assert.Equal("Operation cannot be fulfilled on dgonnodes.dgon.io \"cas\": the object has been modified; please apply your changes to the latest version and try again", status.Str("message"));
        Assert.Equal("dgonnodes", status.Str("details.kind"));
        Assert.Equal("dgon.io", status.Str("details.group"));

        var unconditional = (JsonObject)patched.DeepClone();
        unconditional["metadata"]!.AsObject().Remove("resourceVersion");
        var (code422, invalid) = await Http.SendAsync(HttpMethod.Put, $"{NodesPath}/cas", unconditional);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code422);
        Assert.Contains("metadata.resourceVersion", invalid.Str("message"), StringComparison.Ordinal);

        var fresh = (JsonObject)patched.DeepClone();
        fresh["spec"]!["runtime"] = "vllm";
        var (okCode, updated) = await Http.SendAsync(HttpMethod.Put, $"{NodesPath}/cas", fresh);
        Assert.Equal(HttpStatusCode.OK, okCode);
        Assert.Equal("3", updated.Str("metadata.generation"));

        var (dupCode, dup) = await Http.SendAsync(HttpMethod.Post, NodesPath, Node("cas"));
        Assert.Equal(HttpStatusCode.Conflict, dupCode);
        Assert.Equal("AlreadyExists", dup.Str("reason"));
        Assert.Equal("dgonnodes.dgon.io \"cas\" already exists", dup.Str("message"));

        var (mismatch, mismatchBody) = await Http.SendAsync(HttpMethod.Post, NodesPath, new JsonObject
        {
            ["apiVersion"] = "dgon.io/v1alpha1", ["kind"] = "DgonNode",
            ["metadata"] = new JsonObject { ["name"] = "elsewhere", ["namespace"] = "kube-system" },
            ["spec"] = new JsonObject { ["region"] = "eu", ["runtime"] = "tgi" },
        });
        Assert.Equal(HttpStatusCode.BadRequest, mismatch);
        Assert.Equal("BadRequest", mismatchBody.Str("reason"));

        var (missing, missingBody) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Equal("dgonnodes.dgon.io \"nope\" not found", missingBody.Str("message"));
    }

    [Fact]
    public async Task ValidationFailuresAre422WithCausesAndStatusWritesAreValidatedToo()
    {
        var bad = Node("bad", runtime: "foo", region: "");
        var (code, status) = await Http.SendAsync(HttpMethod.Post, NodesPath, bad);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal("Invalid", status.Str("reason"));
        Assert.Equal("DgonNode", status.Str("details.kind"));
        var causes = status["details"]!["causes"]!.AsArray().Select(c => (c.Str("reason"), c.Str("field"))).ToList();
        Assert.Contains(("FieldValueNotSupported", "spec.runtime"), causes);
        Assert.Contains(("FieldValueInvalid", "spec.region"), causes);
        Assert.StartsWith("DgonNode.dgon.io \"bad\" is invalid: [", status.Str("message"), StringComparison.Ordinal);

        await Http.CreateNodeAsync("valid");
        var (statusCode, statusBody) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/valid/status", JsonNode.Parse("""
            {"status":{"gpuUtil":2,"lastHeartbeatTime":"yesterday","conditions":[
              {"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"Ok","message":""},
              {"type":"Ready","status":"False","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"Ok","message":""}]}}
            """), "application/merge-patch+json");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, statusCode);
        var message = statusBody.Str("message")!;
        Assert.Contains("status.gpuUtil: Invalid value: 2: status.gpuUtil in body should be less than or equal to 1", message, StringComparison.Ordinal);
        Assert.Contains("status.lastHeartbeatTime: Invalid value: \"yesterday\": status.lastHeartbeatTime in body must be of type date-time", message, StringComparison.Ordinal);
        Assert.Contains("status.conditions[1]: Duplicate value: map[string]interface {}{\"type\":\"Ready\"}", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusSubresourceNoOpWritesKeepTheResourceVersionAndStrategicMergeIsRejectedForCustomResources()
    {
        await Http.CreateNodeAsync("noop");
        var statusPatch = new JsonObject { ["status"] = new JsonObject { ["phase"] = "Active", ["reputation"] = 60 } };
        var (_, first) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/noop/status", statusPatch, "application/merge-patch+json");
        var (_, second) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/noop/status", statusPatch, "application/merge-patch+json");
        Assert.Equal(Rv(first), Rv(second));
        Assert.Equal("1", second.Str("metadata.generation"));

        var (smp, smpBody) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/noop", new JsonObject { ["spec"] = new JsonObject { ["runtime"] = "tgi" } }, "application/strategic-merge-patch+json");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, smp);
        Assert.Equal("UnsupportedMediaType", smpBody.Str("reason"));

        var (jp, jpBody) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/noop", JsonNode.Parse("""[{"op":"test","path":"/spec/runtime","value":"ollama"},{"op":"replace","path":"/spec/runtime","value":"tgi"}]"""), "application/json-patch+json");
        Assert.Equal(HttpStatusCode.OK, jp);
        Assert.Equal("tgi", jpBody.Str("spec.runtime"));
        Assert.Equal("2", jpBody.Str("metadata.generation"));

        var (created, withStatus) = await Http.SendAsync(HttpMethod.Post, NodesPath, new JsonObject
        {
            ["apiVersion"] = "dgon.io/v1alpha1", ["kind"] = "DgonNode", ["metadata"] = new JsonObject { ["name"] = "born-with-status" },
            ["spec"] = new JsonObject { ["region"] = "eu", ["runtime"] = "tgi" }, ["status"] = new JsonObject { ["phase"] = "Active" },
        });
        Assert.Equal(HttpStatusCode.Created, created);
        Assert.Null(withStatus["status"]);

        var (wrongMethod, wrongBody) = await Http.SendAsync(HttpMethod.Post, $"{NodesPath}/noop");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod);
        Assert.Equal("MethodNotAllowed", wrongBody.Str("reason"));
        var (unknown, unknownBody) = await Http.SendAsync(HttpMethod.Get, "/apis/dgon.io/v1alpha1/namespaces/default/widgets");
        Assert.Equal(HttpStatusCode.NotFound, unknown);
        Assert.Equal("NotFound", unknownBody.Str("reason"));
    }

    [Fact]
    public async Task LabelSelectorsAndContinuePagingReturnEachObjectExactlyOnceFromAConsistentSnapshot()
    {
        for (var i = 0; i < 25; i++)
        {
            await Http.CreateNodeAsync($"n{i:00}", new JsonObject { ["tier"] = i % 2 == 0 ? "gpu" : "cpu", ["idx"] = i.ToString(CultureInfo.InvariantCulture) });
        }

        async Task<List<string>> Names(string selector)
        {
            var (code, list) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}?labelSelector={Uri.EscapeDataString(selector)}");
            Assert.Equal(HttpStatusCode.OK, code);
            return [.. list["items"]!.AsArray().Select(i => i.Str("metadata.name")!)];
        }

        Assert.Equal(13, (await Names("tier=gpu")).Count);
        Assert.Equal(12, (await Names("tier!=gpu")).Count);
        Assert.Equal(12, (await Names("tier==cpu")).Count);
        Assert.Equal(25, (await Names("tier in (gpu, cpu)")).Count);
        Assert.Equal(["n01", "n03"], await Names("tier notin (gpu),idx in (1,3)"));
        Assert.Equal(25, (await Names("idx")).Count);
        Assert.Empty(await Names("!idx"));
        var (badCode, _) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}?labelSelector={Uri.EscapeDataString("tier in gpu")}");
        Assert.Equal(HttpStatusCode.BadRequest, badCode);

        var seen = new List<string>();
        string? token = null;
        string? listRv = null;
        var pages = 0;
        do
        {
            var (code, page) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}?limit=7" + (token is null ? "" : $"&continue={Uri.EscapeDataString(token)}"));
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Equal("DgonNodeList", page.Str("kind"));
            listRv ??= page.Str("metadata.resourceVersion");
            Assert.Equal(listRv, page.Str("metadata.resourceVersion"));
            seen.AddRange(page["items"]!.AsArray().Select(i => i.Str("metadata.name")!));
            token = page["metadata"]!["continue"]?.GetValue<string>();
            if (token is not null)
            {
                Assert.Equal((25 - seen.Count).ToString(CultureInfo.InvariantCulture), page.Str("metadata.remainingItemCount"));
            }

            pages++;

            // Writes between pages do not leak into the snapshot being paged.
            await Http.CreateNodeAsync($"m{pages:00}");
            await Http.SendAsync(HttpMethod.Delete, $"{NodesPath}/n{(pages * 3) + 5:00}");
        }
        while (token is not null);

        Assert.Equal(4, pages);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => $"n{i:00}"), seen);

        var (_, firstPage) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}?limit=2");
        Server.ExpireWatchHistory();
        var (expiredCode, expired) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}?limit=2&continue={Uri.EscapeDataString(firstPage.Str("metadata.continue")!)}");
        Assert.Equal(HttpStatusCode.Gone, expiredCode);
        Assert.Equal("Expired", expired.Str("reason"));
    }

    [Fact]
    public async Task TableOutputCarriesPrinterColumnsAndPartialObjectMetadata()
    {
        await Http.CreateNodeAsync("tab");
        using var request = new HttpRequestMessage(HttpMethod.Get, NodesPath);
        request.Headers.TryAddWithoutValidation("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
        using var response = await Http.SendAsync(request);
        Assert.Equal("application/json;as=Table;v=v1;g=meta.k8s.io", response.Content.Headers.ContentType!.ToString().Replace(" ", "", StringComparison.Ordinal));
        var table = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("Table", table.Str("kind"));
        Assert.Equal("meta.k8s.io/v1", table.Str("apiVersion"));
        var columns = table["columnDefinitions"]!.AsArray().Select(c => (c.Str("name"), c.Str("type"), c.Str("priority"))).ToList();
        Assert.Equal([("Name", "string", "0"), ("Status", "string", "0"), ("Region", "string", "0"), ("Runtime", "string", "0"), ("Last Heartbeat", "date", "0"), ("Age", "date", "0"), ("Ready", "boolean", "1"), ("Reputation", "number", "1"), ("Key", "string", "1")], columns);
        var row = table["rows"]![0]!;
        Assert.Equal("tab", row["cells"]![0]!.GetValue<string>());
        Assert.Null(row["cells"]![1]);
        Assert.Equal("eu-west-1", row["cells"]![2]!.GetValue<string>());
        Assert.Equal("PartialObjectMetadata", row.Str("object.kind"));
        Assert.Equal("tab", row.Str("object.metadata.name"));
    }

    [Fact]
    public async Task WatchReplaysFromAResourceVersionAndGets410AfterTheHistoryExpires()
    {
        var created = await Http.CreateNodeAsync("w1");
        await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/w1/status", new JsonObject { ["status"] = new JsonObject { ["phase"] = "Active" } }, "application/merge-patch+json");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using (var replay = await Http.GetAsync($"{NodesPath}?watch=true&resourceVersion={Rv(created)}&timeoutSeconds=1", HttpCompletionOption.ResponseHeadersRead, cts.Token))
        {
            var events = new List<JsonObject>();
            await foreach (var e in ReadEventsAsync(replay, cts.Token))
            {
                events.Add(e);
            }

            Assert.Equal(["MODIFIED"], events.Select(e => e.Str("type")));
            Assert.Equal("Active", events[0].Str("object.status.phase"));
        }

        // No resourceVersion: synthetic ADDED for the current state.
        using (var fromNow = await Http.GetAsync($"{NodesPath}?watch=1&timeoutSeconds=1", HttpCompletionOption.ResponseHeadersRead, cts.Token))
        {
            var events = new List<JsonObject>();
            await foreach (var e in ReadEventsAsync(fromNow, cts.Token))
            {
                events.Add(e);
            }

            Assert.Equal(["ADDED"], events.Select(e => e.Str("type")));
        }

        Server.ExpireWatchHistory();
        using var expired = await Http.GetAsync($"{NodesPath}?watch=true&resourceVersion={Rv(created)}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, expired.StatusCode);
        var all = new List<JsonObject>();
        await foreach (var e in ReadEventsAsync(expired, cts.Token))
        {
            all.Add(e);
        }

        var error = Assert.Single(all);
        Assert.Equal("ERROR", error.Str("type"));
        Assert.Equal("Status", error.Str("object.kind"));
        Assert.Equal("410", error.Str("object.code"));
        Assert.Equal("Expired", error.Str("object.reason"));
        Assert.StartsWith($"too old resource version: {Rv(created)} (", error.Str("object.message"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenWatchesGetAnErrorOnExpiryAndEndCleanlyOnClose()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var first = await Http.GetAsync($"{NodesPath}?watch=true&resourceVersion=0", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var second = await Http.GetAsync($"{NodesPath}?watch=true", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        await Http.CreateNodeAsync("live");
        Server.ExpireWatchHistory();
        var firstEvents = new List<string?>();
        await foreach (var e in ReadEventsAsync(first, cts.Token))
        {
            firstEvents.Add(e.Str("type") + ":" + (e.Str("object.code") ?? e.Str("object.metadata.name")));
        }

        Assert.Equal(["ADDED:live", "ERROR:410"], firstEvents);

        using var third = await Http.GetAsync($"{NodesPath}?watch=true", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        await Dgon.Testing.Eventually.Until(() => Task.FromResult(Server.Requests.Count(r => r.IsWatch) == 3), TimeSpan.FromSeconds(5), "third watch registered");
        Server.CloseWatches();
        var thirdEvents = new List<string?>();
        await foreach (var e in ReadEventsAsync(third, cts.Token))
        {
            thirdEvents.Add(e.Str("type"));
        }

        Assert.Equal(["ADDED"], thirdEvents);
    }

    [Fact]
    public async Task BookmarksArriveAndCarryOnlyTheResourceVersion()
    {
        await using var server = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200) });
        using var http = Client(server);
        var node = await http.CreateNodeAsync("bm");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var response = await http.GetAsync($"{NodesPath}?watch=true&allowWatchBookmarks=true&resourceVersion={Rv(node)}&timeoutSeconds=3", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var bookmarks = new List<JsonObject>();
        var modified = 0;
        await foreach (var e in ReadEventsAsync(response, cts.Token))
        {
            if (e.Str("type") == "BOOKMARK")
            {
                bookmarks.Add(e);
                if (bookmarks.Count == 1)
                {
                    await http.SendAsync(HttpMethod.Patch, $"{NodesPath}/bm/status", new JsonObject { ["status"] = new JsonObject { ["phase"] = "Active" } }, "application/merge-patch+json");
                }

                if (bookmarks.Count == 3)
                {
                    break;
                }
            }
            else
            {
                Assert.Equal("MODIFIED", e.Str("type"));
                modified++;
            }
        }

        Assert.Equal(1, modified);
        Assert.Equal(3, bookmarks.Count);
        var last = bookmarks[^1]["object"]!.AsObject();
        Assert.Equal("DgonNode", last.Str("kind"));
        Assert.Equal("dgon.io/v1alpha1", last.Str("apiVersion"));
        Assert.Null(last["spec"]);
        Assert.True(Rv(last) > Rv(node));
    }

    [Fact]
    public async Task ASelectorWatchSeesAnObjectThatStopsMatchingAsDeleted()
    {
        await Http.CreateNodeAsync("sel", new JsonObject { ["tier"] = "gpu" });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var response = await Http.GetAsync($"{NodesPath}?watch=true&labelSelector=tier%3Dgpu&timeoutSeconds=2", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/sel", JsonNode.Parse("""{"metadata":{"labels":{"tier":"cpu"}}}"""), "application/merge-patch+json");
        await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/sel", JsonNode.Parse("""{"metadata":{"labels":{"tier":"gpu"}}}"""), "application/merge-patch+json");
        var events = new List<string?>();
        await foreach (var e in ReadEventsAsync(response, cts.Token))
        {
            events.Add(e.Str("type"));
        }

        Assert.Equal(["ADDED", "DELETED", "ADDED"], events);
    }

    [Fact]
    public async Task ConcurrentWritersGetUniqueIncreasingResourceVersionsAndAWatchSeesEveryWriteInOrder()
    {
        await Http.CreateNodeAsync("race");
        var start = Rv((await Http.SendAsync(HttpMethod.Get, $"{NodesPath}/race")).Body);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var watch = await Http.GetAsync($"{NodesPath}?watch=true&resourceVersion={start}", HttpCompletionOption.ResponseHeadersRead, cts.Token);

        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rvs = new List<long>();
            for (var i = 0; i < 25; i++)
            {
                var (code, body) = await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/race/status", new JsonObject { ["status"] = new JsonObject { ["p95Ms"] = (w * 1000) + i } }, "application/merge-patch+json");
                Assert.Equal(HttpStatusCode.OK, code);
                rvs.Add(Rv(body));
            }

            return rvs;
        })).ToList();
        var written = (await Task.WhenAll(writers)).SelectMany(r => r).ToList();
        Assert.Equal(100, written.Distinct().Count());

        var seen = new List<long>();
        await foreach (var e in ReadEventsAsync(watch, cts.Token))
        {
            seen.Add(Rv(e["object"]!));
            if (seen.Count == 100)
            {
                break;
            }
        }

        Assert.Equal(written.Order(), seen);
    }

    [Fact]
    public async Task InjectedFaultsFailMatchingRequestsWithoutSideEffectsAndRequestsAreRecorded()
    {
        await Http.CreateNodeAsync("faulty");
        Server.InjectFault(r => r.Method == "PATCH" && r.Subresource == "status" && r.Name == "faulty", 2, 409);
        Server.InjectFault(r => r.Method == "GET" && r.Resource == "dgonnodes" && r.Name is null && !r.IsWatch, 1, 429);
        var patch = new JsonObject { ["status"] = new JsonObject { ["phase"] = "Active" } };
        var codes = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            codes.Add((await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/faulty/status", patch, "application/merge-patch+json")).Code);
        }

        Assert.Equal([HttpStatusCode.Conflict, HttpStatusCode.Conflict, HttpStatusCode.OK], codes);
        using var throttled = await Http.GetAsync(NodesPath);
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.True(throttled.Headers.RetryAfter is not null);
        Assert.Equal(HttpStatusCode.OK, (await Http.SendAsync(HttpMethod.Get, NodesPath)).Code);

        var statusWrites = Server.Requests.Where(r => r.Subresource == "status" && r.Name == "faulty").Select(r => r.StatusCode).ToList();
        Assert.Equal([409, 409, 200], statusWrites);
        var last = Server.Requests[^1];
        Assert.Equal(("GET", "/apis/dgon.io/v1alpha1/namespaces/default/dgonnodes", "dgonnodes", "default", 200), (last.Method, last.Path, last.Resource, last.Namespace, last.StatusCode));
    }

    [Fact]
    public async Task ForegroundOrphanAndFinalizersFollowTheGarbageCollectorRules()
    {
        async Task<string> Secret(string name, JsonObject owner, bool block)
        {
            var (code, body) = await Http.SendAsync(HttpMethod.Post, "/api/v1/namespaces/default/secrets", new JsonObject
            {
                ["metadata"] = new JsonObject
                {
                    ["name"] = name,
                    ["ownerReferences"] = new JsonArray(new JsonObject
                    {
                        ["apiVersion"] = "dgon.io/v1alpha1", ["kind"] = "DgonNode", ["name"] = owner.Str("metadata.name"),
                        ["uid"] = owner.Str("metadata.uid"), ["blockOwnerDeletion"] = block,
                    }),
                    ["finalizers"] = block ? new JsonArray("test/hold") : null,
                },
                ["stringData"] = new JsonObject { ["k"] = "v" },
            });
            Assert.Equal(HttpStatusCode.Created, code);
            Assert.Null(body["stringData"]);
            Assert.Equal("Opaque", body.Str("type"));
            return body.Str("metadata.name")!;
        }

        // Orphan: the dependent stays and loses its ownerReference.
        var orphanOwner = await Http.CreateNodeAsync("orphan-owner");
        await Secret("orphaned", orphanOwner, block: false);
        var (_, orphanDelete) = await Http.SendAsync(HttpMethod.Delete, $"{NodesPath}/orphan-owner", new JsonObject { ["propagationPolicy"] = "Orphan" });
        Assert.Equal("Success", orphanDelete.Str("status"));
        var (orphanCode, orphaned) = await Http.SendAsync(HttpMethod.Get, "/api/v1/namespaces/default/secrets/orphaned");
        Assert.Equal(HttpStatusCode.OK, orphanCode);
        Assert.Null(orphaned["metadata"]!["ownerReferences"]);

        // Foreground: the owner waits (deletionTimestamp + foregroundDeletion) for a blocking dependent held by a finalizer.
        var owner = await Http.CreateNodeAsync("fg-owner");
        await Secret("held", owner, block: true);
        var (fgCode, pending) = await Http.SendAsync(HttpMethod.Delete, $"{NodesPath}/fg-owner", new JsonObject { ["propagationPolicy"] = "Foreground" });
        Assert.Equal(HttpStatusCode.OK, fgCode);
        Assert.NotNull(pending.Str("metadata.deletionTimestamp"));
        Assert.Contains("foregroundDeletion", pending["metadata"]!["finalizers"]!.AsArray().Select(f => (string?)f));
        var (heldCode, held) = await Http.SendAsync(HttpMethod.Get, "/api/v1/namespaces/default/secrets/held");
        Assert.Equal(HttpStatusCode.OK, heldCode);
        Assert.NotNull(held.Str("metadata.deletionTimestamp"));

        var (_, stillThere) = await Http.SendAsync(HttpMethod.Get, $"{NodesPath}/fg-owner");
        Assert.Equal("DgonNode", stillThere.Str("kind"));

        // Releasing the dependent's finalizer lets both go.
        var (releaseCode, _) = await Http.SendAsync(HttpMethod.Patch, "/api/v1/namespaces/default/secrets/held", JsonNode.Parse("""{"metadata":{"finalizers":null}}"""), "application/merge-patch+json");
        Assert.Equal(HttpStatusCode.OK, releaseCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, "/api/v1/namespaces/default/secrets/held")).Code);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, $"{NodesPath}/fg-owner")).Code);

        // Preconditions.
        var pre = await Http.CreateNodeAsync("pre");
        var (preCode, preBody) = await Http.SendAsync(HttpMethod.Delete, $"{NodesPath}/pre", new JsonObject { ["preconditions"] = new JsonObject { ["uid"] = "00000000-0000-0000-0000-000000000000" } });
        Assert.Equal(HttpStatusCode.Conflict, preCode);
        Assert.Contains("Precondition failed: UID in precondition", preBody.Str("message"), StringComparison.Ordinal);
        var (okCode, _) = await Http.SendAsync(HttpMethod.Delete, $"{NodesPath}/pre", new JsonObject { ["preconditions"] = new JsonObject { ["uid"] = pre.Str("metadata.uid"), ["resourceVersion"] = pre.Str("metadata.resourceVersion") } });
        Assert.Equal(HttpStatusCode.OK, okCode);
    }

    [Fact]
    public async Task LeasesSupportLeaderElectionStyleCompareAndSwap()
    {
        const string path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
        var (code, lease) = await Http.SendAsync(HttpMethod.Post, path, new JsonObject
        {
            ["apiVersion"] = "coordination.k8s.io/v1", ["kind"] = "Lease", ["metadata"] = new JsonObject { ["name"] = "dgon-operator" },
            ["spec"] = new JsonObject { ["holderIdentity"] = "a", ["leaseDurationSeconds"] = 15, ["acquireTime"] = "2026-11-21T10:00:00Z", ["renewTime"] = "2026-11-21T10:00:00.5Z", ["leaseTransitions"] = 0 },
        });
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal("2026-11-21T10:00:00.000000Z", lease.Str("spec.acquireTime"));
        Assert.Equal("2026-11-21T10:00:00.500000Z", lease.Str("spec.renewTime"));
        Assert.Null(lease["metadata"]!["generation"]);

        var takeA = (JsonObject)lease.DeepClone();
        takeA["spec"]!["renewTime"] = "2026-11-21T10:00:05.000000Z";
        var takeB = (JsonObject)lease.DeepClone();
        takeB["spec"]!["holderIdentity"] = "b";
        takeB["spec"]!["leaseTransitions"] = 1;
        var results = await Task.WhenAll(Http.SendAsync(HttpMethod.Put, $"{path}/dgon-operator", takeA), Http.SendAsync(HttpMethod.Put, $"{path}/dgon-operator", takeB));
        Assert.Equal(1, results.Count(r => r.Code == HttpStatusCode.OK));
        Assert.Equal(1, results.Count(r => r.Code == HttpStatusCode.Conflict));

        var (badCode, bad) = await Http.SendAsync(HttpMethod.Patch, $"{path}/dgon-operator", JsonNode.Parse("""{"spec":{"leaseDurationSeconds":0}}"""), "application/merge-patch+json");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badCode);
        Assert.Contains("spec.leaseDurationSeconds", bad.Str("message"), StringComparison.Ordinal);

        var (smpCode, smp) = await Http.SendAsync(HttpMethod.Patch, $"{path}/dgon-operator", JsonNode.Parse("""{"spec":{"holderIdentity":"c"}}"""), "application/strategic-merge-patch+json");
        Assert.Equal(HttpStatusCode.OK, smpCode);
        Assert.Equal("c", smp.Str("spec.holderIdentity"));
    }

    [Fact]
    public async Task EventsAreOneStorageServedAsCoreV1AndEventsV1WithFieldSelectors()
    {
        var node = await Http.CreateNodeAsync("ev-node");
        var regarding = new JsonObject { ["apiVersion"] = "dgon.io/v1alpha1", ["kind"] = "DgonNode", ["name"] = "ev-node", ["namespace"] = "default", ["uid"] = node.Str("metadata.uid") };
        var (invalidCode, invalid) = await Http.SendAsync(HttpMethod.Post, "/apis/events.k8s.io/v1/namespaces/default/events", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "incomplete" }, ["regarding"] = regarding.DeepClone(), ["note"] = "x", ["type"] = "Normal",
        });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalidCode);
        Assert.Contains("reportingController: Required value", invalid.Str("message"), StringComparison.Ordinal);

        var (code, _) = await Http.SendAsync(HttpMethod.Post, "/apis/events.k8s.io/v1/namespaces/default/events", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "ev-node.1" }, ["regarding"] = regarding.DeepClone(), ["note"] = "went offline",
            ["reason"] = "NodeOffline", ["type"] = "Warning", ["action"] = "MarkOffline", ["reportingController"] = "dgon.io/operator",
            ["reportingInstance"] = "op-0", ["eventTime"] = "2026-11-21T10:00:00Z", ["series"] = new JsonObject { ["count"] = 3, ["lastObservedTime"] = "2026-11-21T10:05:00Z" },
        });
        Assert.Equal(HttpStatusCode.Created, code);
        await Http.SendAsync(HttpMethod.Post, "/api/v1/namespaces/default/events", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "other.1" }, ["involvedObject"] = new JsonObject { ["kind"] = "DgonNode", ["name"] = "other", ["namespace"] = "default" },
            ["message"] = "unrelated", ["reason"] = "X", ["type"] = "Normal", ["count"] = 1,
        });

        var selector = Uri.EscapeDataString($"involvedObject.name=ev-node,involvedObject.namespace=default,involvedObject.kind=DgonNode,involvedObject.uid={node.Str("metadata.uid")}");
        var (listCode, core) = await Http.SendAsync(HttpMethod.Get, $"/api/v1/namespaces/default/events?fieldSelector={selector}");
        Assert.Equal(HttpStatusCode.OK, listCode);
        var ev = Assert.Single(core["items"]!.AsArray())!;
        Assert.Equal("went offline", ev.Str("message"));
        Assert.Equal("ev-node", ev.Str("involvedObject.name"));
        Assert.Equal("dgon.io/operator", ev.Str("reportingComponent"));
        Assert.Equal("2026-11-21T10:00:00.000000Z", ev.Str("eventTime"));
        Assert.Equal("3", ev.Str("series.count"));

        var (_, v1) = await Http.SendAsync(HttpMethod.Get, "/apis/events.k8s.io/v1/namespaces/default/events/other.1");
        Assert.Equal("unrelated", v1.Str("note"));
        Assert.Equal("other", v1.Str("regarding.name"));
        Assert.Equal("1", v1.Str("deprecatedCount"));
        var (_, byRegarding) = await Http.SendAsync(HttpMethod.Get, "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dother");
        Assert.Equal(["other.1"], byRegarding["items"]!.AsArray().Select(i => i.Str("metadata.name")));
        var (badField, _) = await Http.SendAsync(HttpMethod.Get, "/api/v1/namespaces/default/events?fieldSelector=spec.nothing%3Dx");
        Assert.Equal(HttpStatusCode.BadRequest, badField);
    }

    [Fact]
    public async Task GenerateNameNamespacesAndDiscoveryFollowTheApiServer()
    {
        var (code, generated) = await Http.SendAsync(HttpMethod.Post, "/api/v1/namespaces/default/secrets", new JsonObject { ["metadata"] = new JsonObject { ["generateName"] = "tok-" }, ["type"] = "Opaque" });
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Matches("^tok-[a-z0-9]{5}$", generated.Str("metadata.name"));

        var (missingNs, missing) = await Http.SendAsync(HttpMethod.Post, "/apis/dgon.io/v1alpha1/namespaces/ghost/dgonnodes", Node("x"));
        Assert.Equal(HttpStatusCode.NotFound, missingNs);
        Assert.Equal("namespaces \"ghost\" not found", missing.Str("message"));

        var (_, version) = await Http.SendAsync(HttpMethod.Get, "/version");
        Assert.Equal("1", version.Str("major"));
        Assert.Equal("32", version.Str("minor"));
        var (_, groups) = await Http.SendAsync(HttpMethod.Get, "/apis");
        Assert.Contains(groups["groups"]!.AsArray(), g => g.Str("name") == "dgon.io" && g.Str("preferredVersion.version") == "v1alpha1");
        var (_, resources) = await Http.SendAsync(HttpMethod.Get, "/apis/dgon.io/v1alpha1");
        var names = resources["resources"]!.AsArray().Select(r => r.Str("name")).ToList();
        Assert.Equal(["dgonnodes", "dgonnodes/status"], names);
        var main = resources["resources"]![0]!;
        Assert.Equal(("dgonnode", "true", "DgonNode"), (main.Str("singularName"), main.Str("namespaced"), main.Str("kind")));
        Assert.Equal("[\"dgn\"]", main["shortNames"]!.ToJsonString());
        Assert.Equal("[\"dgon\"]", main["categories"]!.ToJsonString());

        var (crdCode, crd) = await Http.SendAsync(HttpMethod.Get, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dgonnodes.dgon.io");
        Assert.Equal(HttpStatusCode.OK, crdCode);
        var conditions = crd["status"]!["conditions"]!.AsArray().Select(c => (c.Str("type"), c.Str("status"))).ToList();
        Assert.Contains(("Established", "True"), conditions);
        Assert.Contains(("NamesAccepted", "True"), conditions);
    }
}
