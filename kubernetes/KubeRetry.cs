namespace Dgon.Kubernetes;

/// <summary>
/// client-go's <c>retry.RetryOnConflict</c>: re-runs a whole read-modify-write when the write fails with 409 Conflict
/// (stale resourceVersion), with jittered exponential backoff. KubernetesClient has no equivalent.
/// </summary>
public static class KubeRetry
{
    /// <summary>First backoff delay (10 ms, as client-go's DefaultRetry).</summary>
    public static readonly TimeSpan InitialDelay = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Runs <paramref name="attempt"/> (which must re-read the object each time) up to <paramref name="maxAttempts"/>
    /// times while it throws a 409 Conflict (<see cref="ApiErrors.IsConflict"/>); waits 10 ms, 20 ms, 40 ms, … (each ±10 % jitter)
    /// between attempts. Other exceptions propagate at once.
    /// </summary>
    /// <exception cref="k8s.Autorest.HttpOperationException">The last 409 Conflict, when every attempt conflicted.</exception>
    /// <exception cref="ArgumentOutOfRangeException">maxAttempts &lt; 1.</exception>
    public static Task<T> OnConflictAsync<T>(Func<CancellationToken, Task<T>> attempt, CancellationToken ct, int maxAttempts = 5) =>
        OnConflictAsync(attempt, TimeProvider.System, ct, maxAttempts);

    /// <summary>As <see cref="OnConflictAsync{T}(Func{CancellationToken, Task{T}}, CancellationToken, int)"/> for an attempt without a result.</summary>
    /// <exception cref="k8s.Autorest.HttpOperationException">The last 409 Conflict, when every attempt conflicted.</exception>
    public static Task OnConflictAsync(Func<CancellationToken, Task> attempt, CancellationToken ct, int maxAttempts = 5)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        return OnConflictAsync<bool>(async c =>
        {
            await attempt(c);
            return true;
        }, TimeProvider.System, ct, maxAttempts);
    }

    /// <summary>As <see cref="OnConflictAsync{T}(Func{CancellationToken, Task{T}}, CancellationToken, int)"/>, waiting on <paramref name="time"/>'s timers.</summary>
    /// <exception cref="k8s.Autorest.HttpOperationException">The last 409 Conflict, when every attempt conflicted.</exception>
    public static async Task<T> OnConflictAsync<T>(Func<CancellationToken, Task<T>> attempt, TimeProvider time, CancellationToken ct, int maxAttempts = 5)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        var delay = InitialDelay;
        for (var i = 1; ; i++)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                return await attempt(ct);
            }
            catch (Exception e) when (e.IsConflict() && i < maxAttempts)
            {
                var jittered = delay * (0.9 + (0.2 * Random.Shared.NextDouble()));
                await Task.Delay(jittered, time, ct);
                delay *= 2;
            }
        }
    }
}
