using System.Reflection;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;

namespace Dgon.Agent.Manifest;

/// <summary>
/// Builds the capability manifest (issue 13, seed 002 §2.3.2): the hardware detected once (cached: it does not change
/// while the agent runs), the runtime's models listed each time, <c>max_parallel</c> from <c>--max-parallel</c>, the
/// agent's version and <c>issued_at</c> = now (unix seconds, strictly increasing so a later manifest always replaces an
/// earlier one). Signing is the caller's (<see cref="Domain.Receipts.ManifestSignatures.Sign"/>).
/// </summary>
public sealed class ManifestBuilder
{
    private readonly HardwareDetector _hardware;
    private readonly RuntimeModels _models;
    private readonly string _nodeId;
    private readonly NodeRuntime _runtime;
    private readonly int _maxParallel;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private HardwareManifest? _detected;
    private long _lastIssued;

    /// <summary>Creates the builder.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxParallel"/> is below 1.</exception>
    public ManifestBuilder(HardwareDetector hardware, RuntimeModels models, string nodeId, NodeRuntime runtime, int maxParallel, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(hardware);
        ArgumentNullException.ThrowIfNull(models);
        ArgumentException.ThrowIfNullOrEmpty(nodeId);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxParallel, 1);
        ArgumentNullException.ThrowIfNull(time);
        (_hardware, _models, _nodeId, _runtime, _maxParallel, _time) = (hardware, models, nodeId, runtime, maxParallel, time);
    }

    /// <summary>The agent's version: the informational version of the agent assembly without build metadata, e.g. <c>1.0.0</c>.</summary>
    public static string ClientVersion { get; } =
        (typeof(ManifestBuilder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(ManifestBuilder).Assembly.GetName().Version?.ToString(3) ?? "0.0.0").Split('+')[0];

    /// <summary>Builds a manifest now; a runtime that does not answer lists no model.</summary>
    /// <exception cref="OperationCanceledException">Cancelled by the caller.</exception>
    public async Task<CapabilityManifest> BuildAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            _detected ??= await _hardware.DetectAsync(cancellationToken);
            var models = await _models.ListAsync(cancellationToken) ?? [];
            var issued = Math.Max(_time.GetUtcNow().ToUnixTimeSeconds(), _lastIssued + 1);
            _lastIssued = issued;
            return new CapabilityManifest
            {
                NodeId = _nodeId,
                ClientVersion = ClientVersion,
                IssuedAt = issued,
                MaxParallel = _maxParallel,
                Hardware = _detected,
                Runtime = new RuntimeManifest { Kind = _runtime.ToWire(), Models = models },
            };
        }
        finally
        {
            _gate.Release();
        }
    }
}
