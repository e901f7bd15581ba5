namespace Dgon.Kubernetes;

/// <summary>
/// The one namespace a DGON component works in (its DgonNodes, their Secrets, Events and the operator's Lease),
/// resolved once at start-up: <c>DGON_NAMESPACE</c>, else the kubeconfig context's or the pod's namespace.
/// </summary>
/// <param name="Name">Namespace name.</param>
public sealed record KubeNamespace(string Name);
