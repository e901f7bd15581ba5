using System.Net;
using System.Security.Authentication;
using Dgon.KubeTestServer;

namespace Dgon.Kubernetes.Tests;

public sealed class TlsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestPkiSet _pki = TestPki.Create();

    public TlsTests() => _pki.WritePemFiles(_dir.Path);

    public void Dispose() => _dir.Dispose();

    private string Pem(string name) => Path.Combine(_dir.Path, name);

    private Task<KubeApiTestServer> StartHttps() => KubeApiTestServer.StartAsync(new KubeApiTestServerOptions
    {
        ServerCertificate = _pki.Server,
        ClientCertificateAuthority = _pki.Ca,
    });

    [Fact]
    public async Task CA_file_and_client_certificate_files_via_kubeconfig()
    {
        await using var server = await StartHttps();
        Assert.Equal("https", server.BaseAddress.Scheme);
        var path = server.WriteKubeconfig(Pem("kubeconfig"), "default", null, Pem("client.crt"), Pem("client.key"), Pem("ca.crt"));
        var config = KubeClientConfig.FromKubeconfig(path);
        Assert.NotNull(config.ClientCertificate);
        Assert.Equal(_pki.Ca.Thumbprint, Assert.Single(config.CertificateAuthority!).Thumbprint);
        using var client = new KubeClient(config);
        var created = await client.CreateAsync(KubeResources.DgonNodes, Cluster.Node("tls"), Cluster.Timeout());
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.Contains(server.Requests, r => r.Method == "POST" && r.StatusCode == 201);
    }

    [Fact]
    public async Task Without_the_client_certificate_the_server_answers_401()
    {
        await using var server = await StartHttps();
        var path = server.WriteKubeconfig(Pem("kubeconfig-nocert"), "default", null, null, null, Pem("ca.crt"));
        using var client = new KubeClient(KubeClientConfig.FromKubeconfig(path));
        var e = await Assert.ThrowsAsync<KubeApiException>(() => client.ListAsync(KubeResources.DgonNodes, "default", null, Cluster.Timeout()));
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
    }

    [Fact]
    public async Task A_wrong_CA_fails_TLS_validation()
    {
        await using var server = await StartHttps();
        var other = TestPki.Create();
        File.WriteAllText(Pem("other-ca.crt"), other.CaPem);
        var path = server.WriteKubeconfig(Pem("kubeconfig-wrongca"), "default", null, Pem("client.crt"), Pem("client.key"), Pem("other-ca.crt"));
        using var client = new KubeClient(KubeClientConfig.FromKubeconfig(path));
        var e = await Assert.ThrowsAsync<HttpRequestException>(() => client.ListAsync(KubeResources.DgonNodes, "default", null, Cluster.Timeout()));
        Assert.IsType<AuthenticationException>(e.InnerException);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task System_roots_do_not_trust_the_test_CA()
    {
        await using var server = await StartHttps();
        using var client = new KubeClient(new KubeClientConfig { Server = server.BaseAddress, ClientCertificate = _pki.Client });
        await Assert.ThrowsAsync<HttpRequestException>(() => client.ListAsync(KubeResources.DgonNodes, "default", null, Cluster.Timeout()));
    }

    [Fact]
    public async Task Insecure_skip_tls_verify_accepts_any_server_certificate()
    {
        await using var server = await StartHttps();
        var yaml = $"""
            apiVersion: v1
            kind: Config
            current-context: t
            clusters:
            - name: t
              cluster:
                server: {server.BaseAddress}
                insecure-skip-tls-verify: true
            users:
            - name: t
              user:
                client-certificate: client.crt
                client-key: client.key
            contexts:
            - name: t
              context:
                cluster: t
                user: t
            """;
        File.WriteAllText(Pem("kubeconfig-insecure"), yaml);
        var config = KubeClientConfig.FromKubeconfig(Pem("kubeconfig-insecure"));
        Assert.True(config.InsecureSkipTlsVerify);
        using var client = new KubeClient(config);
        var list = await client.ListAsync(KubeResources.DgonNodes, "default", null, Cluster.Timeout());
        Assert.Empty(list.Items);
    }

    [Fact]
    public async Task Watch_over_TLS_with_client_certificate()
    {
        await using var server = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions
        {
            ServerCertificate = _pki.Server,
            ClientCertificateAuthority = _pki.Ca,
            BookmarkInterval = TimeSpan.FromMilliseconds(200),
        });
        var path = server.WriteKubeconfig(Pem("kubeconfig-watch"), "default", null, Pem("client.crt"), Pem("client.key"), Pem("ca.crt"));
        using var client = new KubeClient(KubeClientConfig.FromKubeconfig(path));
        var ct = Cluster.Timeout();
        var list = await client.ListAsync(KubeResources.DgonNodes, "default", null, ct);
        await foreach (var e in client.WatchAsync(KubeResources.DgonNodes, "default", new WatchOptions { ResourceVersion = list.Metadata.ResourceVersion }, ct))
        {
            Assert.Equal("BOOKMARK", e.Type);
            break;
        }
    }
}
