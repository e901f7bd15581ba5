using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dgon.Domain.Contracts;

namespace Dgon.Agent.Manifest;

/// <summary>
/// Detects the hardware for the capability manifest (issue 13, seed 002 §2.3.2) from the operating system, through
/// <see cref="ISystemProbe"/>. Sources, each omitted when missing or failing (nothing is invented):
/// <list type="bullet">
/// <item>macOS: <c>sysctl -n machdep.cpu.brand_string</c> (CPU model; an <c>Apple …</c> brand is the Apple Silicon chip,
/// listed also as an <c>apple</c> GPU whose memory is the unified memory), <c>sysctl -n hw.memsize</c> (bytes),
/// <c>sysctl -n hw.logicalcpu</c>; when the brand is not readable, <c>system_profiler SPHardwareDataType</c>'s
/// <c>Chip:</c> line.</item>
/// <item>Linux: <c>/proc/cpuinfo</c> (first <c>model name</c>, number of <c>processor</c> entries) and
/// <c>/proc/meminfo</c> (<c>MemTotal</c>).</item>
/// <item>NVIDIA: <c>nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits</c> (MiB).</item>
/// <item>AMD: <c>rocm-smi --showproductname --showmeminfo vram --json</c> (bytes).</item>
/// </list>
/// Memory is reported in GiB (2^30 bytes), rounded to 2 decimals. CPU cores fall back to the runtime's processor count.
/// </summary>
public sealed partial class HardwareDetector(ISystemProbe system)
{
    private readonly ISystemProbe _system = system ?? throw new ArgumentNullException(nameof(system));

    /// <summary>Measures the hardware once (a few short commands).</summary>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    public async Task<HardwareManifest> DetectAsync(CancellationToken cancellationToken)
    {
        string? cpuModel = null, appleChip = null;
        int? cores = null;
        double? memoryGb = null;
        var gpus = new List<GpuManifest>();

        if (_system.Os == "macos")
        {
            cpuModel = Line(await _system.RunAsync("sysctl", ["-n", "machdep.cpu.brand_string"], cancellationToken));
            memoryGb = ParseBytes(await _system.RunAsync("sysctl", ["-n", "hw.memsize"], cancellationToken)) is { } bytes ? Gib(bytes) : null;
            cores = ParseInt(await _system.RunAsync("sysctl", ["-n", "hw.logicalcpu"], cancellationToken));
            if (cpuModel is null && await _system.RunAsync("system_profiler", ["SPHardwareDataType"], cancellationToken) is { } profile)
            {
                cpuModel = ParseSystemProfilerChip(profile);
            }

            if (cpuModel is not null && cpuModel.StartsWith("Apple ", StringComparison.Ordinal))
            {
                appleChip = cpuModel;
                gpus.Add(new GpuManifest("apple", cpuModel, memoryGb));
            }
        }
        else if (_system.Os == "linux")
        {
            if (await _system.ReadFileAsync("/proc/cpuinfo", cancellationToken) is { } cpuinfo)
            {
                (cpuModel, cores) = ParseCpuInfo(cpuinfo);
            }

            if (await _system.ReadFileAsync("/proc/meminfo", cancellationToken) is { } meminfo && ParseMemTotalBytes(meminfo) is { } total)
            {
                memoryGb = Gib(total);
            }
        }

        if (await _system.RunAsync("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"], cancellationToken) is { } smi)
        {
            gpus.AddRange(ParseNvidiaSmi(smi));
        }

        if (await _system.RunAsync("rocm-smi", ["--showproductname", "--showmeminfo", "vram", "--json"], cancellationToken) is { } rocm)
        {
            gpus.AddRange(ParseRocmSmi(rocm));
        }

        return new HardwareManifest
        {
            Os = _system.Os,
            Arch = _system.Arch,
            CpuModel = cpuModel,
            CpuCores = cores ?? (_system.ProcessorCount > 0 ? _system.ProcessorCount : null),
            MemoryGb = memoryGb,
            AppleChip = appleChip,
            Gpus = gpus,
        };
    }

    /// <summary>Bytes → GiB (2^30), rounded to 2 decimals.</summary>
    public static double Gib(long bytes) => Math.Round(bytes / 1073741824.0, 2);

    /// <summary>
    /// <c>nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits</c>: one line per GPU,
    /// <c>NVIDIA GeForce RTX 4090, 24564</c> (MiB). A line without a name is skipped; a memory that is not a number
    /// (<c>[N/A]</c>) is omitted.
    /// </summary>
    public static IReadOnlyList<GpuManifest> ParseNvidiaSmi(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var gpus = new List<GpuManifest>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var comma = line.LastIndexOf(',');
            var name = (comma < 0 ? line : line[..comma]).Trim();
            if (name.Length == 0 || name.StartsWith("No devices", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            double? memory = comma >= 0 && double.TryParse(line[(comma + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var mib) && mib > 0
                ? Math.Round(mib / 1024, 2)
                : null;
            gpus.Add(new GpuManifest("nvidia", name, memory));
        }

        return gpus;
    }

    /// <summary>
    /// <c>rocm-smi --showproductname --showmeminfo vram --json</c>: an object of <c>cardN</c> objects. The name is the
    /// first of <c>Card Series</c>, <c>Card series</c>, <c>Marketing Name</c>, <c>Card model</c>, <c>Card Model</c>
    /// that is not empty; memory is <c>VRAM Total Memory (B)</c>. Output that is not JSON gives no GPU.
    /// </summary>
    public static IReadOnlyList<GpuManifest> ParseRocmSmi(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var gpus = new List<GpuManifest>();
        var start = output.IndexOf('{', StringComparison.Ordinal);
        if (start < 0)
        {
            return gpus;
        }

        try
        {
            using var doc = JsonDocument.Parse(output[start..]);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return gpus;
            }

            foreach (var card in doc.RootElement.EnumerateObject().Where(p => p.Name.StartsWith("card", StringComparison.OrdinalIgnoreCase)))
            {
                if (card.Value.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                string? name = null;
                foreach (var key in (string[])["Card Series", "Card series", "Marketing Name", "Card model", "Card Model"])
                {
                    if (card.Value.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()?.Trim() is { Length: > 0 } s)
                    {
                        name = s;
                        break;
                    }
                }

                if (name is null)
                {
                    continue;
                }

                double? memory = card.Value.TryGetProperty("VRAM Total Memory (B)", out var m) && ParseBytes(m.ValueKind == JsonValueKind.String ? m.GetString() : m.GetRawText()) is { } bytes
                    ? Gib(bytes)
                    : null;
                gpus.Add(new GpuManifest("amd", name, memory));
            }
        }
        catch (JsonException)
        {
            // not the JSON rocm-smi prints: no GPU listed
        }

        return gpus;
    }

    /// <summary>Linux <c>/proc/cpuinfo</c>: the first <c>model name</c> (x86; else <c>Model</c> or <c>Hardware</c>) and the count of <c>processor</c> entries.</summary>
    public static (string? Model, int? Cores) ParseCpuInfo(string cpuinfo)
    {
        ArgumentNullException.ThrowIfNull(cpuinfo);
        string? model = null, fallback = null;
        var processors = 0;
        foreach (var line in cpuinfo.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }

            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "processor":
                    processors++;
                    break;
                case "model name" when model is null && value.Length > 0:
                    model = value;
                    break;
                case "Model" or "Hardware" when fallback is null && value.Length > 0:
                    fallback = value;
                    break;
            }
        }

        return (model ?? fallback, processors > 0 ? processors : null);
    }

    /// <summary>Linux <c>/proc/meminfo</c>: <c>MemTotal</c> in bytes (the file's kB are KiB), or null.</summary>
    public static long? ParseMemTotalBytes(string meminfo)
    {
        ArgumentNullException.ThrowIfNull(meminfo);
        var m = MemTotal().Match(meminfo);
        return m.Success && long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
    }

    /// <summary>macOS <c>system_profiler SPHardwareDataType</c>: the value of the <c>Chip:</c> line (Apple Silicon), or null.</summary>
    public static string? ParseSystemProfilerChip(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var m = Chip().Match(output);
        return m.Success ? m.Groups[1].Value.Trim() : null;
    }

    /// <summary>A whole number of bytes (e.g. <c>sysctl -n hw.memsize</c>), or null.</summary>
    public static long? ParseBytes(string? text) =>
        long.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;

    private static int? ParseInt(string? text) =>
        int.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;

    private static string? Line(string? text) => text?.Trim() is { Length: > 0 } s ? s.Split('\n')[0].Trim() : null;

    [GeneratedRegex(@"^MemTotal:\s+(\d+)\s*kB", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex MemTotal();

    [GeneratedRegex(@"^\s*Chip:\s*(.+)$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex Chip();
}
