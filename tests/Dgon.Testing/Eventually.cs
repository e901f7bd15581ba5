namespace Dgon.Testing;

/// <summary>Liveness waits: poll a condition until it holds or a generous deadline passes.</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> every 200 ms until it returns true.</summary>
    /// <exception cref="TimeoutException">It did not hold within <paramref name="timeout"/>; the message names <paramref name="what"/>.</exception>
    public static async Task Until(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or InvalidOperationException)
            {
                last = e;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for: {what}" + (last is null ? "" : $" (last error: {last.Message})"));
    }
}
