using k8s;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Controllers;

/// <summary>Leader-election settings (client-go's <c>leaderelection.LeaderElectionConfig</c> names).</summary>
public sealed class LeaderElectionOptions
{
    /// <summary>Namespace of the Lease.</summary>
    public required string Namespace { get; set; }

    /// <summary>Name of the <c>coordination.k8s.io/v1</c> Lease.</summary>
    public required string LeaseName { get; set; }

    /// <summary>This candidate's identity, written to <c>spec.holderIdentity</c> (the pod name in a cluster).</summary>
    public required string Identity { get; set; }

    /// <summary>How long a non-leader waits after the last observed renewal before taking over (default 10 s).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the leader keeps retrying a renewal before it gives up leadership (default 7 s).</summary>
    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(7);

    /// <summary>Wait between attempts to acquire or renew (default 2 s).</summary>
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Release the Lease when <see cref="LeaderElection.RunAsync"/> is cancelled while leading (client-go's
    /// <c>ReleaseOnCancel</c>, default true), so a standby takes over at its next retry rather than after a whole
    /// <see cref="LeaseDuration"/>. KubernetesClient's elector has no such option; <see cref="LeaderElection"/> adds it.
    /// </summary>
    public bool ReleaseOnCancel { get; set; } = true;
}

/// <summary>
/// Leader election on a <c>coordination.k8s.io/v1</c> Lease with KubernetesClient's <see cref="LeaderElector"/> and
/// <see cref="LeaseLock"/>, plus two things that elector lacks and the operator needs:
/// <list type="bullet">
/// <item>retrying the acquisition when the API server is unreachable (the library's acquire loop lets transport
/// errors escape);</item>
/// <item>releasing the Lease on shutdown (<see cref="LeaderElectionOptions.ReleaseOnCancel"/>): the Lease is rewritten
/// as client-go's <c>release()</c> does, with an empty <c>holderIdentity</c> and <c>leaseDurationSeconds: 1</c>,
/// guarded by the resourceVersion just read so a Lease someone else holds is never touched.</item>
/// </list>
/// The library's timers run on the wall clock (it takes no <see cref="TimeProvider"/>).
/// </summary>
public sealed partial class LeaderElection
{
    private readonly IKubernetes _client;
    private readonly LeaderElectionOptions _options;
    private readonly ILogger _logger;
    private LeaderElector? _elector;
    private volatile bool _isLeader;

    /// <summary>Creates a candidate; nothing happens until <see cref="RunAsync"/>.</summary>
    /// <exception cref="ArgumentException">Empty namespace, lease name or identity, or timings not satisfying LeaseDuration &gt; RenewDeadline &gt; RetryPeriod &gt; 0.</exception>
    public LeaderElection(IKubernetes client, LeaderElectionOptions options, ILogger logger)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        ArgumentException.ThrowIfNullOrEmpty(options.Namespace);
        ArgumentException.ThrowIfNullOrEmpty(options.LeaseName);
        ArgumentException.ThrowIfNullOrEmpty(options.Identity);
        if (options.RetryPeriod <= TimeSpan.Zero || options.RenewDeadline <= options.RetryPeriod || options.LeaseDuration <= options.RenewDeadline)
        {
            throw new ArgumentException("leader election timings must satisfy LeaseDuration > RenewDeadline > RetryPeriod > 0", nameof(options));
        }
    }

    /// <summary>Whether this candidate currently holds the Lease.</summary>
    public bool IsLeader => _isLeader;

    /// <summary>The holder last observed in the Lease (this or another candidate), or null before the first read.</summary>
    public string? CurrentLeader => _elector?.GetLeader();

    /// <summary>True after <see cref="RunAsync"/> returned because a renewal failed for the whole renew deadline (not because it was cancelled).</summary>
    public bool LostLeadership { get; private set; }

    /// <summary>
    /// Campaigns until this candidate leads, then runs <paramref name="onStartedLeading"/> with a token cancelled when
    /// leadership ends. Returns when leadership is lost (<see cref="LostLeadership"/>) or <paramref name="ct"/> is
    /// cancelled (then the Lease is released if <see cref="LeaderElectionOptions.ReleaseOnCancel"/>), after the
    /// callback has returned. A callback failure is rethrown after the Lease is dealt with.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> onStartedLeading, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(onStartedLeading);
        LostLeadership = false;
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task? callback = null;
        using var elector = new LeaderElector(new LeaderElectionConfig(new LeaseLock(_client, _options.Namespace, _options.LeaseName, _options.Identity))
        {
            LeaseDuration = _options.LeaseDuration,
            RenewDeadline = _options.RenewDeadline,
            RetryPeriod = _options.RetryPeriod,
        });
        _elector = elector;
        elector.OnNewLeader += leader => LogNewLeader(_options.Identity, leader ?? "", _options.Namespace, _options.LeaseName);
        elector.OnError += e => LogAttemptFailed(_options.Identity, _options.Namespace, _options.LeaseName, e);
        elector.OnStartedLeading += () =>
        {
            _isLeader = true;
            LogStartedLeading(_options.Identity, _options.Namespace, _options.LeaseName);
            callback = Task.Run(() => onStartedLeading(leading.Token), CancellationToken.None);
        };
        elector.OnStoppedLeading += () =>
        {
            _isLeader = false;
            leading.Cancel();
        };

        var cancelled = false;
        while (true)
        {
            try
            {
                await elector.RunUntilLeadershipLostAsync(ct);
                // The library's renew loop swallows a cancellation that lands inside a renewal attempt and returns as
                // if leadership were lost: a return after cancellation is a cancellation.
                cancelled = ct.IsCancellationRequested;
                break;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }
            catch (Exception e) when (callback is null)
            {
                // The library's acquire loop lets transport errors (API server unreachable) escape: campaign again.
                LogAttemptFailed(_options.Identity, _options.Namespace, _options.LeaseName, e);
                try
                {
                    await Task.Delay(_options.RetryPeriod, ct);
                }
                catch (OperationCanceledException)
                {
                    cancelled = true;
                    break;
                }
            }
        }

        _isLeader = false;
        await leading.CancelAsync();
        Exception? failure = null;
        if (callback is not null)
        {
            try
            {
                await callback;
            }
            catch (OperationCanceledException) when (leading.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                failure = e;
                LogCallbackFailed(_options.Identity, e);
            }

            if (!cancelled)
            {
                LostLeadership = true;
                LogLost(_options.Identity, _options.Namespace, _options.LeaseName);
            }
            else if (_options.ReleaseOnCancel)
            {
                await ReleaseAsync();
            }
        }

        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    // client-go's release(): only our own Lease, only the version just read; bounded by the renew deadline.
    private async Task ReleaseAsync()
    {
        using var cts = new CancellationTokenSource(_options.RenewDeadline);
        try
        {
            var lease = await _client.CoordinationV1.ReadNamespacedLeaseAsync(_options.LeaseName, _options.Namespace, cancellationToken: cts.Token);
            if (lease.Spec?.HolderIdentity != _options.Identity)
            {
                return;
            }

            var now = DateTime.UtcNow;
            lease.Spec.HolderIdentity = "";
            lease.Spec.LeaseDurationSeconds = 1;
            lease.Spec.AcquireTime = now;
            lease.Spec.RenewTime = now;
            await _client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, _options.LeaseName, _options.Namespace, cancellationToken: cts.Token);
            LogReleased(_options.Identity, _options.Namespace, _options.LeaseName);
        }
        catch (Exception e)
        {
            LogReleaseFailed(_options.Identity, _options.Namespace, _options.LeaseName, e);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "leader election: {Identity} acquired Lease {Namespace}/{Lease}")]
    private partial void LogStartedLeading(string identity, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Information, Message = "leader election: {Identity} observes leader '{Leader}' of Lease {Namespace}/{Lease}")]
    private partial void LogNewLeader(string identity, string leader, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leader election: {Identity} could not acquire or renew Lease {Namespace}/{Lease}")]
    private partial void LogAttemptFailed(string identity, string @namespace, string lease, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "leader election: {Identity} lost Lease {Namespace}/{Lease}")]
    private partial void LogLost(string identity, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Information, Message = "leader election: {Identity} released Lease {Namespace}/{Lease}")]
    private partial void LogReleased(string identity, string @namespace, string lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leader election: {Identity} could not release Lease {Namespace}/{Lease}; a standby takes over when it expires")]
    private partial void LogReleaseFailed(string identity, string @namespace, string lease, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "leader election: {Identity}'s leading callback failed")]
    private partial void LogCallbackFailed(string identity, Exception error);
}
