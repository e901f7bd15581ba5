namespace Dgon.Kubernetes;

/// <summary>
/// The client configuration (kubeconfig or in-cluster service account) is missing, invalid or uses a feature this
/// small client does not support (exec/auth-provider plugins). The message names the file and the field. Part of
/// DGON's stand-in for KubernetesClient's <c>KubeConfigException</c>.
/// </summary>
public sealed class KubeConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KubeConfigException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeConfigException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public KubeConfigException(string message, Exception inner) : base(message, inner)
    {
    }
}
