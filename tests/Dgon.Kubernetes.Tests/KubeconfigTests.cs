namespace Dgon.Kubernetes.Tests;

public sealed class KubeconfigTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Config(string clusterBody, string userBody, string current = "main", string contextNamespace = "") => $"""
        apiVersion: v1
        kind: Config
        current-context: {current}
        clusters:
        - name: c1
          cluster:
            server: https://127.0.0.1:6443
        {Indent(clusterBody, 4)}
        - name: c2
          cluster:
            server: https://10.1.2.3:8443
            insecure-skip-tls-verify: true
        contexts:
        - name: main
          context:
            cluster: c1
            user: u1
        {(contextNamespace.Length > 0 ? "    namespace: " + contextNamespace : "")}
        - name: other
          context:
            cluster: c2
            user: u2
            namespace: other-ns
        users:
        - name: u1
          user:
        {Indent(userBody, 4)}
        - name: u2
          user:
            token: token-two
        """;

    private static string Indent(string body, int spaces) =>
        string.Join("\n", body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => new string(' ', spaces) + l.TrimEnd()));

    private KubeClientConfig Load(string yaml, string? context = null)
    {
        var path = _dir.Write("config", yaml);
        return KubeClientConfig.FromKubeconfig(path, context);
    }

    private static async Task<string?> SentAuthorization(KubeClientConfig config)
    {
        var handler = new RecordingHandler();
        using var client = new KubeClient(config, handler);
        await client.GetAsync(KubeResources.Secrets, "default", "s", CancellationToken.None);
        return handler.Requests.Single().Authorization;
    }

    [Fact]
    public async Task Token_is_sent_as_bearer()
    {
        var config = Load(Config("", "token: abc.def"));
        Assert.Equal(new Uri("https://127.0.0.1:6443"), config.Server);
        Assert.Equal("default", config.Namespace);
        Assert.Equal("Bearer abc.def", await SentAuthorization(config));
        Assert.Null(config.ClientCertificate);
        Assert.False(config.InsecureSkipTlsVerify);
    }

    [Fact]
    public async Task TokenFile_is_read_relative_to_the_kubeconfig()
    {
        _dir.Write("secrets/tok", "from-file\n");
        var config = Load(Config("", "tokenFile: secrets/tok"));
        Assert.Equal("Bearer from-file", await SentAuthorization(config));
    }

    [Fact]
    public void Missing_tokenFile_names_the_file()
    {
        var e = Assert.Throws<KubeConfigException>(() => Load(Config("", "tokenFile: nope/tok")));
        Assert.Contains("nope", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Client_certificate_data_and_key_data_RSA_and_EC(bool ec)
    {
        var (cert, key) = TestCerts.CreateClient(ec, "data-user");
        var config = Load(Config("", $"client-certificate-data: {TestCerts.B64(cert)}\nclient-key-data: {TestCerts.B64(key)}"));
        Assert.NotNull(config.ClientCertificate);
        Assert.True(config.ClientCertificate!.HasPrivateKey);
        Assert.Contains("CN=data-user", config.ClientCertificate.Subject, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Client_certificate_and_key_files_relative_to_the_kubeconfig_dir(bool ec)
    {
        var (cert, key) = TestCerts.CreateClient(ec, "file-user");
        _dir.Write("pki/client.crt", cert);
        _dir.Write("pki/client.key", key);
        var config = Load(Config("", "client-certificate: pki/client.crt\nclient-key: pki/client.key"));
        Assert.True(config.ClientCertificate!.HasPrivateKey);
        Assert.Contains("CN=file-user", config.ClientCertificate.Subject, StringComparison.Ordinal);
    }

    [Fact]
    public void Client_certificate_without_key_is_an_error()
    {
        var (cert, _) = TestCerts.CreateClient(false);
        var e = Assert.Throws<KubeConfigException>(() => Load(Config("", $"client-certificate-data: {TestCerts.B64(cert)}")));
        Assert.Contains("client-key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mismatched_certificate_and_key_is_an_error()
    {
        var (cert, _) = TestCerts.CreateClient(false);
        var (_, otherKey) = TestCerts.CreateClient(true);
        var e = Assert.Throws<KubeConfigException>(() => Load(Config("", $"client-certificate-data: {TestCerts.B64(cert)}\nclient-key-data: {TestCerts.B64(otherKey)}")));
        Assert.Contains("u1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Certificate_authority_file_relative_and_data()
    {
        var (caPem, ca, key) = TestCerts.CreateCa();
        key.Dispose();
        _dir.Write("ca/ca.crt", caPem);
        var fromFile = Load(Config("certificate-authority: ca/ca.crt", "token: t"));
        Assert.Equal(ca.Thumbprint, Assert.Single(fromFile.CertificateAuthority!).Thumbprint);

        var fromData = Load(Config($"certificate-authority-data: {TestCerts.B64(caPem)}", "token: t"));
        Assert.Equal(ca.Thumbprint, Assert.Single(fromData.CertificateAuthority!).Thumbprint);
    }

    [Fact]
    public void Invalid_certificate_authority_data_names_the_field()
    {
        var e = Assert.Throws<KubeConfigException>(() => Load(Config($"certificate-authority-data: {TestCerts.B64("not a pem")}", "token: t")));
        Assert.Contains("certificate-authority-data", e.Message, StringComparison.Ordinal);
        var e2 = Assert.Throws<KubeConfigException>(() => Load(Config("certificate-authority-data: '%%%'", "token: t")));
        Assert.Contains("base64", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Insecure_skip_tls_verify()
    {
        var config = Load(Config("insecure-skip-tls-verify: true", "token: t"));
        Assert.True(config.InsecureSkipTlsVerify);
        var (caPem, _, key) = TestCerts.CreateCa();
        key.Dispose();
        var both = Assert.Throws<KubeConfigException>(() => Load(Config($"insecure-skip-tls-verify: true\ncertificate-authority-data: {TestCerts.B64(caPem)}", "token: t")));
        Assert.Contains("cannot be combined", both.Message, StringComparison.Ordinal);
        var bad = Assert.Throws<KubeConfigException>(() => Load(Config("insecure-skip-tls-verify: maybe", "token: t")));
        Assert.Contains("insecure-skip-tls-verify", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Non_current_context_selected_explicitly()
    {
        var config = Load(Config("", "token: one"), context: "other");
        Assert.Equal(new Uri("https://10.1.2.3:8443"), config.Server);
        Assert.True(config.InsecureSkipTlsVerify);
        Assert.Equal("other-ns", config.Namespace);
        Assert.Equal("Bearer token-two", await SentAuthorization(config));
    }

    [Fact]
    public void Context_namespace_is_the_default_namespace()
    {
        var config = Load(Config("", "token: t", contextNamespace: "dgon-system"));
        Assert.Equal("dgon-system", config.Namespace);
    }

    [Fact]
    public void Missing_current_context_is_named()
    {
        var yaml = Config("", "token: t").Replace("current-context: main", "current-context: \"\"", StringComparison.Ordinal);
        var e = Assert.Throws<KubeConfigException>(() => Load(yaml));
        Assert.Contains("current-context", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_context_is_named()
    {
        var e = Assert.Throws<KubeConfigException>(() => Load(Config("", "token: t"), context: "staging"));
        Assert.Contains("'staging'", e.Message, StringComparison.Ordinal);
        Assert.Contains("contexts", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_cluster_is_named()
    {
        var yaml = Config("", "token: t").Replace("cluster: c1", "cluster: gone", StringComparison.Ordinal);
        var e = Assert.Throws<KubeConfigException>(() => Load(yaml));
        Assert.Contains("cluster 'gone' not found", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_user_is_named()
    {
        var yaml = Config("", "token: t").Replace("user: u1", "user: nobody", StringComparison.Ordinal);
        var e = Assert.Throws<KubeConfigException>(() => Load(yaml));
        Assert.Contains("user 'nobody' not found", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_server_is_named()
    {
        var yaml = Config("", "token: t").Replace("server: https://127.0.0.1:6443", "server: ''", StringComparison.Ordinal);
        var e = Assert.Throws<KubeConfigException>(() => Load(yaml));
        Assert.Contains("has no server", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exec_plugin_is_reported_as_unsupported()
    {
        var user = """
            exec:
              apiVersion: client.authentication.k8s.io/v1
              command: aws
              args: [eks, get-token]
            """;
        var e = Assert.Throws<KubeConfigException>(() => Load(Config("", user)));
        Assert.Contains("exec credential plugin", e.Message, StringComparison.Ordinal);
        Assert.Contains("not support", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Auth_provider_is_reported_as_unsupported()
    {
        var e = Assert.Throws<KubeConfigException>(() => Load(Config("", "auth-provider:\n  name: oidc")));
        Assert.Contains("auth-provider", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_yaml_and_missing_file()
    {
        Assert.Throws<KubeConfigException>(() => KubeClientConfig.FromKubeconfigYaml("clusters: [", _dir.Path));
        var e = Assert.Throws<KubeConfigException>(() => KubeClientConfig.FromKubeconfig(System.IO.Path.Combine(_dir.Path, "absent")));
        Assert.Contains("absent", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromKubeconfigYaml_resolves_against_the_given_directory()
    {
        _dir.Write("t/token", "yaml-token");
        var config = KubeClientConfig.FromKubeconfigYaml(Config("", "tokenFile: t/token"), _dir.Path);
        Assert.IsType<FileTokenSource>(config.TokenSource);
    }

    [Fact]
    public void Load_prefers_explicit_path_then_KUBECONFIG_then_in_cluster_then_home()
    {
        var explicitPath = _dir.Write("explicit", Config("", "token: t"));
        var envPath = _dir.Write("env", Config("", "token: t").Replace("https://127.0.0.1:6443", "https://127.0.0.2:6443", StringComparison.Ordinal));
        var homeCfg = _dir.Write("home/.kube/config", Config("", "token: t").Replace("https://127.0.0.1:6443", "https://127.0.0.3:6443", StringComparison.Ordinal));
        var sa = System.IO.Path.Combine(_dir.Path, "sa");
        _dir.Write("sa/token", "sa-token");
        var home = System.IO.Path.Combine(_dir.Path, "home");
        var missing = System.IO.Path.Combine(_dir.Path, "missing");

        Assert.Equal(6443, KubeClientConfig.Load(explicitPath, _ => null, home, sa).Server.Port);
        Assert.Equal("127.0.0.2", KubeClientConfig.Load(null, k => k == "KUBECONFIG" ? missing + Path.PathSeparator + envPath : null, home, sa).Server.Host);
        Assert.Equal("10.0.0.1", KubeClientConfig.Load(null, k => k switch
        {
            "KUBERNETES_SERVICE_HOST" => "10.0.0.1",
            "KUBERNETES_SERVICE_PORT" => "443",
            _ => null,
        }, home, sa).Server.Host);
        Assert.Equal("127.0.0.3", KubeClientConfig.Load(null, _ => null, home, sa).Server.Host);
        Assert.True(File.Exists(homeCfg));
        var none = Assert.Throws<KubeConfigException>(() => KubeClientConfig.Load(null, _ => null, missing, sa));
        Assert.Contains("no Kubernetes configuration", none.Message, StringComparison.Ordinal);
    }
}
