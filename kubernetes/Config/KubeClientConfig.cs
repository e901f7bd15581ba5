using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Dgon.Kubernetes;

/// <summary>
/// How to reach and authenticate to a Kubernetes API server: server URL, default namespace, trusted CA, client
/// certificate, bearer token source, TLS verification switch and request timeout. Built from a kubeconfig file
/// (<see cref="FromKubeconfig"/>), the in-cluster service account (<see cref="InCluster"/>) or the usual lookup order
/// (<see cref="Load(string?)"/>). A small stand-in for KubernetesClient's <c>KubernetesClientConfiguration</c>, which cannot be
/// restored here.
/// </summary>
public sealed class KubeClientConfig
{
    /// <summary>The default service-account directory of a pod.</summary>
    public const string DefaultServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>API server base URL, e.g. <c>https://10.96.0.1:443</c>.</summary>
    public required Uri Server { get; init; }

    /// <summary>Default namespace (the kubeconfig context's, the pod's, else <c>default</c>).</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>CA certificates to trust for the server (custom root trust: the system store is not used); null = system roots.</summary>
    public X509Certificate2Collection? CertificateAuthority { get; init; }

    /// <summary>Client certificate with its private key for mutual TLS; null for none.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>Skip server certificate verification (kubeconfig <c>insecure-skip-tls-verify</c>). Test use only.</summary>
    public bool InsecureSkipTlsVerify { get; init; }

    /// <summary>Bearer token source, consulted on every request; null sends no token.</summary>
    public IKubeTokenSource? TokenSource { get; init; }

    /// <summary>Timeout of non-watch calls (a watch's body is unbounded; its response headers use this too). Default 30 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The User-Agent header sent.</summary>
    public string UserAgent { get; init; } = "dgon-kubernetes/1.0";

    /// <summary>Reads a kubeconfig file (see <see cref="FromKubeconfigYaml"/>); relative file paths are resolved against its directory.</summary>
    /// <param name="path">The kubeconfig file.</param>
    /// <param name="context">The context to use; null = <c>current-context</c>.</param>
    /// <exception cref="KubeConfigException">The file is unreadable, or see <see cref="FromKubeconfigYaml"/>.</exception>
    public static KubeClientConfig FromKubeconfig(string path, string? context = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string yaml;
        try
        {
            yaml = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KubeConfigException($"cannot read kubeconfig {path}: {e.Message}", e);
        }

        var full = System.IO.Path.GetFullPath(path);
        return Kubeconfig.Parse(yaml, System.IO.Path.GetDirectoryName(full) ?? ".", context, full);
    }

    /// <summary>
    /// Parses kubeconfig YAML (<c>clusters</c>, <c>contexts</c>, <c>users</c>, <c>current-context</c>): the cluster's
    /// <c>server</c>, <c>certificate-authority</c> (file) or <c>certificate-authority-data</c> (base64 PEM),
    /// <c>insecure-skip-tls-verify</c>; the user's <c>client-certificate</c>/<c>client-key</c> (files) or
    /// <c>client-certificate-data</c>/<c>client-key-data</c> (base64 PEM; RSA or EC keys), <c>token</c> or
    /// <c>tokenFile</c> (re-read every minute); the context's <c>namespace</c>.
    /// </summary>
    /// <param name="yaml">The kubeconfig text.</param>
    /// <param name="baseDirectory">Directory relative file paths are resolved against.</param>
    /// <param name="context">The context to use; null = <c>current-context</c>.</param>
    /// <exception cref="KubeConfigException">
    /// Invalid YAML; no current-context; the context, its cluster or user is missing; server missing or not an absolute
    /// URL; unreadable/invalid certificate, key or token file; base64 that does not decode; or an unsupported feature
    /// (<c>exec</c> or <c>auth-provider</c> credential plugins, insecure-skip-tls-verify together with a CA, <c>username</c>/<c>password</c>, <c>tls-server-name</c>,
    /// <c>proxy-url</c>). The message names the field.
    /// </exception>
    public static KubeClientConfig FromKubeconfigYaml(string yaml, string baseDirectory, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(baseDirectory);
        return Kubeconfig.Parse(yaml, baseDirectory, context, "kubeconfig");
    }

    /// <summary>
    /// The in-cluster configuration of a pod (client-go's InClusterConfig): server
    /// <c>https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT</c> (an IPv6 host is bracketed), CA from
    /// <c>ca.crt</c> (system roots if absent), namespace from the <c>namespace</c> file (else <c>default</c>), and a
    /// bearer token from the <c>token</c> file re-read at most every minute so projected-token rotation works.
    /// </summary>
    /// <param name="serviceAccountDirectory">The mounted service-account directory.</param>
    /// <param name="environment">Environment lookup; default <see cref="Environment.GetEnvironmentVariable(string)"/>.</param>
    /// <param name="time">Clock of the token cache; default system.</param>
    /// <param name="tokenCachePeriod">Token cache period; default 1 minute.</param>
    /// <exception cref="KubeConfigException">KUBERNETES_SERVICE_HOST/PORT unset, the token file unreadable, or ca.crt invalid.</exception>
    public static KubeClientConfig InCluster(string serviceAccountDirectory = DefaultServiceAccountDirectory,
        Func<string, string?>? environment = null, TimeProvider? time = null, TimeSpan? tokenCachePeriod = null)
    {
        ArgumentNullException.ThrowIfNull(serviceAccountDirectory);
        environment ??= Environment.GetEnvironmentVariable;
        var host = environment("KUBERNETES_SERVICE_HOST");
        var port = environment("KUBERNETES_SERVICE_PORT");
        if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(port))
        {
            throw new KubeConfigException("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set");
        }

        if (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('['))
        {
            host = "[" + host + "]";
        }

        if (!Uri.TryCreate($"https://{host}:{port}", UriKind.Absolute, out var server))
        {
            throw new KubeConfigException($"KUBERNETES_SERVICE_HOST/PORT do not form a URL: https://{host}:{port}");
        }

        var tokenSource = new FileTokenSource(System.IO.Path.Combine(serviceAccountDirectory, "token"), tokenCachePeriod, time);
        var caPath = System.IO.Path.Combine(serviceAccountDirectory, "ca.crt");
        X509Certificate2Collection? ca = null;
        if (File.Exists(caPath))
        {
            ca = Pem.LoadCertificates(ReadText(caPath, "ca.crt"), caPath);
        }

        var nsPath = System.IO.Path.Combine(serviceAccountDirectory, "namespace");
        var ns = File.Exists(nsPath) ? ReadText(nsPath, "namespace").Trim() : "";
        return new KubeClientConfig
        {
            Server = server,
            Namespace = ns.Length > 0 ? ns : "default",
            CertificateAuthority = ca,
            TokenSource = tokenSource,
        };
    }

    /// <summary>
    /// The usual lookup: <paramref name="kubeconfigPath"/> if given; else the first existing file of <c>$KUBECONFIG</c>
    /// (a path list; unlike kubectl the files are not merged); else the in-cluster config when
    /// <c>KUBERNETES_SERVICE_HOST</c> is set; else <c>~/.kube/config</c>.
    /// </summary>
    /// <exception cref="KubeConfigException">None of them exists or the chosen one is invalid.</exception>
    public static KubeClientConfig Load(string? kubeconfigPath = null) =>
        Load(kubeconfigPath, Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), DefaultServiceAccountDirectory);

    internal static KubeClientConfig Load(string? kubeconfigPath, Func<string, string?> environment, string? home, string serviceAccountDirectory)
    {
        if (!string.IsNullOrEmpty(kubeconfigPath))
        {
            return FromKubeconfig(kubeconfigPath);
        }

        var list = environment("KUBECONFIG");
        if (!string.IsNullOrEmpty(list))
        {
            foreach (var candidate in list.Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (File.Exists(candidate))
                {
                    return FromKubeconfig(candidate);
                }
            }
        }

        if (!string.IsNullOrEmpty(environment("KUBERNETES_SERVICE_HOST")))
        {
            return InCluster(serviceAccountDirectory, environment);
        }

        if (!string.IsNullOrEmpty(home))
        {
            var defaultPath = System.IO.Path.Combine(home, ".kube", "config");
            if (File.Exists(defaultPath))
            {
                return FromKubeconfig(defaultPath);
            }
        }

        throw new KubeConfigException(
            "no Kubernetes configuration found: no kubeconfig path given, no existing file in $KUBECONFIG, KUBERNETES_SERVICE_HOST unset (not in a cluster), and no ~/.kube/config");
    }

    internal static string ReadText(string path, string field)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KubeConfigException($"{field}: cannot read {path}: {e.Message}", e);
        }
    }

    /// <summary>kubeconfig parsing over YamlDotNet's representation model, with errors that name the field.</summary>
    private static class Kubeconfig
    {
        public static KubeClientConfig Parse(string yaml, string baseDirectory, string? contextName, string source)
        {
            YamlMappingNode root;
            try
            {
                var stream = new YamlStream();
                stream.Load(new StringReader(yaml));
                root = stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode m
                    ? m
                    : throw new KubeConfigException($"{source}: not a kubeconfig (expected a YAML mapping with clusters, contexts and users)");
            }
            catch (YamlException e)
            {
                throw new KubeConfigException($"{source}: invalid YAML at line {e.Start.Line}: {e.Message}", e);
            }

            contextName ??= Scalar(root, "current-context");
            if (string.IsNullOrEmpty(contextName))
            {
                throw new KubeConfigException($"{source}: current-context is not set and no context was given");
            }

            var context = Named(root, "contexts", contextName, "context", source);
            var clusterName = Scalar(context, "cluster");
            if (string.IsNullOrEmpty(clusterName))
            {
                throw new KubeConfigException($"{source}: context '{contextName}' has no cluster");
            }

            var cluster = Named(root, "clusters", clusterName, "cluster", source);
            var userName = Scalar(context, "user");
            var user = string.IsNullOrEmpty(userName) ? null : Named(root, "users", userName, "user", source);

            var serverText = Scalar(cluster, "server");
            if (string.IsNullOrEmpty(serverText))
            {
                throw new KubeConfigException($"{source}: cluster '{clusterName}' has no server");
            }

            if (!Uri.TryCreate(serverText, UriKind.Absolute, out var server) || (server.Scheme != "https" && server.Scheme != "http"))
            {
                throw new KubeConfigException($"{source}: cluster '{clusterName}' server '{serverText}' is not an absolute http(s) URL");
            }

            foreach (var unsupported in new[] { "tls-server-name", "proxy-url" })
            {
                if (!string.IsNullOrEmpty(Scalar(cluster, unsupported)))
                {
                    throw new KubeConfigException($"{source}: cluster '{clusterName}' uses {unsupported}, which this client does not support");
                }
            }

            var insecure = Bool(cluster, "insecure-skip-tls-verify", $"{source}: cluster '{clusterName}'");
            X509Certificate2Collection? ca = null;
            var caData = Scalar(cluster, "certificate-authority-data");
            var caFile = Scalar(cluster, "certificate-authority");
            var what = $"{source}: cluster '{clusterName}'";
            if (!string.IsNullOrEmpty(caData))
            {
                ca = Pem.LoadCertificates(Base64(caData, $"{what} certificate-authority-data"), $"{what} certificate-authority-data");
            }
            else if (!string.IsNullOrEmpty(caFile))
            {
                var path = Resolve(baseDirectory, caFile);
                ca = Pem.LoadCertificates(ReadText(path, $"{what} certificate-authority"), $"{what} certificate-authority {path}");
            }

            if (insecure && ca is not null)
            {
                throw new KubeConfigException($"{what}: insecure-skip-tls-verify cannot be combined with certificate-authority / certificate-authority-data (as client-go rejects it)");
            }

            X509Certificate2? clientCert = null;
            IKubeTokenSource? tokenSource = null;
            if (user is not null)
            {
                var who = $"{source}: user '{userName}'";
                if (user.Children.ContainsKey(new YamlScalarNode("exec")))
                {
                    throw new KubeConfigException($"{who} uses an exec credential plugin, which this client does not support; use a token, tokenFile or client certificate");
                }

                if (user.Children.ContainsKey(new YamlScalarNode("auth-provider")))
                {
                    throw new KubeConfigException($"{who} uses an auth-provider plugin, which this client does not support; use a token, tokenFile or client certificate");
                }

                if (!string.IsNullOrEmpty(Scalar(user, "username")) || !string.IsNullOrEmpty(Scalar(user, "password")))
                {
                    throw new KubeConfigException($"{who} uses username/password (basic auth), which this client does not support");
                }

                var certPem = Scalar(user, "client-certificate-data") is { Length: > 0 } certData
                    ? Base64(certData, $"{who} client-certificate-data")
                    : Scalar(user, "client-certificate") is { Length: > 0 } certFile
                        ? ReadText(Resolve(baseDirectory, certFile), $"{who} client-certificate")
                        : null;
                var keyPem = Scalar(user, "client-key-data") is { Length: > 0 } keyData
                    ? Base64(keyData, $"{who} client-key-data")
                    : Scalar(user, "client-key") is { Length: > 0 } keyFile
                        ? ReadText(Resolve(baseDirectory, keyFile), $"{who} client-key")
                        : null;
                if (certPem is not null && keyPem is null)
                {
                    throw new KubeConfigException($"{who} has a client certificate but no client-key / client-key-data");
                }

                if (certPem is null && keyPem is not null)
                {
                    throw new KubeConfigException($"{who} has a client key but no client-certificate / client-certificate-data");
                }

                if (certPem is not null && keyPem is not null)
                {
                    clientCert = Pem.LoadClientCertificate(certPem, keyPem, who);
                }

                var token = Scalar(user, "token");
                var tokenFile = Scalar(user, "tokenFile");
                if (!string.IsNullOrEmpty(token))
                {
                    tokenSource = new StaticTokenSource(token);
                }
                else if (!string.IsNullOrEmpty(tokenFile))
                {
                    tokenSource = new FileTokenSource(Resolve(baseDirectory, tokenFile));
                }
            }

            var ns = Scalar(context, "namespace");
            return new KubeClientConfig
            {
                Server = server,
                Namespace = string.IsNullOrEmpty(ns) ? "default" : ns,
                CertificateAuthority = ca,
                ClientCertificate = clientCert,
                InsecureSkipTlsVerify = insecure,
                TokenSource = tokenSource,
            };
        }

        private static YamlMappingNode Named(YamlMappingNode root, string listKey, string name, string innerKey, string source)
        {
            if (root.Children.TryGetValue(new YamlScalarNode(listKey), out var listNode) && listNode is YamlSequenceNode list)
            {
                foreach (var item in list.Children.OfType<YamlMappingNode>())
                {
                    if (Scalar(item, "name") == name)
                    {
                        return item.Children.TryGetValue(new YamlScalarNode(innerKey), out var inner) && inner is YamlMappingNode innerMap
                            ? innerMap
                            : throw new KubeConfigException($"{source}: {innerKey} '{name}' has no '{innerKey}' mapping");
                    }
                }
            }

            throw new KubeConfigException($"{source}: {innerKey} '{name}' not found in {listKey}");
        }

        private static string? Scalar(YamlMappingNode map, string key) =>
            map.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode scalar ? scalar.Value : null;

        private static bool Bool(YamlMappingNode map, string key, string what)
        {
            var text = Scalar(map, key);
            if (string.IsNullOrEmpty(text))
            {
                return false;
            }

            return bool.TryParse(text, out var value)
                ? value
                : throw new KubeConfigException($"{what} {key}: '{text}' is not true or false");
        }

        private static string Base64(string data, string what)
        {
            try
            {
                return Encoding.UTF8.GetString(Convert.FromBase64String(data.Trim()));
            }
            catch (FormatException e)
            {
                throw new KubeConfigException($"{what} is not valid base64", e);
            }
        }

        private static string Resolve(string baseDirectory, string path) =>
            System.IO.Path.IsPathRooted(path) ? path : System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDirectory, path));
    }
}

/// <summary>PEM helpers for CA bundles and client certificate/key pairs.</summary>
internal static class Pem
{
    public static X509Certificate2Collection LoadCertificates(string pem, string what)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw new KubeConfigException($"{what}: invalid PEM certificate: {e.Message}", e);
        }

        return collection.Count > 0 ? collection : throw new KubeConfigException($"{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) found");
    }

    public static X509Certificate2 LoadClientCertificate(string certPem, string keyPem, string what)
    {
        try
        {
            return X509Certificate2.CreateFromPem(certPem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new KubeConfigException($"{what}: client certificate/key is invalid or does not match (RSA and EC PEM keys are supported): {e.Message}", e);
        }
    }
}
