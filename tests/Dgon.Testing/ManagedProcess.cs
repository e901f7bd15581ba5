using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Dgon.Testing;

/// <summary>A child process with its stdout and stderr captured line by line; stopped with SIGTERM, then killed.</summary>
public sealed partial class ManagedProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private ManagedProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    /// <summary>A short name used in diagnostics.</summary>
    public string Name { get; }

    /// <summary>Every line printed so far (stdout and stderr interleaved as received).</summary>
    public IReadOnlyList<string> Output => [.. _lines];

    /// <summary>Process id.</summary>
    public int Id => _process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Exit code once exited, else null.</summary>
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>Starts <paramref name="fileName"/> with arguments and extra environment (null value removes a variable).</summary>
    public static ManagedProcess Start(string fileName, IEnumerable<string> args, IDictionary<string, string?>? env = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string?>())
        {
            if (v is null)
            {
                psi.Environment.Remove(k);
            }
            else
            {
                psi.Environment[k] = v;
            }
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var managed = new ManagedProcess(process, Path.GetFileName(args.FirstOrDefault() ?? fileName));
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) managed._lines.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) managed._lines.Enqueue(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return managed;
    }

    /// <summary>
    /// Starts a built service (<c>dotnet {dll}</c>, working directory = its folder) and waits up to 60 s until
    /// <paramref name="readyUrl"/> answers 2xx.
    /// </summary>
    /// <exception cref="InvalidOperationException">It exited or never became ready; the message holds its output. The process is stopped.</exception>
    public static async Task<ManagedProcess> StartServiceAsync(string dll, IEnumerable<string> args, IDictionary<string, string?> env, Uri readyUrl)
    {
        ArgumentNullException.ThrowIfNull(readyUrl);
        var process = Start("dotnet", [dll, .. args], env, Path.GetDirectoryName(dll));
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            await Eventually.Until(
                async () =>
                {
                    if (process.HasExited)
                    {
                        throw new InvalidOperationException($"{process.Name} exited with {process.ExitCode}:\n{process.Dump()}");
                    }

                    using var response = await probe.GetAsync(readyUrl);
                    return response.IsSuccessStatusCode;
                },
                TimeSpan.FromSeconds(60),
                $"{process.Name} {readyUrl}");
        }
        catch (TimeoutException e)
        {
            await process.DisposeAsync();
            throw new InvalidOperationException(e.Message + "\n" + process.Dump(), e);
        }

        return process;
    }

    /// <summary>Waits until some output line satisfies <paramref name="predicate"/>; false on timeout or exit.</summary>
    public async Task<bool> WaitForOutputAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_lines.Any(predicate))
            {
                return true;
            }

            if (_process.HasExited)
            {
                await Task.Delay(100); // let the last lines drain
                return _lines.Any(predicate);
            }

            await Task.Delay(100);
        }

        return false;
    }

    /// <summary>Waits for exit; returns the exit code.</summary>
    /// <exception cref="TimeoutException">Still running after <paramref name="timeout"/>.</exception>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} still running after {timeout.TotalSeconds:0} s");
        }

        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM and waits up to 10 s, then kills the process tree.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        _ = SysKill(_process.Id, 15);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
        }
    }

    /// <summary>Kills the process tree at once (SIGKILL), as a crash would.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    /// <summary>All output as one string, for assertion messages.</summary>
    public string Dump() => $"--- {Name} output ---\n" + string.Join('\n', _lines);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);
}
