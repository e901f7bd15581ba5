using Dgon.Agent.Manifest;

namespace Dgon.Agent.Tests.Support;

/// <summary>An <see cref="ISystemProbe"/> answering canned outputs: commands keyed by "name arg1 arg2…", files by path; anything else is missing (null).</summary>
public sealed class CannedSystem(string os, string arch = "x64", int processors = 8) : ISystemProbe
{
    public Dictionary<string, string> Commands { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Files { get; } = new(StringComparer.Ordinal);

    public List<string> Ran { get; } = [];

    public string Os { get; } = os;

    public string Arch { get; } = arch;

    public int ProcessorCount { get; } = processors;

    public Task<string?> RunAsync(string command, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var key = string.Join(' ', [command, .. args]);
        Ran.Add(key);
        return Task.FromResult(Commands.TryGetValue(key, out var v) ? v : null);
    }

    public Task<string?> ReadFileAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult(Files.TryGetValue(path, out var v) ? v : null);

    public const string NvidiaSmi = "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits";
    public const string RocmSmi = "rocm-smi --showproductname --showmeminfo vram --json";
}
