using System.Globalization;

namespace Dgon.Fleet;

/// <summary>
/// Reads another process's resource use from Linux procfs: RSS from <c>/proc/PID/status</c> (VmRSS, kB) and CPU time
/// from <c>/proc/PID/stat</c> (utime + stime, fields 14 and 15, in clock ticks of 1/100 s — USER_HZ, 100 on Linux
/// x86-64 and arm64). Returns null where procfs is absent or the process is gone.
/// </summary>
internal static class ProcStats
{
    private const double TicksPerSecond = 100;

    /// <summary>Resident set size in bytes, or null.</summary>
    public static long? RssBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var digits = new string([.. line.Where(char.IsAsciiDigit)]);
                    return long.Parse(digits, CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    /// <summary>User + system CPU seconds consumed so far, or null.</summary>
    public static double? CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after "pid (comm) ": fields from 3 on
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>This process's CPU seconds (the generator's own share of the machine).</summary>
    public static double OwnCpuSeconds() => Environment.CpuUsage.TotalTime.TotalSeconds;
}
