using System.Text.Json.Nodes;

namespace Dgon.Kubernetes.Tests;

public sealed class ResourceTypeTests
{
    [Fact]
    public void Core_and_group_paths()
    {
        Assert.Equal("/api/v1/namespaces/ns/secrets/s", KubeResources.Secrets.ItemPath("ns", "s"));
        Assert.Equal("/api/v1/secrets", KubeResources.Secrets.CollectionPath(null));
        Assert.Equal("/apis/dgon.io/v1alpha1/namespaces/ns/dgonnodes/n1/status", KubeResources.DgonNodes.ItemPath("ns", "n1", "status"));
        Assert.Equal("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", KubeResources.Leases.CollectionPath("kube-system"));
        Assert.Equal("/apis/events.k8s.io/v1/events", KubeResources.Events.CollectionPath(""));
        Assert.Equal("dgon.io/v1alpha1", KubeResources.DgonNodes.ApiVersion);
        Assert.Equal("v1", KubeResources.Secrets.ApiVersion);
        Assert.Throws<ArgumentException>(() => KubeResources.DgonNodes.ItemPath("ns", ""));
    }

    [Fact]
    public void Keys_split_and_join()
    {
        Assert.Equal("ns/n", ObjectKey.Of("ns", "n"));
        Assert.Equal("n", ObjectKey.Of(null, "n"));
        Assert.Equal(("ns", "n"), ObjectKey.Split("ns/n"));
        Assert.Equal(((string?)null, "n"), ObjectKey.Split("n"));
    }

    [Fact]
    public async Task Client_sends_methods_paths_content_types_and_queries()
    {
        var handler = new RecordingHandler(r => RecordingHandler.Json(System.Net.HttpStatusCode.OK, r.RequestUri!.AbsolutePath.EndsWith("dgonnodes", StringComparison.Ordinal) && r.Method == HttpMethod.Get
            ? """{"kind":"DgonNodeList","metadata":{"resourceVersion":"3","continue":"c2"},"items":[]}"""
            : """{"kind":"DgonNode","apiVersion":"dgon.io/v1alpha1","metadata":{"name":"n","namespace":"team"},"spec":{"region":"r","runtime":"tgi"}}"""));
        using var client = new KubeClient(new KubeClientConfig { Server = new Uri("http://127.0.0.1:1"), Namespace = "team" }, handler);
        var ct = CancellationToken.None;
        var node = new DgonNode { Metadata = new ObjectMeta { Name = "n", ResourceVersion = "1" }, Spec = new DgonNodeSpec { Region = "r", Runtime = "tgi" } };
        await client.CreateAsync(KubeResources.DgonNodes, node, ct);
        await client.ReplaceAsync(KubeResources.DgonNodes, node, ct);
        await client.ReplaceStatusAsync(KubeResources.DgonNodes, node, ct);
        await client.PatchAsync(KubeResources.DgonNodes, "x", "n", new JsonObject { ["spec"] = new JsonObject { ["quarantine"] = true } }, ct);
        await client.PatchStatusAsync(KubeResources.DgonNodes, "x", "n", new JsonObject { ["status"] = new JsonObject { ["phase"] = "active" } }, ct);
        await client.DeleteAsync(KubeResources.DgonNodes, "x", "n", new DeleteOptions { PropagationPolicy = "Foreground", Preconditions = new Preconditions { Uid = "u1" } }, ct);
        var list = await client.ListAsync(KubeResources.DgonNodes, "x", new ListOptions { LabelSelector = "a=b,c in (d)", Limit = 2, Continue = "tok" }, ct);
        Assert.Equal("c2", list.Metadata.Continue);

        var r = handler.Requests;
        Assert.Equal((HttpMethod.Post, "/apis/dgon.io/v1alpha1/namespaces/team/dgonnodes"), (r[0].Method, r[0].Uri.AbsolutePath));
        Assert.Equal("application/json", r[0].ContentType);
        Assert.Equal((HttpMethod.Put, "/apis/dgon.io/v1alpha1/namespaces/team/dgonnodes/n"), (r[1].Method, r[1].Uri.AbsolutePath));
        Assert.Contains("\"resourceVersion\":\"1\"", r[1].Body, StringComparison.Ordinal);
        Assert.Equal("/apis/dgon.io/v1alpha1/namespaces/team/dgonnodes/n/status", r[2].Uri.AbsolutePath);
        Assert.Equal((HttpMethod.Patch, "application/merge-patch+json"), (r[3].Method, r[3].ContentType));
        Assert.Equal("""{"spec":{"quarantine":true}}""", r[3].Body);
        Assert.Equal("/apis/dgon.io/v1alpha1/namespaces/x/dgonnodes/n/status", r[4].Uri.AbsolutePath);
        Assert.Equal(HttpMethod.Delete, r[5].Method);
        Assert.Contains("\"propagationPolicy\":\"Foreground\"", r[5].Body, StringComparison.Ordinal);
        Assert.Contains("\"uid\":\"u1\"", r[5].Body, StringComparison.Ordinal);
        Assert.Equal("?labelSelector=a%3Db%2Cc%20in%20%28d%29&limit=2&continue=tok", r[6].Uri.Query);
    }
}
