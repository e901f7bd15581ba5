using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;

namespace Dgon.KubeTestServer.Tests;

/// <summary>HTTPS with a client certificate chained to the CA, and bearer tokens; both with HttpClient and with kubectl.</summary>
public sealed class AuthTests
{
    private static HttpClient TlsClient(KubeApiTestServer server, TestPkiSet pki, X509Certificate2? clientCert)
    {
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(pki.Ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return cert is not null && chain.Build(cert);
            },
        };
        if (clientCert is not null)
        {
            handler.ClientCertificates.Add(clientCert);
        }

        return new HttpClient(handler) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    [Fact]
    public async Task HttpsRequiresAClientCertificateChainedToTheCa()
    {
        var pki = TestPki.Create();
        await using var server = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { ServerCertificate = pki.Server, ClientCertificateAuthority = pki.Ca });
        Assert.Equal("https", server.BaseAddress.Scheme);

        using (var withCert = TlsClient(server, pki, pki.Client))
        {
            var (code, list) = await withCert.SendAsync(HttpMethod.Get, HttpHelpers.NodesPath);
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Equal("DgonNodeList", list.Str("kind"));
        }

        using (var without = TlsClient(server, pki, null))
        {
            var (code, status) = await without.SendAsync(HttpMethod.Get, HttpHelpers.NodesPath);
            Assert.Equal(HttpStatusCode.Unauthorized, code);
            Assert.Equal("Unauthorized", status.Str("reason"));
            Assert.Equal("Status", status.Str("kind"));
        }

        var otherPki = TestPki.Create();
        using (var foreign = TlsClient(server, pki, otherPki.Client))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await foreign.SendAsync(HttpMethod.Get, HttpHelpers.NodesPath)).Code);
        }

        var pemDir = Directory.CreateTempSubdirectory("pki-").FullName;
        try
        {
            pki.WritePemFiles(pemDir);
            foreach (var file in new[] { "ca.crt", "client.crt", "client.key", "server.crt", "server.key" })
            {
                Assert.True(File.Exists(Path.Combine(pemDir, file)), file);
            }

            using var kubectl = TestKubectl.For(server, clientCert: Path.Combine(pemDir, "client.crt"), clientKey: Path.Combine(pemDir, "client.key"), ca: Path.Combine(pemDir, "ca.crt"));
            (await kubectl.RunAsync("apply", "-f", kubectl.WriteFile("n.yaml", Manifests.DgonNode("tls-node")))).EnsureSuccess("apply over TLS");
            Assert.Equal("dgonnode.dgon.io/tls-node", (await kubectl.RunAsync("get", "dgn", "-o", "name")).EnsureSuccess("get over TLS").Stdout.Trim());

            // Without a client certificate (and with a token the server does not accept) kubectl is refused.
            using var noCert = TestKubectl.For(server, token: "not-a-valid-token", ca: Path.Combine(pemDir, "ca.crt"));
            var denied = await noCert.RunAsync("get", "dgn");
            Assert.NotEqual(0, denied.ExitCode);
            Assert.Contains("You must be logged in to the server", denied.Stderr);
        }
        finally
        {
            Directory.Delete(pemDir, recursive: true);
        }
    }

    [Fact]
    public async Task BearerTokenIsRequiredWhenConfigured()
    {
        await using var server = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { BearerToken = "s3cret-token" });
        using var http = HttpHelpers.Client(server);
        var (denied, status) = await http.SendAsync(HttpMethod.Get, HttpHelpers.NodesPath);
        Assert.Equal(HttpStatusCode.Unauthorized, denied);
        Assert.Equal("401", status.Str("code"));

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(HttpMethod.Get, HttpHelpers.NodesPath)).Code);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-token");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(HttpMethod.Get, HttpHelpers.NodesPath)).Code);
        Assert.Equal([401, 401, 200], server.Requests.Select(r => r.StatusCode));

        // kubectl (client-go) sends bearer tokens only over TLS, so check it against an HTTPS server. The kubeconfig's
        // default embeds the server certificate as the trusted CA and the configured token.
        var pki = TestPki.Create();
        await using var tls = await KubeApiTestServer.StartAsync(new KubeApiTestServerOptions { BearerToken = "s3cret-token", ServerCertificate = pki.Server });
        using var kubectl = TestKubectl.For(tls);
        (await kubectl.RunAsync("get", "dgn")).EnsureSuccess("kubectl with the configured token");
        Assert.Contains(tls.Requests, r => r.Resource == "dgonnodes" && r.StatusCode == 200);
        using var wrong = TestKubectl.For(tls, token: "nope");
        var result = await wrong.RunAsync("get", "dgn");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("You must be logged in to the server", result.Stderr);
    }
}
