namespace Dgon.Domain.Nodes;

/// <summary>
/// Lifecycle phase of a node. Seed 000 data model: <c>status ∈ pending|active|offline|quarantine</c>.
/// The wire form (JSON, database, Kubernetes status) is the lowercase name; see <see cref="NodePhases"/>.
/// </summary>
public enum NodePhase
{
    /// <summary>Registered, or heartbeating without a ready runtime (seed 000: heartbeat <c>ready=false</c>).</summary>
    Pending,

    /// <summary>Heartbeating with a ready runtime (seed 000: heartbeat <c>ready=true</c>).</summary>
    Active,

    /// <summary>No valid heartbeat for longer than the grace period.</summary>
    Offline,

    /// <summary>Held out of the network by operator intent; heartbeats are recorded but do not change the phase.</summary>
    Quarantine,
}

/// <summary>Conversions between <see cref="NodePhase"/> and its wire form.</summary>
public static class NodePhases
{
    /// <summary>All phases in their wire order.</summary>
    public static IReadOnlyList<NodePhase> All { get; } = [NodePhase.Pending, NodePhase.Active, NodePhase.Offline, NodePhase.Quarantine];

    /// <summary>The wire name: <c>pending</c>, <c>active</c>, <c>offline</c> or <c>quarantine</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined phase.</exception>
    public static string ToWire(this NodePhase phase) => phase switch
    {
        NodePhase.Pending => "pending",
        NodePhase.Active => "active",
        NodePhase.Offline => "offline",
        NodePhase.Quarantine => "quarantine",
        _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, "undefined node phase"),
    };

    /// <summary>Parses a wire name (exact, lowercase). Returns false for anything else.</summary>
    public static bool TryParse(string? wire, out NodePhase phase)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(candidate.ToWire(), wire, StringComparison.Ordinal))
            {
                phase = candidate;
                return true;
            }
        }

        phase = default;
        return false;
    }
}
