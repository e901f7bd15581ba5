using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Controllers;

/// <summary>
/// Options of a <see cref="LeaderElector"/> (client-go leaderelection). Defaults 10 s / 7 s / 2 s let a standby take
/// over within about LeaseDuration + RetryPeriod (~12 s) of a dead leader. Rules (as client-go):
/// LeaseDuration &gt; RenewDeadline &gt; RetryPeriod &gt; 0.
/// </summary>
public sealed class LeaderElectionOptions
{
    /// <summary>Namespace of the Lease.</summary>
    public required string Namespace { get; set; }

    /// <summary>Name of the Lease, e.g. <c>dgon-operator</c>.</summary>
    public required string LeaseName { get; set; }

    /// <summary>This candidate's identity, unique per process (e.g. pod name + random suffix).</summary>
    public required string Identity { get; set; }

    /// <summary>How long candidates wait after last observing a change of the lease before taking it over (written to leaseDurationSeconds, whole seconds, at least 1).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the leader keeps trying to renew before it gives up leadership.</summary>
    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(7);

    /// <summary>Interval between acquire/renew attempts (jittered up to +10 %).</summary>
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Release the lease on graceful shutdown so a standby takes over at once (default true).</summary>
    public bool ReleaseOnCancel { get; set; } = true;
}

/// <summary>
/// Leader election: run a callback only while this process is the single leader. A small stand-in for client-go's
/// leaderelection / KubeOps' leader election (which cannot be restored here); an adapter over the official client
/// could implement it.
/// </summary>
public interface ILeaderElector
{
    /// <summary>True while this candidate leads.</summary>
    bool IsLeader { get; }

    /// <summary>The holder identity last observed (null/empty when unheld or unknown).</summary>
    string? CurrentLeader { get; }

    /// <summary>Campaigns, then runs <paramref name="onStartedLeading"/> with a token cancelled when leadership ends; returns when leadership is lost or <paramref name="ct"/> is cancelled.</summary>
    Task RunAsync(Func<CancellationToken, Task> onStartedLeading, CancellationToken ct);
}

/// <summary>
/// <see cref="ILeaderElector"/> on a coordination.k8s.io/v1 Lease with client-go semantics (a small stand-in for client-go's
/// leaderelection / KubeOps' leader election, which cannot be restored here):
/// <list type="bullet">
/// <item>acquire: create the Lease if missing; otherwise take it when its holder is empty or when
/// <c>leaseDurationSeconds</c> has passed on the LOCAL clock since this elector last OBSERVED a change of the lease
/// record (no comparison of clocks across machines); a takeover sets acquireTime and increments leaseTransitions;</item>
/// <item>every update is a PUT with the lease's resourceVersion: a 409 Conflict means another candidate won;</item>
/// <item>renew every RetryPeriod; if no renewal succeeds within RenewDeadline (or another holder is observed) the
/// leader token is cancelled and leadership is lost;</item>
/// <item>on graceful shutdown (<c>ct</c> cancelled) the callback is awaited and then the lease is released
/// (holder cleared, leaseDurationSeconds 1, renewTime now) so a standby takes over at once.</item>
/// </list>
/// After leadership is lost, <see cref="RunAsync"/> returns and does not campaign again: the host should exit and be
/// restarted (as controller-runtime does), because state built while leading may be stale.
/// </summary>
public sealed partial class LeaderElector : ILeaderElector
{
    private readonly IKubeClient _client;
    private readonly LeaderElectionOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private string? _observedRv;
    private LeaseSpec? _observedRecord;
    private DateTimeOffset _observedTime;
    private volatile bool _isLeader;

    /// <summary>Creates an elector.</summary>
    /// <param name="client">The API client.</param>
    /// <param name="options">Lease coordinates, identity and timings.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="time">Clock and timers; default system.</param>
    /// <exception cref="ArgumentException">A name is empty or the timings break LeaseDuration &gt; RenewDeadline &gt; RetryPeriod &gt; 0.</exception>
    public LeaderElector(IKubeClient client, LeaderElectionOptions options, ILogger logger, TimeProvider? time = null)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _time = time ?? TimeProvider.System;
        ArgumentException.ThrowIfNullOrEmpty(options.Namespace);
        ArgumentException.ThrowIfNullOrEmpty(options.LeaseName);
        ArgumentException.ThrowIfNullOrEmpty(options.Identity);
        if (options.RetryPeriod <= TimeSpan.Zero || options.RenewDeadline <= options.RetryPeriod || options.LeaseDuration <= options.RenewDeadline)
        {
            throw new ArgumentException("leader election timings must satisfy LeaseDuration > RenewDeadline > RetryPeriod > 0", nameof(options));
        }
    }

    /// <summary>True while this elector holds the lease and its leader token is not cancelled.</summary>
    public bool IsLeader => _isLeader;

    /// <summary>The holder identity last observed on the lease (null/empty when unheld or not yet observed).</summary>
    public string? CurrentLeader
    {
        get
        {
            lock (_gate)
            {
                return _observedRecord?.HolderIdentity;
            }
        }
    }

    /// <summary>True once <see cref="RunAsync"/> returned because leadership was lost (not because of cancellation).</summary>
    public bool LostLeadership { get; private set; }

    private int LeaseSeconds => Math.Max(1, (int)Math.Ceiling(_options.LeaseDuration.TotalSeconds));

    /// <summary>
    /// Campaigns until this elector leads, then runs <paramref name="onStartedLeading"/> with a token that is cancelled
    /// when leadership is lost or <paramref name="ct"/> is cancelled, renewing meanwhile. Returns when
    /// <paramref name="ct"/> is cancelled (after awaiting the callback and releasing the lease), when leadership is lost
    /// (see <see cref="LostLeadership"/>; the host should exit), or when the callback completes by itself (the lease is
    /// released). API errors while campaigning are logged and retried.
    /// </summary>
    /// <exception cref="Exception">Whatever <paramref name="onStartedLeading"/> threw (other than cancellation), after the lease was released.</exception>
    public async Task RunAsync(Func<CancellationToken, Task> onStartedLeading, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(onStartedLeading);
        LostLeadership = false;
        if (!await AcquireAsync(ct))
        {
            return;
        }

        using var leaderCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _isLeader = true;
        LogStartedLeading(_options.Identity, _options.Namespace, _options.LeaseName);
        var callback = Task.Run(() => onStartedLeading(leaderCts.Token), CancellationToken.None);
        var lost = await RenewLoopAsync(callback, ct);
        _isLeader = false;
        await leaderCts.CancelAsync();
        Exception? failure = null;
        try
        {
            await callback;
        }
        catch (OperationCanceledException) when (leaderCts.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            failure = e;
            LogCallbackFailed(_options.Identity, e);
        }

        if (lost)
        {
            LostLeadership = true;
            LogLost(_options.Identity, _options.Namespace, _options.LeaseName);
        }
        else if (_options.ReleaseOnCancel)
        {
            await ReleaseAsync();
        }

        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private async Task<bool> AcquireAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var outcome = await TryAcquireOrRenewSafeAsync(ct);
            if (outcome == Outcome.Acquired)
            {
                return true;
            }

            // Wake at the next retry, or right after the observed lease would expire if that is sooner.
            var delay = Jitter(_options.RetryPeriod);
            lock (_gate)
            {
                if (_observedRecord is { HolderIdentity.Length: > 0 } record && record.HolderIdentity != _options.Identity)
                {
                    var expiry = _observedTime + TimeSpan.FromSeconds(record.LeaseDurationSeconds ?? LeaseSeconds) - _time.GetUtcNow();
                    delay = TimeSpan.FromTicks(Math.Clamp(expiry.Ticks + TimeSpan.TicksPerMillisecond * 20, TimeSpan.TicksPerMillisecond * 20, delay.Ticks));
                }
            }

            try
            {
                await Task.Delay(delay, _time, ct);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        return false;
    }

    /// <summary>Renews until ct is cancelled (returns false), the callback ends (false) or renewal fails (true = lost).</summary>
    private async Task<bool> RenewLoopAsync(Task callback, CancellationToken ct)
    {
        var lastRenew = _time.GetTimestamp();
        while (true)
        {
            var wait = Task.Delay(Jitter(_options.RetryPeriod), _time, ct);
            await Task.WhenAny(wait, callback);
            if (ct.IsCancellationRequested || callback.IsCompleted)
            {
                return false;
            }

            while (true)
            {
                var remaining = _options.RenewDeadline - _time.GetElapsedTime(lastRenew);
                if (remaining <= TimeSpan.Zero)
                {
                    LogRenewDeadline(_options.Identity, _options.RenewDeadline.TotalSeconds);
                    return true;
                }

                using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attemptCts.CancelAfter(remaining);
                var outcome = await TryAcquireOrRenewSafeAsync(attemptCts.Token);
                if (ct.IsCancellationRequested)
                {
                    return false;
                }

                if (outcome == Outcome.Acquired)
                {
                    lastRenew = _time.GetTimestamp();
                    break;
                }

                if (outcome == Outcome.HeldByOther)
                {
                    return true;
                }

                var pause = TimeSpan.FromTicks(Math.Min(_options.RetryPeriod.Ticks, Math.Max(0, (_options.RenewDeadline - _time.GetElapsedTime(lastRenew)).Ticks)));
                try
                {
                    await Task.Delay(pause, _time, ct);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }
        }
    }

    private async Task<Outcome> TryAcquireOrRenewSafeAsync(CancellationToken ct)
    {
        try
        {
            return await TryAcquireOrRenewAsync(ct);
        }
        catch (KubeConflictException)
        {
            return Outcome.Failed; // someone else updated the lease first
        }
        catch (KubeAlreadyExistsException)
        {
            return Outcome.Failed; // someone else created it first
        }
        catch (OperationCanceledException)
        {
            return Outcome.Failed;
        }
        catch (Exception e)
        {
            LogAttemptFailed(_options.Identity, _options.Namespace, _options.LeaseName, e);
            return Outcome.Failed;
        }
    }

    private async Task<Outcome> TryAcquireOrRenewAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var lease = await _client.TryGetAsync(KubeResources.Leases, _options.Namespace, _options.LeaseName, ct);
        if (lease is null)
        {
            var created = await _client.CreateAsync(KubeResources.Leases, new Lease
            {
                Metadata = new ObjectMeta { Name = _options.LeaseName, Namespace = _options.Namespace },
                Spec = new LeaseSpec
                {
                    HolderIdentity = _options.Identity,
                    LeaseDurationSeconds = LeaseSeconds,
                    AcquireTime = now,
                    RenewTime = now,
                    LeaseTransitions = 0,
                },
            }, ct);
            Observe(created, now);
            return Outcome.Acquired;
        }

        var record = lease.Spec ?? new LeaseSpec();
        lock (_gate)
        {
            if (_observedRv != lease.Metadata.ResourceVersion)
            {
                _observedRv = lease.Metadata.ResourceVersion;
                _observedRecord = record;
                _observedTime = now;
            }

            var holder = record.HolderIdentity;
            var validUntil = _observedTime + TimeSpan.FromSeconds(record.LeaseDurationSeconds ?? LeaseSeconds);
            if (!string.IsNullOrEmpty(holder) && holder != _options.Identity && validUntil > now)
            {
                return Outcome.HeldByOther;
            }
        }

        var renewing = record.HolderIdentity == _options.Identity;
        lease.Spec = new LeaseSpec
        {
            HolderIdentity = _options.Identity,
            LeaseDurationSeconds = LeaseSeconds,
            AcquireTime = renewing ? record.AcquireTime ?? now : now,
            RenewTime = now,
            LeaseTransitions = renewing ? record.LeaseTransitions ?? 0 : (record.LeaseTransitions ?? 0) + 1,
        };
        var updated = await _client.ReplaceAsync(KubeResources.Leases, lease, ct);
        Observe(updated, now);
        if (!renewing)
        {
            LogTookOver(_options.Identity, record.HolderIdentity ?? "", updated.Spec?.LeaseTransitions ?? 0);
        }

        return Outcome.Acquired;
    }

    private void Observe(Lease lease, DateTimeOffset now)
    {
        lock (_gate)
        {
            _observedRv = lease.Metadata.ResourceVersion;
            _observedRecord = lease.Spec;
            _observedTime = now;
        }
    }

    private async Task ReleaseAsync()
    {
        using var cts = new CancellationTokenSource(_options.RenewDeadline);
        try
        {
            var lease = await _client.TryGetAsync(KubeResources.Leases, _options.Namespace, _options.LeaseName, cts.Token);
            if (lease?.Spec is not { } spec || spec.HolderIdentity != _options.Identity)
            {
                return;
            }

            var now = _time.GetUtcNow();
            lease.Spec = new LeaseSpec
            {
                HolderIdentity = null,
                LeaseDurationSeconds = 1,
                AcquireTime = now,
                RenewTime = now,
                LeaseTransitions = spec.LeaseTransitions,
            };
            var released = await _client.ReplaceAsync(KubeResources.Leases, lease, cts.Token);
            Observe(released, now);
            LogReleased(_options.Identity, _options.Namespace, _options.LeaseName);
        }
        catch (Exception e)
        {
            LogReleaseFailed(_options.Identity, _options.Namespace, _options.LeaseName, e);
        }
    }

    private static TimeSpan Jitter(TimeSpan period) => period * (1 + (0.1 * Random.Shared.NextDouble()));

    private enum Outcome
    {
        Acquired,
        HeldByOther,
        Failed,
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "leader election: {Identity} became leader of lease {Namespace}/{Lease}")]
    private partial void LogStartedLeading(string identity, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Information, Message = "leader election: {Identity} took the lease over from '{Previous}' (transitions {Transitions})")]
    private partial void LogTookOver(string identity, string previous, int transitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leader election: {Identity} could not renew within the {Seconds} s renew deadline")]
    private partial void LogRenewDeadline(string identity, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "leader election: {Identity} lost leadership of lease {Namespace}/{Lease}; the process should exit")]
    private partial void LogLost(string identity, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Information, Message = "leader election: {Identity} released lease {Namespace}/{Lease}")]
    private partial void LogReleased(string identity, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leader election: {Identity} could not release lease {Namespace}/{Lease}")]
    private partial void LogReleaseFailed(string identity, string @namespace, string lease, Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leader election: {Identity} failed to acquire or renew lease {Namespace}/{Lease}")]
    private partial void LogAttemptFailed(string identity, string @namespace, string lease, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "leader election: {Identity}'s leading callback failed")]
    private partial void LogCallbackFailed(string identity, Exception error);
}
