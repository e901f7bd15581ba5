using System.Runtime.InteropServices;

namespace Dgon.Agent.Manifest;

/// <summary>
/// What hardware detection reads from the operating system: commands' standard output and files. Behind this
/// interface so tests can feed canned outputs (issue 13: "nothing invented": a missing or failing source is null).
/// </summary>
public interface ISystemProbe
{
    /// <summary>Operating system wire name: <c>macos</c>, <c>linux</c>, <c>windows</c> (or <c>other</c>).</summary>
    string Os { get; }

    /// <summary>Architecture wire name: <c>arm64</c>, <c>x64</c>, … (lowercase <see cref="Architecture"/>).</summary>
    string Arch { get; }

    /// <summary>Logical processors the runtime sees (<see cref="Environment.ProcessorCount"/>).</summary>
    int ProcessorCount { get; }

    /// <summary>Runs a command found on PATH.</summary>
    /// <returns>Its standard output when it exists and exits 0 within a few seconds, else null.</returns>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    Task<string?> RunAsync(string command, IReadOnlyList<string> args, CancellationToken cancellationToken);

    /// <summary>Reads a text file.</summary>
    /// <returns>Its content, or null when it does not exist or cannot be read.</returns>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    Task<string?> ReadFileAsync(string path, CancellationToken cancellationToken);
}

/// <summary>The real operating system: commands through <see cref="HostMetrics.RunAsync"/> (2 s limit, exit code 0 only).</summary>
public sealed class SystemProbe : ISystemProbe
{
    /// <summary>Directories searched after PATH for system tools (macOS keeps sysctl and system_profiler in /usr/sbin).</summary>
    private static readonly string[] SystemDirectories = ["/usr/sbin", "/sbin", "/usr/bin", "/opt/rocm/bin"];

    /// <inheritdoc />
    public string Os { get; } =
        OperatingSystem.IsMacOS() ? "macos"
        : OperatingSystem.IsLinux() ? "linux"
        : OperatingSystem.IsWindows() ? "windows"
        : "other";

    /// <inheritdoc />
    public string Arch { get; } = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();

    /// <inheritdoc />
    public int ProcessorCount => Environment.ProcessorCount;

    /// <inheritdoc />
    public async Task<string?> RunAsync(string command, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var path = HostMetrics.FindOnPath(command)
            ?? SystemDirectories.Select(d => Path.Combine(d, command)).FirstOrDefault(File.Exists);
        return path is null ? null : await HostMetrics.RunAsync(path, args, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<string?> ReadFileAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
