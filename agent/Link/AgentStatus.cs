using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;

namespace Dgon.Agent.Link;

/// <summary>
/// The agent's local states (issue 13; seed 002 §2.3.8 "READY · EXECUTING · IDLE", plus DRAINING for a graceful stop):
/// <list type="bullet">
/// <item><c>IDLE</c>: no work and no dispatch can arrive (the link is down, not yet welcomed, or off with <c>--no-link</c>).</item>
/// <item><c>READY</c>: linked (the API answered <c>welcome</c>), awaiting dispatch.</item>
/// <item><c>EXECUTING</c>: at least one dispatched task is running.</item>
/// <item><c>DRAINING</c>: stopping (SIGTERM or Ctrl-C): new dispatches fail with <c>busy</c>, running ones finish.</item>
/// </list>
/// </summary>
public static class AgentStates
{
    /// <summary>Linked, awaiting dispatch.</summary>
    public const string Ready = "READY";

    /// <summary>Running dispatched work.</summary>
    public const string Executing = "EXECUTING";

    /// <summary>No work and not linked.</summary>
    public const string Idle = "IDLE";

    /// <summary>Stopping: no new work.</summary>
    public const string Draining = "DRAINING";
}

/// <summary>One running task as the status file shows it.</summary>
/// <param name="TaskId">Task id.</param>
/// <param name="Model">Model id.</param>
/// <param name="StartedAt">When the agent started it (UTC).</param>
public sealed record StatusTask(string TaskId, string Model, DateTimeOffset StartedAt);

/// <summary>Counters since the agent started.</summary>
/// <param name="TasksDone">Tasks answered with a signed result.</param>
/// <param name="TasksFailed">Tasks answered with a failure (busy, cancelled, runtime errors, timeouts) or lost with the link.</param>
/// <param name="TokensInput">Sum of the results' input tokens.</param>
/// <param name="TokensOutput">Sum of the results' output tokens.</param>
public sealed record StatusTotals(long TasksDone, long TasksFailed, long TokensInput, long TokensOutput);

/// <summary>The link's health.</summary>
/// <param name="Enabled">False with <c>--no-link</c>.</param>
/// <param name="Connected">Whether the link is up (welcomed) now.</param>
/// <param name="ConnectedSince">When the current link was welcomed, or null.</param>
/// <param name="Replica">The API replica holding it (from <c>welcome</c>), or null.</param>
/// <param name="LastError">The last reason the link failed or dropped, or null.</param>
/// <param name="LastErrorAt">When, or null.</param>
public sealed record StatusLink(bool Enabled, bool Connected, DateTimeOffset? ConnectedSince, string? Replica, string? LastError, DateTimeOffset? LastErrorAt);

/// <summary>
/// The status file <c>{config-dir}/{node-id}.status.json</c> (mode 0600) that the running agent rewrites every second
/// and on every change, and <c>dgon-agent status</c> prints.
/// </summary>
/// <param name="NodeId">Node id.</param>
/// <param name="Pid">The agent's process id.</param>
/// <param name="Running">False in the last write of an agent that stopped.</param>
/// <param name="State">One of <see cref="AgentStates"/>.</param>
/// <param name="StartedAt">When the agent started.</param>
/// <param name="UpdatedAt">When this file was written (a file older than 5 s means the agent is not running).</param>
/// <param name="MaxParallel">The concurrency limit.</param>
/// <param name="Work">Tasks running now.</param>
/// <param name="Totals">Counters.</param>
/// <param name="Link">The link's health.</param>
public sealed record StatusFile(
    string NodeId,
    int Pid,
    bool Running,
    string State,
    DateTimeOffset StartedAt,
    DateTimeOffset UpdatedAt,
    int MaxParallel,
    IReadOnlyList<StatusTask> Work,
    StatusTotals Totals,
    StatusLink Link);

/// <summary>Source-generated JSON of the status file (snake_case, indented).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(StatusFile))]
public sealed partial class StatusJsonContext : JsonSerializerContext;

/// <summary>
/// The agent's live state (thread-safe): running tasks, totals, link health and the derived state (see
/// <see cref="AgentStates"/>). Every state change is logged as event <c>state.transition</c> with <c>From</c> and
/// <c>To</c>, and raised through <see cref="StateChanged"/> (the link sends it as a <c>state</c> frame);
/// <see cref="Changed"/> fires on any change (the status file is rewritten).
/// </summary>
public sealed class AgentStatus
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, StatusTask> _work = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _nodeId;
    private readonly int _maxParallel;
    private readonly DateTimeOffset _started;
    private readonly bool _linkEnabled;
    private string _state = AgentStates.Idle;
    private bool _draining;
    private bool _connected;
    private DateTimeOffset? _connectedSince;
    private string? _replica;
    private string? _lastError;
    private DateTimeOffset? _lastErrorAt;
    private long _done, _failed, _tokensIn, _tokensOut;

    /// <summary>Creates the tracker (state IDLE).</summary>
    public AgentStatus(string nodeId, int maxParallel, bool linkEnabled, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        (_nodeId, _maxParallel, _linkEnabled, _time, _logger) = (nodeId, maxParallel, linkEnabled, time, logger);
        _started = time.GetUtcNow();
    }

    /// <summary>Raised after the state changed, with (from, to, in-flight); outside the lock.</summary>
    public event Action<string, string, int>? StateChanged;

    /// <summary>Raised after any change; outside the lock.</summary>
    public event Action? Changed;

    /// <summary>The current state.</summary>
    public string State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>Tasks running now.</summary>
    public int InFlight
    {
        get
        {
            lock (_gate)
            {
                return _work.Count;
            }
        }
    }

    /// <summary>The link was welcomed by <paramref name="replica"/>.</summary>
    public void LinkUp(string? replica) => Update(() => (_connected, _connectedSince, _replica) = (true, _time.GetUtcNow(), replica));

    /// <summary>The link failed or dropped (when <paramref name="error"/> is null: closed cleanly).</summary>
    public void LinkDown(string? error) => Update(() =>
    {
        (_connected, _connectedSince, _replica) = (false, null, null);
        if (error is not null)
        {
            (_lastError, _lastErrorAt) = (error, _time.GetUtcNow());
        }
    });

    /// <summary>A task started.</summary>
    public void TaskStarted(string taskId, string model) => Update(() => _work[taskId] = new StatusTask(taskId, model, _time.GetUtcNow()));

    /// <summary>A task ended: with a result (tokens counted) or a failure.</summary>
    public void TaskEnded(string taskId, bool succeeded, long tokensInput = 0, long tokensOutput = 0) => Update(() =>
    {
        _work.Remove(taskId);
        if (succeeded)
        {
            (_done, _tokensIn, _tokensOut) = (_done + 1, _tokensIn + tokensInput, _tokensOut + tokensOutput);
        }
        else
        {
            _failed++;
        }
    });

    /// <summary>A dispatch was refused without starting (busy, draining, malformed).</summary>
    public void TaskRefused() => Update(() => _failed++);

    /// <summary>The agent is stopping: state DRAINING from now on.</summary>
    public void BeginDraining() => Update(() => _draining = true);

    /// <summary>A consistent copy for the status file.</summary>
    /// <param name="running">False for the last write before exit.</param>
    public StatusFile Snapshot(bool running = true)
    {
        lock (_gate)
        {
            return new StatusFile(
                _nodeId,
                Environment.ProcessId,
                running,
                _state,
                _started,
                _time.GetUtcNow(),
                _maxParallel,
                [.. _work.Values.OrderBy(w => w.StartedAt)],
                new StatusTotals(_done, _failed, _tokensIn, _tokensOut),
                new StatusLink(_linkEnabled, _connected, _connectedSince, _replica, _lastError, _lastErrorAt));
        }
    }

    private void Update(Action change)
    {
        string from, to;
        int inFlight;
        lock (_gate)
        {
            change();
            from = _state;
            to = _draining ? AgentStates.Draining
                : _work.Count > 0 ? AgentStates.Executing
                : _connected ? AgentStates.Ready
                : AgentStates.Idle;
            _state = to;
            inFlight = _work.Count;
        }

        if (from != to)
        {
            LinkLog.StateTransition(_logger, from, to, inFlight);
            StateChanged?.Invoke(from, to, inFlight);
        }

        Changed?.Invoke();
    }
}
