using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dgon.Domain.Contracts;
using Dgon.Persistence;

namespace Dgon.Api.Inference;

/// <summary>A node linked at another replica, as <c>node_links</c> and <c>node_manifests</c> say.</summary>
/// <param name="NodeId">Node id.</param>
/// <param name="Address">Base URL of the replica holding its link.</param>
/// <param name="Manifest">Its stored manifest, or null.</param>
public sealed record RemoteNode(string NodeId, string Address, CapabilityManifest? Manifest);

/// <summary>
/// The nodes linked at other replicas (issue 13: forwarding), read from PostgreSQL at most once a second and cached.
/// A failed read leaves the last snapshot in place (forwarding is best effort; local links never depend on it).
/// </summary>
public sealed partial class RemoteLinks(PostgresInferenceLinks store, Fleet.ReplicaIdentity replica, TimeProvider clock, ILogger<RemoteLinks> logger)
{
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private IReadOnlyList<RemoteNode> _nodes = [];
    private DateTimeOffset _readAt = DateTimeOffset.MinValue;

    /// <summary>The current snapshot, refreshed when older than 1 s.</summary>
    public async Task<IReadOnlyList<RemoteNode>> GetAsync(CancellationToken cancellationToken)
    {
        if (clock.GetUtcNow() - _readAt < MaxAge)
        {
            return _nodes;
        }

        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (clock.GetUtcNow() - _readAt >= MaxAge)
            {
                try
                {
                    var rows = await store.OtherReplicasLinksAsync(replica.Id, cancellationToken);
                    _nodes = [.. rows.Select(r => new RemoteNode(r.NodeId, r.Address, Parse(r.ManifestJson)))];
                }
                catch (Npgsql.NpgsqlException e)
                {
                    LogReadFailed(e.Message);
                }

                _readAt = clock.GetUtcNow();
            }

            return _nodes;
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>Forgets the snapshot (the next read goes to PostgreSQL).</summary>
    public void Invalidate() => _readAt = DateTimeOffset.MinValue;

    private static CapabilityManifest? Parse(string? json)
    {
        if (json is null)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(json, LinkJsonContext.Default.CapabilityManifest);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the other replicas' links: {Error}")]
    private partial void LogReadFailed(string error);
}

/// <summary>
/// Per-credential concurrency of the gateway (<c>DGON_GATEWAY_KEY_CONCURRENCY</c>, on this replica): a counter per key
/// id (or actor), removed when it drops to zero.
/// </summary>
public sealed class KeyConcurrency(InferenceOptions options)
{
    private readonly ConcurrentDictionary<string, StrongBox> _counts = new(StringComparer.Ordinal);

    private sealed class StrongBox
    {
        public int Value;
    }

    /// <summary>Takes a slot for <paramref name="key"/>; null when the credential is at its limit. Dispose to give it back.</summary>
    public IDisposable? TryEnter(string key)
    {
        while (true)
        {
            var box = _counts.GetOrAdd(key, _ => new StrongBox());
            lock (box)
            {
                if (!_counts.TryGetValue(key, out var current) || !ReferenceEquals(current, box))
                {
                    continue; // removed meanwhile
                }

                if (box.Value >= options.KeyConcurrency)
                {
                    return null;
                }

                box.Value++;
                return new Slot(this, key, box);
            }
        }
    }

    private void Exit(string key, StrongBox box)
    {
        lock (box)
        {
            if (--box.Value == 0)
            {
                _counts.TryRemove(new KeyValuePair<string, StrongBox>(key, box));
            }
        }
    }

    private sealed class Slot(KeyConcurrency owner, string key, StrongBox box) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Exit(key, box);
            }
        }
    }
}

/// <summary>
/// Replica-to-replica authentication (issue 13): a forwarded request carries <see cref="InferenceOptions.ReplicaAuthHeader"/>
/// with the shared secret — <c>DGON_REPLICA_SECRET</c>, or, when that is unset, the admin token
/// (<c>DGON_ADMIN_TOKEN</c>) as the shared secret. Compared in constant time over SHA-256 digests. Without either
/// setting there is no secret: nothing is forwarded and a request claiming to be forwarded is refused (401).
/// </summary>
public sealed class ReplicaSecret(InferenceOptions options)
{
    private readonly byte[]? _digest = options.ReplicaSecret is { } secret ? SHA256.HashData(Encoding.UTF8.GetBytes(secret)) : null;

    /// <summary>The secret to send, or null when forwarding is off.</summary>
    public string? Value => options.ReplicaSecret;

    /// <summary>Whether <paramref name="presented"/> is the shared secret.</summary>
    public bool Matches(string? presented) =>
        _digest is not null && presented is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _digest);
}
