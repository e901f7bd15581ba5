namespace Dgon.Api.Fleet;

/// <summary>
/// This API process's identity among replicas: <c>&lt;host&gt;-&lt;random&gt;</c>, new at every start (so a restarted
/// replica holds no node's request clock until a node's request claims it again).
/// </summary>
public sealed class ReplicaIdentity
{
    /// <summary>Creates a fresh identity.</summary>
    public ReplicaIdentity() => Id = $"{Environment.MachineName}-{Guid.NewGuid():N}"[..Math.Min(200, Environment.MachineName.Length + 33)];

    /// <summary>The id, at most 200 characters.</summary>
    public string Id { get; }
}
