using System.Net;
using System.Text.Json.Nodes;
using static Dgon.KubeTestServer.Tests.HttpHelpers;

namespace Dgon.KubeTestServer.Tests;

/// <summary>CRDs created through the API are served dynamically: scope, versions, discovery, defaults, deletion.</summary>
public sealed class CrdTests : ServerPerTest
{
    private const string CrdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

    private static JsonObject Widgets(bool statusSubresource) => (JsonObject)JsonNode.Parse($$"""
        {
          "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
          "metadata": { "name": "widgets.example.io" },
          "spec": {
            "group": "example.io", "scope": "Cluster",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"] },
            "versions": [
              { "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                  "spec": { "type": "object", "properties": {
                    "size": { "type": "integer", "format": "int32", "default": 3, "maximum": 10 },
                    "free": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                    "tags": { "type": "array", "items": { "type": "string" }, "x-kubernetes-list-type": "set" } } },
                  "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } } }
                {{(statusSubresource ? ", \"subresources\": { \"status\": {} }" : "")}} },
              { "name": "v1beta1", "served": true, "storage": false,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }
            ]
          }
        }
        """)!;

    [Fact]
    public async Task ACrdCreatedThroughTheApiIsServedInEveryServedVersionAndDeletingItDeletesItsObjects()
    {
        var (code, crd) = await Http.SendAsync(HttpMethod.Post, CrdPath, Widgets(statusSubresource: false));
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Contains(crd["status"]!["conditions"]!.AsArray(), c => c.Str("type") == "Established" && c.Str("status") == "True");
        Assert.Equal("[\"v1\"]", crd["status"]!["storedVersions"]!.ToJsonString());

        var (_, groups) = await Http.SendAsync(HttpMethod.Get, "/apis/example.io");
        Assert.Equal("v1", groups.Str("preferredVersion.version"));
        Assert.Equal(["v1", "v1beta1"], groups["versions"]!.AsArray().Select(v => v.Str("version")));
        var (_, resources) = await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1");
        var widget = Assert.Single(resources["resources"]!.AsArray())!;
        Assert.Equal("false", widget.Str("namespaced"));

        var (createCode, created) = await Http.SendAsync(HttpMethod.Post, "/apis/example.io/v1/widgets", JsonNode.Parse("""
            {"apiVersion":"example.io/v1","kind":"Widget","metadata":{"name":"w1","namespace":"ignored"},
             "spec":{"free":{"any":{"thing":1}},"extra":true},"status":{"seen":true}}
            """));
        Assert.Equal(HttpStatusCode.Created, createCode);
        Assert.Null(created["metadata"]!["namespace"]);
        Assert.Equal("3", created.Str("spec.size"));
        Assert.Equal("1", created.Str("spec.free.any.thing"));
        Assert.Null(created["spec"]!["extra"]);
        Assert.Equal("true", created.Str("status.seen"));

        var (viaBeta, beta) = await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1beta1/widgets/w1");
        Assert.Equal(HttpStatusCode.OK, viaBeta);
        Assert.Equal("example.io/v1beta1", beta.Str("apiVersion"));
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1/namespaces/default/widgets/w1")).Code);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1/widgets/w1/status")).Code);

        var (badCode, bad) = await Http.SendAsync(HttpMethod.Post, "/apis/example.io/v1/widgets", JsonNode.Parse("""
            {"apiVersion":"example.io/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":11,"tags":["a","a"]}}
            """));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badCode);
        Assert.Contains("spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10", bad.Str("message"), StringComparison.Ordinal);
        Assert.Contains("spec.tags[1]: Duplicate value: \"a\"", bad.Str("message"), StringComparison.Ordinal);

        // Without a status subresource, status is part of the object and any change bumps generation.
        var (_, patched) = await Http.SendAsync(HttpMethod.Patch, "/apis/example.io/v1/widgets/w1", JsonNode.Parse("""{"status":{"seen":false}}"""), "application/merge-patch+json");
        Assert.Equal("false", patched.Str("status.seen"));
        Assert.Equal("2", patched.Str("metadata.generation"));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var watch = await Http.GetAsync("/apis/example.io/v1/widgets?watch=true&timeoutSeconds=2", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var (deleteCode, deleted) = await Http.SendAsync(HttpMethod.Delete, $"{CrdPath}/widgets.example.io");
        Assert.Equal(HttpStatusCode.OK, deleteCode);
        Assert.Equal("CustomResourceDefinition", deleted.Str("kind"));
        var events = new List<string?>();
        await foreach (var e in ReadEventsAsync(watch, cts.Token))
        {
            events.Add(e.Str("type") + ":" + e.Str("object.metadata.name"));
        }

        Assert.Equal(["ADDED:w1", "DELETED:w1"], events);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1/widgets")).Code);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, "/apis/example.io")).Code);
    }

    [Fact]
    public async Task DryRunYamlBodiesFieldValidationWarningsAndTableWatchFollowTheApiServer()
    {
        using (var dry = new HttpRequestMessage(HttpMethod.Post, $"{NodesPath}?dryRun=All") { Content = new StringContent(Node("dry").ToJsonString(), System.Text.Encoding.UTF8, "application/json") })
        {
            using var response = await Http.SendAsync(dry);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await Http.SendAsync(HttpMethod.Get, $"{NodesPath}/dry")).Code);

        const string yaml = "apiVersion: dgon.io/v1alpha1\nkind: DgonNode\nmetadata:\n  name: from-yaml\nspec:\n  region: eu\n  runtime: vllm\n  unknownThing: 1\n";
        using (var post = new HttpRequestMessage(HttpMethod.Post, NodesPath) { Content = new StringContent(yaml, System.Text.Encoding.UTF8, "application/yaml") })
        {
            using var response = await Http.SendAsync(post);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            Assert.Equal("299 - \"unknown field \\\"spec.unknownThing\\\"\"", Assert.Single(response.Headers.GetValues("Warning")));
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{NodesPath}?watch=true&timeoutSeconds=1");
        request.Headers.TryAddWithoutValidation("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io");
        using var watch = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        await Http.SendAsync(HttpMethod.Patch, $"{NodesPath}/from-yaml/status", JsonNode.Parse("""{"status":{"phase":"Active"}}"""), "application/merge-patch+json");
        var events = new List<JsonObject>();
        await foreach (var e in ReadEventsAsync(watch, cts.Token))
        {
            events.Add(e);
        }

        Assert.Equal(["ADDED", "MODIFIED"], events.Select(e => e.Str("type")));
        Assert.All(events, e => Assert.Equal("Table", e.Str("object.kind")));
        Assert.Equal(9, events[0]["object"]!["columnDefinitions"]!.AsArray().Count);
        Assert.Null(events[1]["object"]!["columnDefinitions"]);
        Assert.Equal("Active", events[1]["object"]!["rows"]![0]!["cells"]![1]!.GetValue<string>());
    }
    [Fact]
    public async Task SelectableFieldsOfACrdAreValidatedAgainstItsSchema()
    {
        var crd = Widgets(statusSubresource: true);
        var version = (JsonObject)crd["spec"]!["versions"]![0]!;
        version["selectableFields"] = JsonNode.Parse("""
            [{"jsonPath": ".spec.size"}, {"jsonPath": ".spec.size"}, {"jsonPath": ".spec.free"}, {"jsonPath": ".spec.nope"},
             {"jsonPath": "spec.size"}, {"jsonPath": ".metadata.name"}, {"jsonPath": ".spec.tags"}]
            """);
        var (code, status) = await Http.SendAsync(HttpMethod.Post, CrdPath, crd);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        var message = status.Str("message") ?? "";
        const string prefix = "spec.versions[0].selectableFields";
        Assert.Contains($"{prefix}[1].jsonPath: Duplicate value: \".spec.size\"", message, StringComparison.Ordinal);
        Assert.Contains($"{prefix}[2].jsonPath: Invalid value: \".spec.free\": must point to a field of type string, boolean or integer", message, StringComparison.Ordinal);
        Assert.Contains($"{prefix}[3].jsonPath: Invalid value: \".spec.nope\": is an invalid path", message, StringComparison.Ordinal);
        Assert.Contains($"{prefix}[4].jsonPath: Invalid value: \"spec.size\": must be a simple json path", message, StringComparison.Ordinal);
        Assert.Contains($"{prefix}[5].jsonPath: Forbidden: must not point to metadata", message, StringComparison.Ordinal);
        Assert.Contains($"{prefix}[6].jsonPath: Invalid value: \".spec.tags\": must point to a field of type", message, StringComparison.Ordinal);

        version["selectableFields"] = JsonNode.Parse("""[{"jsonPath": ".spec.size"}]""");
        Assert.Equal(HttpStatusCode.Created, (await Http.SendAsync(HttpMethod.Post, CrdPath, crd)).Code);
        Assert.Equal(HttpStatusCode.Created, (await Http.SendAsync(HttpMethod.Post, "/apis/example.io/v1/widgets", JsonNode.Parse("""{"apiVersion":"example.io/v1","kind":"Widget","metadata":{"name":"big"},"spec":{"size":7}}"""))).Code);
        Assert.Equal(HttpStatusCode.Created, (await Http.SendAsync(HttpMethod.Post, "/apis/example.io/v1/widgets", JsonNode.Parse("""{"apiVersion":"example.io/v1","kind":"Widget","metadata":{"name":"small"}}"""))).Code);
        var (_, list) = await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1/widgets?fieldSelector=spec.size%3D7");
        Assert.Equal(["big"], list["items"]!.AsArray().Select(i => i.Str("metadata.name")));
        var (badCode, bad) = await Http.SendAsync(HttpMethod.Get, "/apis/example.io/v1/widgets?fieldSelector=spec.free%3D1");
        Assert.Equal(HttpStatusCode.BadRequest, badCode);
        Assert.Equal("field label not supported: spec.free", bad.Str("message"));
    }
}
