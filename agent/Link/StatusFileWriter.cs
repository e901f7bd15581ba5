using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent.Link;

/// <summary>
/// Writes <see cref="AgentStatus"/> to <c>{config-dir}/{node-id}.status.json</c> (mode 0600, atomically) every second
/// and on every change, and once more with <c>running: false</c> when stopped. Write failures are logged once per
/// state change and otherwise ignored (the status file is a convenience, not the agent's job).
/// </summary>
public sealed class StatusFileWriter
{
    /// <summary>Rewrite period: 1 s.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    private readonly AgentStatus _status;
    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _changed = new(0, 1);
    private bool _failing;

    /// <summary>Creates the writer of <paramref name="status"/> into <see cref="PathFor"/>.</summary>
    public StatusFileWriter(AgentStatus status, string configDir, string nodeId, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(status);
        (_status, _path, _time, _logger) = (status, PathFor(configDir, nodeId), time, logger);
        status.Changed += Signal;
    }

    /// <summary>Shortest time between two writes of the file (250 ms): state changes in between are coalesced.</summary>
    public static readonly TimeSpan MinGap = TimeSpan.FromMilliseconds(250);

    /// <summary>The status file of a node: <c>{configDir}/{nodeId}.status.json</c>.</summary>
    public static string PathFor(string configDir, string nodeId) => Path.Combine(Path.GetFullPath(configDir), nodeId + ".status.json");

    /// <summary>The file written.</summary>
    public string FilePath => _path;

    /// <summary>Writes until <paramref name="stop"/>, then writes the final snapshot (<c>running: false</c>).</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                Write(_status.Snapshot());
                try
                {
                    await _changed.WaitAsync(Period, stop);
                    // Changes come with every task (READY → EXECUTING → READY): write at most every MinGap, so a busy
                    // node does not rewrite (and fsync) its status file hundreds of times a second.
                    await Task.Delay(MinGap, _time, stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        finally
        {
            _status.Changed -= Signal;
        }
    }

    /// <summary>Writes the final snapshot (<c>running: false</c>).</summary>
    public void WriteFinal() => Write(_status.Snapshot(running: false));

    private void Signal()
    {
        if (_changed.CurrentCount == 0)
        {
            try
            {
                _changed.Release();
            }
            catch (SemaphoreFullException)
            {
                // already signalled
            }
        }
    }

    private void Write(StatusFile snapshot)
    {
        try
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(snapshot, StatusJsonContext.Default.StatusFile);
            PrivateFiles.EnsureDirectory(Path.GetDirectoryName(_path)!);
            PrivateFiles.WriteAtomic(_path, s => s.Write(bytes), overwrite: true);
            _failing = false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (!_failing)
            {
                _failing = true;
                LinkLog.StatusWriteFailed(_logger, _path, e.Message);
            }
        }
    }
}

/// <summary>
/// <c>dgon-agent status</c>: reads the status file and prints state, current work (task ids, models, elapsed),
/// totals and the link's health. Exit code 0 when the agent is running; 3 when it is not (no file, a file older than
/// <see cref="StaleAfter"/>, or the last write of a stopped agent) or the file is unreadable.
/// </summary>
public static class StatusCommand
{
    /// <summary>Exit code when the agent is not running.</summary>
    public const int NotRunningExitCode = 3;

    /// <summary>A status file older than this: the agent is not running (it rewrites it every second).</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(5);

    /// <summary>Prints the status of node <paramref name="nodeId"/> from <paramref name="configDir"/>.</summary>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string configDir, string nodeId, TextWriter output, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(output);
        var path = StatusFileWriter.PathFor(configDir, nodeId);
        StatusFile? status;
        try
        {
            status = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(path), StatusJsonContext.Default.StatusFile);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            await output.WriteLineAsync($"node {nodeId}: not running (no status file {path})");
            return NotRunningExitCode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            await output.WriteLineAsync($"node {nodeId}: status unknown: cannot read {path}: {LogText.Clean(e.Message, 300)}");
            return NotRunningExitCode;
        }

        if (status is null)
        {
            await output.WriteLineAsync($"node {nodeId}: status unknown: {path} is empty");
            return NotRunningExitCode;
        }

        await output.WriteAsync(Format(status, now));
        return status.Running && now - status.UpdatedAt <= StaleAfter ? 0 : NotRunningExitCode;
    }

    /// <summary>The text <c>status</c> prints for a status file read at <paramref name="now"/>.</summary>
    public static string Format(StatusFile status, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(status);
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        var age = now - status.UpdatedAt;
        if (!status.Running)
        {
            text.AppendLine(c, $"node {status.NodeId}: not running (stopped at {status.UpdatedAt:O}; last state {status.State})");
            return text.ToString();
        }

        if (age > StaleAfter)
        {
            text.AppendLine(c, $"node {status.NodeId}: not running (status file last updated {age.TotalSeconds:0} s ago by pid {status.Pid}; last state {status.State})");
            return text.ToString();
        }

        text.AppendLine(c, $"node {status.NodeId}: {status.State} (pid {status.Pid}, up {Elapsed(now - status.StartedAt)}, max parallel {status.MaxParallel})");
        if (status.Work.Count == 0)
        {
            text.AppendLine("work: none");
        }
        else
        {
            text.AppendLine(c, $"work: {status.Work.Count} task(s)");
            foreach (var w in status.Work)
            {
                text.AppendLine(c, $"  {w.TaskId}  {w.Model}  {Elapsed(now - w.StartedAt)}");
            }
        }

        var t = status.Totals;
        text.AppendLine(c, $"totals: {t.TasksDone} done, {t.TasksFailed} failed, tokens {t.TokensInput} in / {t.TokensOutput} out");
        var l = status.Link;
        if (!l.Enabled)
        {
            text.AppendLine("link: disabled (--no-link)");
        }
        else if (l.Connected)
        {
            text.AppendLine(c, $"link: connected since {l.ConnectedSince:O} ({Elapsed(now - (l.ConnectedSince ?? now))}){(l.Replica is null ? "" : ", replica " + LogText.Clean(l.Replica, 100))}");
        }
        else
        {
            text.AppendLine("link: not connected");
        }

        if (l.LastError is not null)
        {
            text.AppendLine(c, $"link last error: {LogText.Clean(l.LastError, 500)} at {l.LastErrorAt:O}");
        }

        return text.ToString();
    }

    private static string Elapsed(TimeSpan span) =>
        span < TimeSpan.Zero ? "0 s"
        : span.TotalSeconds < 60 ? $"{span.TotalSeconds:0.0} s"
        : span.TotalHours < 1 ? $"{(int)span.TotalMinutes} min {span.Seconds} s"
        : $"{(int)span.TotalHours} h {span.Minutes} min";
}
