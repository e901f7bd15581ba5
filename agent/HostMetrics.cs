using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Dgon.Agent;

/// <summary>
/// One measurement of the host for a heartbeat (seed 000 body: <c>gpu_util?</c>, <c>mem_used_gb?</c>).
/// A value that could not be measured is null and is omitted from the heartbeat, never invented.
/// </summary>
/// <param name="MemUsedGb">Memory in use, in gigabytes of 10^9 bytes.</param>
/// <param name="GpuUtil">Mean GPU utilisation over all GPUs as a ratio in [0, 1].</param>
public readonly record struct HostSample(double? MemUsedGb, double? GpuUtil);

/// <summary>Measures the host for heartbeats. Implementations never throw except on cancellation.</summary>
public interface IHostMetrics
{
    /// <summary>Takes one measurement.</summary>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    Task<HostSample> MeasureAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Real host measurements. Memory: Linux <c>/proc/meminfo</c> MemTotal − MemAvailable; macOS <c>vm_stat</c>
/// (active + wired + compressor-occupied pages) × page size; other systems: not measured. GPU: only when
/// <c>nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits</c> exists and succeeds (mean / 100).
/// </summary>
public sealed class HostMetrics : IHostMetrics
{
    /// <summary>Time limit of each external command (vm_stat, nvidia-smi).</summary>
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(2);

    private readonly string _procMeminfo;

    /// <summary>Creates the real measurer; <paramref name="procMeminfo"/> is the Linux meminfo path.</summary>
    public HostMetrics(string procMeminfo = "/proc/meminfo") => _procMeminfo = procMeminfo;

    /// <inheritdoc />
    public async Task<HostSample> MeasureAsync(CancellationToken cancellationToken)
    {
        var memory = await MeasureMemoryBytesAsync(cancellationToken);
        var gpu = await MeasureGpuAsync(cancellationToken);
        return new HostSample(memory is { } bytes ? HostMetricsParser.ToGigabytes(bytes) : null, gpu);
    }

    private async Task<long?> MeasureMemoryBytesAsync(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                return HostMetricsParser.MemInfoUsedBytes(await File.ReadAllTextAsync(_procMeminfo, cancellationToken));
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }

        if (OperatingSystem.IsMacOS())
        {
            var text = await RunAsync("vm_stat", [], cancellationToken);
            return text is null ? null : HostMetricsParser.VmStatUsedBytes(text);
        }

        return null;
    }

    private static async Task<double?> MeasureGpuAsync(CancellationToken cancellationToken)
    {
        if (FindOnPath("nvidia-smi") is not { } smi)
        {
            return null;
        }

        var text = await RunAsync(smi, ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"], cancellationToken);
        return text is null ? null : HostMetricsParser.NvidiaSmiUtilisation(text);
    }

    /// <summary>Full path of an executable found on PATH, or null.</summary>
    public static string? FindOnPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }

        var names = OperatingSystem.IsWindows() ? new[] { name + ".exe", name } : [name];
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var n in names)
            {
                var candidate = Path.Combine(dir, n);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>Runs a command; returns its standard output when it exits 0 within <see cref="CommandTimeout"/>, else null.</summary>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    public static async Task<string?> RunAsync(string fileName, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = new Process { StartInfo = psi };
        try
        {
            if (!process.Start())
            {
                return null;
            }
        }
        catch (Win32Exception)
        {
            return null; // not installed or not executable
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CommandTimeout);
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            var text = await stdout;
            await stderr;
            return process.ExitCode == 0 ? text : null;
        }
        catch (OperationCanceledException)
        {
            KillQuietly(process);
            cancellationToken.ThrowIfCancellationRequested();
            return null;
        }
    }

    private static void KillQuietly(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }
        catch (Win32Exception)
        {
            // cannot be killed; it is abandoned
        }
    }
}

/// <summary>Pure parsers of the OS tools' outputs used by <see cref="HostMetrics"/>.</summary>
public static partial class HostMetricsParser
{
    /// <summary>Bytes → gigabytes of 10^9 bytes, rounded to 3 decimals.</summary>
    public static double ToGigabytes(long bytes) => Math.Round(bytes / 1e9, 3);

    /// <summary>
    /// Linux <c>/proc/meminfo</c>: (MemTotal − MemAvailable) × 1024 (values are in kB, i.e. KiB).
    /// </summary>
    /// <returns>Bytes in use, or null when either line is missing or malformed.</returns>
    public static long? MemInfoUsedBytes(string meminfo)
    {
        ArgumentNullException.ThrowIfNull(meminfo);
        long? total = null, available = null;
        foreach (var line in meminfo.Split('\n'))
        {
            var m = MemInfoLine().Match(line);
            if (!m.Success || !long.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var kb))
            {
                continue;
            }

            switch (m.Groups[1].Value)
            {
                case "MemTotal":
                    total = kb;
                    break;
                case "MemAvailable":
                    available = kb;
                    break;
            }
        }

        return total is { } t && available is { } a && t >= a ? (t - a) * 1024 : null;
    }

    /// <summary>
    /// macOS <c>vm_stat</c>: (Pages active + Pages wired down + Pages occupied by compressor) × page size, the page size
    /// read from its first line (<c>Mach Virtual Memory Statistics: (page size of 16384 bytes)</c>).
    /// </summary>
    /// <returns>Bytes in use, or null when the page size or any of the three counts is missing.</returns>
    public static long? VmStatUsedBytes(string vmStat)
    {
        ArgumentNullException.ThrowIfNull(vmStat);
        var pageSize = PageSize().Match(vmStat);
        if (!pageSize.Success || !long.TryParse(pageSize.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var size))
        {
            return null;
        }

        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in vmStat.Split('\n'))
        {
            var m = VmStatLine().Match(line);
            if (m.Success && long.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pages))
            {
                counts[m.Groups[1].Value.Trim()] = pages;
            }
        }

        return counts.TryGetValue("Pages active", out var active)
            && counts.TryGetValue("Pages wired down", out var wired)
            && counts.TryGetValue("Pages occupied by compressor", out var compressed)
            ? (active + wired + compressed) * size
            : null;
    }

    /// <summary>
    /// <c>nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits</c>: one percentage per line and GPU.
    /// Lines that are not numbers (e.g. <c>[N/A]</c>) are skipped.
    /// </summary>
    /// <returns>The mean over GPUs as a ratio in [0, 1], or null when no line is a number.</returns>
    public static double? NvidiaSmiUtilisation(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var values = new List<double>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out var percent) && percent is >= 0 and <= 100)
            {
                values.Add(percent);
            }
        }

        return values.Count == 0 ? null : Math.Round(values.Average() / 100, 4);
    }

    [GeneratedRegex(@"^(\w+):\s+(\d+)\s*kB\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex MemInfoLine();

    [GeneratedRegex(@"page size of (\d+) bytes", RegexOptions.CultureInvariant)]
    private static partial Regex PageSize();

    [GeneratedRegex(@"^([A-Za-z][A-Za-z \-]*):\s+(\d+)\.?\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex VmStatLine();
}
