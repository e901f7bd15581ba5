using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Kubernetes.Json;

namespace Dgon.Kubernetes.Tests;

public sealed class SerializationTests
{
    [Fact]
    public void DgonNode_serializes_camelCase_omits_nulls_and_uses_RFC3339_seconds()
    {
        var node = new DgonNode
        {
            Metadata = new ObjectMeta { Name = "n1", Namespace = "dgon", Labels = new() { ["dgon.io/region"] = "eu" } },
            Spec = new DgonNodeSpec { Region = "eu-west", Runtime = "ollama", GreenEnergy = true },
            Status = new DgonNodeStatus
            {
                Phase = "active",
                LastHeartbeatTime = new DateTimeOffset(2026, 11, 21, 10, 0, 0, 123, TimeSpan.Zero),
                P95Ms = 12.5,
                GpuUtil = 0.5,
                AuthFailures = new DgonNodeAuthFailures
                {
                    Count = 3,
                    FirstFailureTime = new DateTimeOffset(2026, 11, 21, 11, 0, 0, TimeSpan.FromHours(1)),
                    LastFailureTime = new DateTimeOffset(2026, 11, 21, 10, 5, 0, TimeSpan.Zero),
                },
                Conditions = [new Condition { Type = "Ready", Status = "True", Reason = "Heartbeating", Message = "ok", LastTransitionTime = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero) }],
            },
        };
        var json = JsonSerializer.Serialize(node, KubeResources.DgonNodes.TypeInfo);
        var doc = JsonNode.Parse(json)!;
        Assert.Equal("dgon.io/v1alpha1", (string?)doc["apiVersion"]);
        Assert.Equal("DgonNode", (string?)doc["kind"]);
        Assert.Equal("eu-west", (string?)doc["spec"]!["region"]);
        Assert.True((bool)doc["spec"]!["greenEnergy"]!);
        Assert.False((bool)doc["spec"]!["quarantine"]!);
        Assert.Null(doc["spec"]!["asnHint"]);
        Assert.False(((JsonObject)doc["spec"]!).ContainsKey("asnHint"));
        Assert.False(((JsonObject)doc["metadata"]!).ContainsKey("uid"));
        Assert.Equal("2026-11-21T10:00:00Z", (string?)doc["status"]!["lastHeartbeatTime"]);
        Assert.Equal("2026-11-21T10:00:00Z", (string?)doc["status"]!["authFailures"]!["firstFailureTime"]);
        Assert.Equal(12.5, (double)doc["status"]!["p95Ms"]!);
        Assert.Equal(0.5, (double)doc["status"]!["gpuUtil"]!);
        Assert.Equal("2026-11-21T10:00:00Z", (string?)doc["status"]!["conditions"]![0]!["lastTransitionTime"]);
        Assert.False(((JsonObject)doc["status"]!["conditions"]![0]!).ContainsKey("observedGeneration"));

        var back = JsonSerializer.Deserialize(json, KubeResources.DgonNodes.TypeInfo)!;
        Assert.Equal("n1", back.Metadata.Name);
        Assert.Equal(3, back.Status!.AuthFailures!.Count);
        Assert.Equal(new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero), back.Status.AuthFailures.FirstFailureTime);
    }

    [Fact]
    public void Every_CRD_property_name_is_known_to_the_model()
    {
        // The model must cover the CRD schema: serialize a fully-populated node and compare the property names.
        var crd = File.ReadAllText(Path.Combine(Dgon.Testing.RepoPaths.Root, "crds", "dgonnodes.dgon.io.yaml"));
        var node = new DgonNode
        {
            Spec = new DgonNodeSpec { Region = "r", Runtime = "vllm", AsnHint = "a", WalletAddress = "w" },
            Status = new DgonNodeStatus
            {
                Phase = "pending", Ready = true, LastHeartbeatTime = DateTimeOffset.UnixEpoch, GpuUtil = 0, MemUsedGb = 0, P95Ms = 0, Reputation = 60,
                ObservedGeneration = 1, AuthFailures = new DgonNodeAuthFailures { LastReason = "x" },
                Conditions = [new Condition { ObservedGeneration = 1 }],
            },
        };
        var json = JsonNode.Parse(JsonSerializer.Serialize(node, KubeResources.DgonNodes.TypeInfo))!;
        var names = new List<string>();
        void Collect(JsonNode? n)
        {
            if (n is JsonObject o)
            {
                foreach (var (k, v) in o)
                {
                    names.Add(k);
                    Collect(v);
                }
            }
            else if (n is JsonArray a)
            {
                foreach (var item in a)
                {
                    Collect(item);
                }
            }
        }

        Collect(json["spec"]);
        Collect(json["status"]);
        foreach (var name in names.Distinct())
        {
            Assert.Contains(name + ":", crd, StringComparison.Ordinal);
        }

        Assert.Equal(25, names.Distinct().Count()); // 6 spec + 10 status + 4 authFailures + 5 more condition fields
    }

    [Fact]
    public void Unknown_fields_survive_a_round_trip()
    {
        const string json = """{"apiVersion":"dgon.io/v1alpha1","kind":"DgonNode","metadata":{"name":"n","managedFields":[{"manager":"kubectl"}]},"spec":{"region":"r","runtime":"tgi","futureField":7},"status":{"phase":"active","extra":"x"},"topLevel":true}""";
        var node = JsonSerializer.Deserialize(json, KubeResources.DgonNodes.TypeInfo)!;
        var again = JsonNode.Parse(JsonSerializer.Serialize(node, KubeResources.DgonNodes.TypeInfo))!;
        Assert.Equal(7, (int)again["spec"]!["futureField"]!);
        Assert.Equal("kubectl", (string?)again["metadata"]!["managedFields"]![0]!["manager"]);
        Assert.Equal("x", (string?)again["status"]!["extra"]);
        Assert.True((bool)again["topLevel"]!);
    }

    [Fact]
    public void Times_with_fractions_and_offsets_are_read_as_UTC()
    {
        var node = JsonSerializer.Deserialize("""{"metadata":{"creationTimestamp":"2026-11-21T12:00:00.5+02:00"},"spec":{"region":"r","runtime":"tgi"}}""", KubeResources.DgonNodes.TypeInfo)!;
        Assert.Equal(new DateTimeOffset(2026, 11, 21, 10, 0, 0, 500, TimeSpan.Zero), node.Metadata.CreationTimestamp);
        Assert.Equal(TimeSpan.Zero, node.Metadata.CreationTimestamp!.Value.Offset);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("""{"metadata":{"creationTimestamp":"yesterday"}}""", KubeResources.DgonNodes.TypeInfo));
    }

    [Fact]
    public void Lease_and_Event_times_are_MicroTime()
    {
        var t = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero).AddTicks(1_234_567);
        var lease = new Lease { Spec = new LeaseSpec { HolderIdentity = "a", RenewTime = t, AcquireTime = t, LeaseDurationSeconds = 10 } };
        var json = JsonNode.Parse(JsonSerializer.Serialize(lease, KubeResources.Leases.TypeInfo))!;
        Assert.Equal("2026-11-21T10:00:00.123456Z", (string?)json["spec"]!["renewTime"]);
        Assert.Equal("2026-11-21T10:00:00.123456Z", (string?)json["spec"]!["acquireTime"]);
        Assert.Equal("coordination.k8s.io/v1", (string?)json["apiVersion"]);

        var ev = new EventsV1Event { EventTime = t, Series = new EventSeries { Count = 2, LastObservedTime = t } };
        var evJson = JsonNode.Parse(JsonSerializer.Serialize(ev, KubeResources.Events.TypeInfo))!;
        Assert.Equal("2026-11-21T10:00:00.123456Z", (string?)evJson["eventTime"]);
        Assert.Equal("2026-11-21T10:00:00.123456Z", (string?)evJson["series"]!["lastObservedTime"]);

        var back = JsonSerializer.Deserialize(json.ToJsonString(), KubeResources.Leases.TypeInfo)!;
        Assert.Equal(t.AddTicks(-7), back.Spec!.RenewTime); // microsecond precision
    }

    [Fact]
    public void Secret_data_is_base64_on_the_wire()
    {
        var secret = new Secret { Metadata = new ObjectMeta { Name = "s" }, Data = new() { ["key"] = [0, 1, 2, 255] } };
        var json = JsonNode.Parse(JsonSerializer.Serialize(secret, KubeResources.Secrets.TypeInfo))!;
        Assert.Equal("AAEC/w==", (string?)json["data"]!["key"]);
        var back = JsonSerializer.Deserialize("""{"data":{"k":"aGVsbG8="}}""", KubeResources.Secrets.TypeInfo)!;
        Assert.Equal("hello"u8.ToArray(), back.Data!["k"]);
    }

    [Fact]
    public void Watch_lines_parse_objects_bookmarks_and_errors()
    {
        var added = KubeClient.ParseWatchLine(KubeResources.DgonNodes, """{"type":"ADDED","object":{"apiVersion":"dgon.io/v1alpha1","kind":"DgonNode","metadata":{"name":"n","resourceVersion":"5"},"spec":{"region":"r","runtime":"tgi"}}}""");
        Assert.Equal("ADDED", added.Type);
        Assert.Equal("5", added.Object!.Metadata.ResourceVersion);

        var bookmark = KubeClient.ParseWatchLine(KubeResources.DgonNodes, """{"type":"BOOKMARK","object":{"kind":"DgonNode","apiVersion":"dgon.io/v1alpha1","metadata":{"resourceVersion":"9"}}}""");
        Assert.Equal("BOOKMARK", bookmark.Type);
        Assert.Equal("9", bookmark.Object!.Metadata.ResourceVersion);

        var gone = Assert.Throws<KubeGoneException>(() => KubeClient.ParseWatchLine(KubeResources.DgonNodes,
            """{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"""));
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
        Assert.Equal("Expired", gone.Reason);

        var other = Assert.Throws<KubeApiException>(() => KubeClient.ParseWatchLine(KubeResources.DgonNodes,
            """{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"boom","reason":"InternalError","code":500}}"""));
        Assert.Equal(HttpStatusCode.InternalServerError, other.StatusCode);
        Assert.IsNotType<KubeGoneException>(other);

        Assert.Throws<KubeApiException>(() => KubeClient.ParseWatchLine(KubeResources.DgonNodes, "{not json"));
    }

    [Fact]
    public void Status_bodies_map_to_specific_exceptions()
    {
        static KubeApiException Map(int code, string reason) =>
            KubeApiErrors.FromStatus((HttpStatusCode)code, KubeClient.ParseStatus($$$"""{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"{{{reason}}}","code":{{{code}}},"details":{"causes":[{"reason":"FieldValueInvalid","field":"spec.region","message":"bad"}]}}"""));

        Assert.IsType<KubeNotFoundException>(Map(404, "NotFound"));
        Assert.IsType<KubeConflictException>(Map(409, "Conflict"));
        Assert.IsType<KubeAlreadyExistsException>(Map(409, "AlreadyExists"));
        Assert.IsType<KubeGoneException>(Map(410, "Expired"));
        var invalid = Assert.IsType<KubeInvalidException>(Map(422, "Invalid"));
        Assert.Equal("spec.region", Assert.Single(invalid.Causes).Field);
        Assert.Equal(HttpStatusCode.Forbidden, Map(403, "Forbidden").StatusCode);
        Assert.Null(KubeClient.ParseStatus("<html>bad gateway</html>"));
        Assert.Null(KubeClient.ParseStatus(""));
    }

    [Fact]
    public async Task A_non_Status_error_body_becomes_the_message()
    {
        var handler = new RecordingHandler(_ => new HttpResponseMessage(HttpStatusCode.BadGateway) { Content = new StringContent("<html>upstream down</html>") });
        using var client = new KubeClient(new KubeClientConfig { Server = new Uri("http://127.0.0.1:1") }, handler);
        var e = await Assert.ThrowsAsync<KubeApiException>(() => client.GetAsync(KubeResources.DgonNodes, "ns", "n", CancellationToken.None));
        Assert.Equal(HttpStatusCode.BadGateway, e.StatusCode);
        Assert.Null(e.Status);
        Assert.Contains("upstream down", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KubeJsonContext_is_source_generated()
    {
        Assert.NotNull(KubeJsonContext.Default.DgonNode);
        Assert.Same(KubeJsonContext.Default.KubeListDgonNode, KubeResources.DgonNodes.ListTypeInfo);
    }
}
