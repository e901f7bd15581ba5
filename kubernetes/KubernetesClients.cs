using k8s;

namespace Dgon.Kubernetes;

/// <summary>How the API and the operator connect to the cluster: KubernetesClient's own configuration loading.</summary>
public static class KubernetesClients
{
    /// <summary>
    /// The client configuration: from <paramref name="kubeconfig"/> when given (a <c>KUBECONFIG</c>-style list of
    /// files; missing files are skipped; the process's own <c>KUBECONFIG</c> list is merged by the library as kubectl
    /// merges it, any other list uses its first existing file), else
    /// <see cref="KubernetesClientConfiguration.BuildDefaultConfig"/> (<c>$KUBECONFIG</c>, <c>~/.kube/config</c>, or
    /// the in-cluster service account). Exec credential plugins (EKS, GKE, AKS), client certificates, tokens and
    /// the kubeconfig context's namespace all come from the library.
    /// </summary>
    /// <exception cref="k8s.Exceptions.KubeConfigException">No usable configuration.</exception>
    public static KubernetesClientConfiguration LoadConfiguration(string? kubeconfig)
    {
        if (string.IsNullOrWhiteSpace(kubeconfig))
        {
            return KubernetesClientConfiguration.BuildDefaultConfig();
        }

        var files = kubeconfig.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => new FileInfo(p))
            .Where(f => f.Exists)
            .ToArray();
        if (files.Length == 0)
        {
            throw new k8s.Exceptions.KubeConfigException($"KUBECONFIG names no existing file: {kubeconfig}");
        }

        if (files.Length > 1 && string.Equals(kubeconfig, Environment.GetEnvironmentVariable("KUBECONFIG"), StringComparison.Ordinal))
        {
            return KubernetesClientConfiguration.BuildDefaultConfig(); // the library merges a KUBECONFIG list itself
        }

        return KubernetesClientConfiguration.BuildConfigFromConfigFile(files[0]);
    }

    /// <summary>The namespace to use: <paramref name="configured"/> when set, else the configuration's (kubeconfig context or in-cluster), else <c>default</c>.</summary>
    public static KubeNamespace Namespace(string? configured, KubernetesClientConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new KubeNamespace(!string.IsNullOrWhiteSpace(configured) ? configured : string.IsNullOrEmpty(config.Namespace) ? "default" : config.Namespace);
    }
}
