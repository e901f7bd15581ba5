namespace Dgon.Agent.Tests;

public sealed class HostMetricsTests
{
    private const string MemInfo = """
        MemTotal:       16318412 kB
        MemFree:         1021552 kB
        MemAvailable:    9823364 kB
        Buffers:          421380 kB
        Cached:          8012340 kB
        SwapCached:            0 kB
        HugePages_Total:       0
        Hugepagesize:       2048 kB
        """;

    // vm_stat on an Apple silicon Mac (16 KiB pages).
    private const string VmStat = """
        Mach Virtual Memory Statistics: (page size of 16384 bytes)
        Pages free:                               12058.
        Pages active:                            251230.
        Pages inactive:                          248374.
        Pages speculative:                         1822.
        Pages throttled:                              0.
        Pages wired down:                        130017.
        Pages purgeable:                           5473.
        "Translation faults":                 512342314.
        Pages copy-on-write:                   12923121.
        Pages zero filled:                    210293120.
        Pages reactivated:                      4231120.
        Pages purged:                            912231.
        File-backed pages:                       180011.
        Anonymous pages:                         321415.
        Pages stored in compressor:              612003.
        Pages occupied by compressor:            190442.
        Decompressions:                         8123441.
        Compressions:                          11231201.
        Pageins:                                4123112.
        Pageouts:                                 41231.
        Swapins:                                      0.
        Swapouts:                                     0.
        """;

    [Fact]
    public void Meminfo_used_is_total_minus_available_in_bytes()
    {
        Assert.Equal((16318412L - 9823364L) * 1024, HostMetricsParser.MemInfoUsedBytes(MemInfo));
        Assert.Equal(6.651, HostMetricsParser.ToGigabytes((16318412L - 9823364L) * 1024));
    }

    [Fact]
    public void Meminfo_without_MemAvailable_is_not_measured() =>
        Assert.Null(HostMetricsParser.MemInfoUsedBytes("MemTotal:       16318412 kB\nMemFree:         1021552 kB\n"));

    [Fact]
    public void Vm_stat_used_is_active_plus_wired_plus_compressor_times_page_size()
    {
        var expected = (251230L + 130017L + 190442L) * 16384;
        Assert.Equal(expected, HostMetricsParser.VmStatUsedBytes(VmStat));
        Assert.Equal(9.367, HostMetricsParser.ToGigabytes(expected));
    }

    [Fact]
    public void Vm_stat_with_4k_pages_uses_the_stated_page_size()
    {
        var intel = VmStat.Replace("16384", "4096", StringComparison.Ordinal);
        Assert.Equal((251230L + 130017L + 190442L) * 4096, HostMetricsParser.VmStatUsedBytes(intel));
    }

    [Fact]
    public void Vm_stat_without_page_size_or_counts_is_not_measured()
    {
        Assert.Null(HostMetricsParser.VmStatUsedBytes(VmStat.Replace("(page size of 16384 bytes)", "", StringComparison.Ordinal)));
        Assert.Null(HostMetricsParser.VmStatUsedBytes(VmStat.Replace("Pages wired down", "Pages wired", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("45\n", 0.45)]
    [InlineData("40\n60\n", 0.5)]
    [InlineData("0\n", 0.0)]
    [InlineData("100\n[N/A]\n", 1.0)]
    public void Nvidia_smi_is_the_mean_ratio_over_gpus(string output, double expected) =>
        Assert.Equal(expected, HostMetricsParser.NvidiaSmiUtilisation(output));

    [Theory]
    [InlineData("")]
    [InlineData("[N/A]\n")]
    [InlineData("No devices were found\n")]
    public void Nvidia_smi_without_numbers_is_not_measured(string output) =>
        Assert.Null(HostMetricsParser.NvidiaSmiUtilisation(output));

    [Fact]
    public async Task Real_measurement_reports_memory_on_linux_and_macos_and_omits_gpu_without_nvidia_smi()
    {
        var sample = await new HostMetrics().MeasureAsync(CancellationToken.None);
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            Assert.NotNull(sample.MemUsedGb);
            Assert.InRange(sample.MemUsedGb.Value, 0.001, 100_000);
        }

        if (HostMetrics.FindOnPath("nvidia-smi") is null)
        {
            Assert.Null(sample.GpuUtil);
        }
    }

    [Fact]
    public async Task Missing_command_gives_null()
    {
        Assert.Null(await HostMetrics.RunAsync("dgon-no-such-command-" + Guid.NewGuid().ToString("N"), [], CancellationToken.None));
    }

    [Fact]
    public async Task Failing_command_gives_null_and_succeeding_command_gives_output()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Assert.Null(await HostMetrics.RunAsync("sh", ["-c", "echo 12; exit 3"], CancellationToken.None));
        Assert.Equal("12\n", await HostMetrics.RunAsync("sh", ["-c", "echo 12"], CancellationToken.None));
    }
}
