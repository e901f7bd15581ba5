namespace Dgon.Domain.Nodes;

/// <summary>
/// LLM runtime a node serves with. Seed 000: <c>runtime ∈ ollama|vllm|tensorrtllm|tgi</c>.
/// </summary>
public enum NodeRuntime
{
    /// <summary>Ollama (<c>ollama</c>).</summary>
    Ollama,

    /// <summary>vLLM (<c>vllm</c>).</summary>
    Vllm,

    /// <summary>NVIDIA TensorRT-LLM (<c>tensorrtllm</c>).</summary>
    TensorRtLlm,

    /// <summary>Hugging Face Text Generation Inference (<c>tgi</c>).</summary>
    Tgi,
}

/// <summary>Conversions between <see cref="NodeRuntime"/> and its wire form.</summary>
public static class NodeRuntimes
{
    /// <summary>All runtimes in wire order.</summary>
    public static IReadOnlyList<NodeRuntime> All { get; } = [NodeRuntime.Ollama, NodeRuntime.Vllm, NodeRuntime.TensorRtLlm, NodeRuntime.Tgi];

    /// <summary>The wire name: <c>ollama</c>, <c>vllm</c>, <c>tensorrtllm</c> or <c>tgi</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined runtime.</exception>
    public static string ToWire(this NodeRuntime runtime) => runtime switch
    {
        NodeRuntime.Ollama => "ollama",
        NodeRuntime.Vllm => "vllm",
        NodeRuntime.TensorRtLlm => "tensorrtllm",
        NodeRuntime.Tgi => "tgi",
        _ => throw new ArgumentOutOfRangeException(nameof(runtime), runtime, "undefined runtime"),
    };

    /// <summary>Parses a wire name (exact, lowercase). Returns false for anything else.</summary>
    public static bool TryParse(string? wire, out NodeRuntime runtime)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(candidate.ToWire(), wire, StringComparison.Ordinal))
            {
                runtime = candidate;
                return true;
            }
        }

        runtime = default;
        return false;
    }
}
