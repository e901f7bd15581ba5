using System.Text;
using Dgon.Agent.Manifest;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;

namespace Dgon.Agent.Tests;

/// <summary>Hardware detection from canned OS outputs and model lists (issue 13: nothing invented).</summary>
public sealed class ManifestTests
{
    private const string CpuInfo = """
        processor	: 0
        vendor_id	: AuthenticAMD
        model name	: AMD EPYC 7763 64-Core Processor
        cpu cores	: 64

        processor	: 1
        vendor_id	: AuthenticAMD
        model name	: AMD EPYC 7763 64-Core Processor

        processor	: 2
        model name	: AMD EPYC 7763 64-Core Processor

        """;

    private const string MemInfo = "MemTotal:       131890512 kB\nMemFree:         1000000 kB\nMemAvailable:   100000000 kB\n";

    private const string Rocm = """
        ============================ ROCm System Management Interface ============================
        {"card0": {"Card series": "Instinct MI210", "Card model": "0x740f", "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D67301", "VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "10960896"},
         "card1": {"Card Series": "", "Marketing Name": "AMD Radeon RX 7900 XTX", "VRAM Total Memory (B)": "25753026560"}}
        """;

    [Fact]
    public async Task Linux_host_with_nvidia_and_amd_gpus_is_read_from_proc_and_the_tools()
    {
        var system = new CannedSystem("linux", "x64", processors: 99);
        system.Files["/proc/cpuinfo"] = CpuInfo;
        system.Files["/proc/meminfo"] = MemInfo;
        system.Commands[CannedSystem.NvidiaSmi] = "NVIDIA H100 80GB HBM3, 81559\nNVIDIA GeForce RTX 4090, [N/A]\n";
        system.Commands[CannedSystem.RocmSmi] = Rocm;

        var hw = await new HardwareDetector(system).DetectAsync(CancellationToken.None);

        Assert.Equal("linux", hw.Os);
        Assert.Equal("x64", hw.Arch);
        Assert.Equal("AMD EPYC 7763 64-Core Processor", hw.CpuModel);
        Assert.Equal(3, hw.CpuCores); // processor entries, not the runtime's count
        Assert.Equal(125.78, hw.MemoryGb); // 131890512 KiB
        Assert.Null(hw.AppleChip);
        Assert.Equal(
            [new GpuManifest("nvidia", "NVIDIA H100 80GB HBM3", 79.65), new GpuManifest("nvidia", "NVIDIA GeForce RTX 4090", null),
             new GpuManifest("amd", "Instinct MI210", 63.98), new GpuManifest("amd", "AMD Radeon RX 7900 XTX", 23.98)],
            hw.Gpus);
        Assert.DoesNotContain(system.Ran, r => r.StartsWith("sysctl", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Apple_silicon_reads_sysctl_and_lists_the_chip_with_unified_memory()
    {
        var system = new CannedSystem("macos", "arm64");
        system.Commands["sysctl -n machdep.cpu.brand_string"] = "Apple M3 Max\n";
        system.Commands["sysctl -n hw.memsize"] = "137438953472\n";
        system.Commands["sysctl -n hw.logicalcpu"] = "16\n";

        var hw = await new HardwareDetector(system).DetectAsync(CancellationToken.None);

        Assert.Equal("Apple M3 Max", hw.CpuModel);
        Assert.Equal("Apple M3 Max", hw.AppleChip);
        Assert.Equal(16, hw.CpuCores);
        Assert.Equal(128, hw.MemoryGb);
        Assert.Equal([new GpuManifest("apple", "Apple M3 Max", 128)], hw.Gpus);
        Assert.DoesNotContain(system.Ran, r => r.StartsWith("system_profiler", StringComparison.Ordinal)); // only when sysctl has no brand
    }

    [Fact]
    public async Task System_profiler_names_the_chip_when_sysctl_has_no_brand()
    {
        var system = new CannedSystem("macos", "arm64");
        system.Commands["system_profiler SPHardwareDataType"] = "Hardware:\n\n    Hardware Overview:\n\n      Model Name: MacBook Pro\n      Chip: Apple M2 Pro\n      Total Number of Cores: 12 (8 performance and 4 efficiency)\n      Memory: 32 GB\n";

        var hw = await new HardwareDetector(system).DetectAsync(CancellationToken.None);

        Assert.Equal("Apple M2 Pro", hw.AppleChip);
        Assert.Null(hw.MemoryGb); // hw.memsize missing: omitted, not guessed from the "32 GB" text
        Assert.Equal(8, hw.CpuCores); // the runtime's processor count
    }

    [Fact]
    public async Task Missing_or_failing_sources_are_omitted()
    {
        var system = new CannedSystem("linux");
        system.Commands[CannedSystem.NvidiaSmi] = "No devices were found\n";
        system.Commands[CannedSystem.RocmSmi] = "ERROR: rocm-smi could not find any GPU";

        var hw = await new HardwareDetector(system).DetectAsync(CancellationToken.None);

        Assert.Null(hw.CpuModel);
        Assert.Null(hw.MemoryGb);
        Assert.Empty(hw.Gpus);
        Assert.Equal(8, hw.CpuCores);
    }

    [Fact]
    public void Model_lists_parse_from_ollama_tags_and_openai_models()
    {
        var tags = """{"models":[{"name":"llama3.1:8b","model":"llama3.1:8b","size":4920753328,"digest":"abc","details":{"format":"gguf","family":"llama","parameter_size":"8.0B","quantization_level":"Q4_K_M"}},{"model":"qwen2:0.5b"},{"size":5}]}""";
        Assert.Equal(
            [new ModelManifest("llama3.1:8b", 4920753328, "Q4_K_M"), new ModelManifest("qwen2:0.5b", null, null)],
            RuntimeModels.ParseOllamaTags(Encoding.UTF8.GetBytes(tags)));
        Assert.Equal(
            [new ModelManifest("meta-llama/Llama-3.1-8B-Instruct", null, null)],
            RuntimeModels.ParseOpenAiModels("""{"object":"list","data":[{"id":"meta-llama/Llama-3.1-8B-Instruct","object":"model"}]}"""u8));
        Assert.Null(RuntimeModels.ParseOllamaTags("not json"u8));
        Assert.Null(RuntimeModels.ParseOpenAiModels("""{"models":[]}"""u8));
    }

    [Fact]
    public async Task Manifest_lists_the_runtime_models_and_issued_at_always_increases()
    {
        await using var runtime = await StubChatRuntime.StartAsync();
        using var http = new HttpClient();
        var builder = new ManifestBuilder(new HardwareDetector(new CannedSystem("linux")), new RuntimeModels(http, runtime.BaseAddress, NodeRuntime.Vllm), "n1", NodeRuntime.Vllm, 4, TimeProvider.System);

        var first = await builder.BuildAsync(CancellationToken.None);
        var second = await builder.BuildAsync(CancellationToken.None);

        Assert.Equal(["echo-1", "slow-1"], first.Runtime.Models.Select(m => m.Id));
        Assert.Equal("vllm", first.Runtime.Kind);
        Assert.Equal(4, first.MaxParallel);
        Assert.Matches(@"^\d+\.\d+\.\d+", first.ClientVersion);
        Assert.True(second.IssuedAt > first.IssuedAt);
    }
}
