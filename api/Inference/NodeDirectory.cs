using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.DgonNodes;

namespace Dgon.Api.Inference;

/// <summary>The node records the router consults (phase, region, reputation), from memory in both modes.</summary>
public interface INodeDirectory
{
    /// <summary>The node as known to this replica now, or null when unknown (or not loaded yet).</summary>
    NodeRecord? Get(string nodeId);
}

/// <summary>Standalone mode: the in-memory node table (issue 11).</summary>
public sealed class NodeTableDirectory(Fleet.NodeTable table) : INodeDirectory
{
    /// <inheritdoc />
    public NodeRecord? Get(string nodeId) => table.Get(nodeId)?.Node;
}

/// <summary>Kubernetes mode: the API's informer cache of DgonNodes (the resource name is the node id).</summary>
public sealed class InformerDirectory(IInformer<DgonNode> nodes, KubeNamespace ns) : INodeDirectory
{
    /// <inheritdoc />
    public NodeRecord? Get(string nodeId)
    {
        if (!nodes.HasSynced || !nodes.TryGet(ns.Name, nodeId, out var node) || node is null || node.Metadata.DeletionTimestamp is not null)
        {
            return null;
        }

        try
        {
            return DgonNodeMapping.ToRecord(node);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
