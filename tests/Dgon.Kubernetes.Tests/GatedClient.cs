using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;

namespace Dgon.Kubernetes.Tests;

/// <summary>
/// Wraps a client: new watches can be held at a gate (to open a gap in which the informer sees nothing), and the
/// whole client can be "killed" (every call hangs until cancelled, like a partitioned or frozen process).
/// </summary>
public sealed class GatedClient(IKubeClient inner) : IKubeClient
{
    private volatile TaskCompletionSource _gate = Open();
    private volatile bool _dead;

    public int WatchesStarted;

    public void HoldWatches() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ReleaseWatches() => _gate.TrySetResult();

    public void Kill() => _dead = true;

    private static TaskCompletionSource Open()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }

    private async Task Check(CancellationToken ct)
    {
        if (_dead)
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
    }

    public async Task<T> GetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.GetAsync(type, ns, name, ct);
    }

    public async Task<T?> TryGetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.TryGetAsync(type, ns, name, ct);
    }

    public async Task<KubeList<T>> ListAsync<T>(ResourceType<T> type, string? ns, ListOptions? options, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.ListAsync(type, ns, options, ct);
    }

    public async Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.CreateAsync(type, obj, ct);
    }

    public async Task<T> ReplaceAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.ReplaceAsync(type, obj, ct);
    }

    public async Task<T> ReplaceStatusAsync<T>(ResourceType<T> type, T obj, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.ReplaceStatusAsync(type, obj, ct);
    }

    public async Task<T> PatchAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode mergePatch, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.PatchAsync(type, ns, name, mergePatch, ct);
    }

    public async Task<T> PatchStatusAsync<T>(ResourceType<T> type, string? ns, string name, JsonNode mergePatch, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        return await inner.PatchStatusAsync(type, ns, name, mergePatch, ct);
    }

    public async Task DeleteAsync<T>(ResourceType<T> type, string? ns, string name, DeleteOptions? options, CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        await inner.DeleteAsync(type, ns, name, options, ct);
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceType<T> type, string? ns, WatchOptions options, [EnumeratorCancellation] CancellationToken ct) where T : KubeObject
    {
        await Check(ct);
        await _gate.Task.WaitAsync(ct);
        Interlocked.Increment(ref WatchesStarted);
        await foreach (var e in inner.WatchAsync(type, ns, options, ct))
        {
            yield return e;
        }
    }
}
