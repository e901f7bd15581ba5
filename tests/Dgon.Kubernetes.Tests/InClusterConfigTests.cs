namespace Dgon.Kubernetes.Tests;

public sealed class InClusterConfigTests : IDisposable
{
    private readonly TempDir _sa = new();

    public void Dispose() => _sa.Dispose();

    private static Func<string, string?> Env(string? host, string? port) => name => name switch
    {
        "KUBERNETES_SERVICE_HOST" => host,
        "KUBERNETES_SERVICE_PORT" => port,
        _ => null,
    };

    [Fact]
    public void IPv4_host_ca_and_namespace()
    {
        var (caPem, ca, key) = TestCerts.CreateCa();
        key.Dispose();
        _sa.Write("token", "tok-1\n");
        _sa.Write("ca.crt", caPem);
        _sa.Write("namespace", "dgon-system\n");
        var config = KubeClientConfig.InCluster(_sa.Path, Env("10.96.0.1", "443"));
        Assert.Equal(new Uri("https://10.96.0.1:443"), config.Server);
        Assert.Equal("dgon-system", config.Namespace);
        Assert.Equal(ca.Thumbprint, Assert.Single(config.CertificateAuthority!).Thumbprint);
    }

    [Fact]
    public void IPv6_host_is_bracketed_and_namespace_defaults()
    {
        _sa.Write("token", "tok");
        var config = KubeClientConfig.InCluster(_sa.Path, Env("fd00:10:96::1", "6443"));
        Assert.Equal("https://[fd00:10:96::1]:6443/", config.Server.ToString());
        Assert.Equal("default", config.Namespace);
        Assert.Null(config.CertificateAuthority);
    }

    [Fact]
    public void Missing_environment_or_token_is_a_clear_error()
    {
        _sa.Write("token", "tok");
        var e = Assert.Throws<KubeConfigException>(() => KubeClientConfig.InCluster(_sa.Path, Env(null, "443")));
        Assert.Contains("KUBERNETES_SERVICE_HOST", e.Message, StringComparison.Ordinal);
        File.Delete(Path.Combine(_sa.Path, "token"));
        var e2 = Assert.Throws<KubeConfigException>(() => KubeClientConfig.InCluster(_sa.Path, Env("10.0.0.1", "443")));
        Assert.Contains("token", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rotated_token_is_sent_after_the_cache_period()
    {
        var time = new ManualTimeProvider();
        var tokenPath = _sa.Write("token", "first-token");
        var config = KubeClientConfig.InCluster(_sa.Path, Env("10.0.0.1", "443"), time);
        var handler = new RecordingHandler();
        using var client = new KubeClient(config, handler);

        await client.GetAsync(KubeResources.Secrets, null, "s", CancellationToken.None);
        File.WriteAllText(tokenPath, "second-token"); // kubelet rotates the projected token
        time.Advance(TimeSpan.FromSeconds(30));
        await client.GetAsync(KubeResources.Secrets, null, "s", CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(31));
        await client.GetAsync(KubeResources.Secrets, null, "s", CancellationToken.None);

        Assert.Equal(new[] { "Bearer first-token", "Bearer first-token", "Bearer second-token" }, handler.Requests.Select(r => r.Authorization ?? "").ToArray());
        Assert.Equal("/api/v1/namespaces/default/secrets/s", handler.Requests[0].Uri.AbsolutePath);
    }

    [Fact]
    public async Task A_vanished_token_file_keeps_the_last_good_token()
    {
        var time = new ManualTimeProvider();
        var path = _sa.Write("token", "good");
        var source = new FileTokenSource(path, TimeSpan.FromSeconds(1), time);
        File.Delete(path);
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("good", await source.GetTokenAsync(CancellationToken.None));
    }
}
