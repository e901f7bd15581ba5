namespace Dgon.Kubernetes;

/// <summary>
/// Supplies the bearer token for each request (a small stand-in for client-go's token sources / KubernetesClient's
/// <c>ITokenProvider</c>, which cannot be restored here). Called before every request, so implementations should
/// cache; null means "send no Authorization header".
/// </summary>
public interface IKubeTokenSource
{
    /// <summary>Returns the current token, or null for none.</summary>
    /// <exception cref="KubeConfigException">The token cannot be obtained at all (e.g. the token file vanished before it was ever read).</exception>
    ValueTask<string?> GetTokenAsync(CancellationToken ct);
}

/// <summary>A fixed token (kubeconfig <c>token</c>).</summary>
/// <param name="token">The token.</param>
public sealed class StaticTokenSource(string token) : IKubeTokenSource
{
    /// <inheritdoc />
    public ValueTask<string?> GetTokenAsync(CancellationToken ct) => ValueTask.FromResult<string?>(token);
}

/// <summary>Adapts a delegate to <see cref="IKubeTokenSource"/>.</summary>
/// <param name="source">Returns the token or null.</param>
public sealed class DelegateTokenSource(Func<CancellationToken, ValueTask<string?>> source) : IKubeTokenSource
{
    /// <inheritdoc />
    public ValueTask<string?> GetTokenAsync(CancellationToken ct) => source(ct);
}

/// <summary>
/// A token read from a file and re-read when the cached copy is older than <see cref="CachePeriod"/> (client-go's
/// cached file token source: 1 minute), so that rotated projected service-account tokens (kubelet rewrites the file
/// well before expiry) are picked up. If a re-read fails, the last good token is kept (as client-go does); the file
/// is read once eagerly at construction so a missing file fails fast.
/// </summary>
public sealed class FileTokenSource : IKubeTokenSource
{
    /// <summary>The default cache period, 1 minute (client-go).</summary>
    public static readonly TimeSpan DefaultCachePeriod = TimeSpan.FromMinutes(1);

    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private string _token;
    private DateTimeOffset _readAt;

    /// <summary>Reads the token file now and remembers its path.</summary>
    /// <param name="path">The token file.</param>
    /// <param name="cachePeriod">How long a read token is reused; default 1 minute.</param>
    /// <param name="time">Clock; default system.</param>
    /// <exception cref="KubeConfigException">The file cannot be read or is empty.</exception>
    public FileTokenSource(string path, TimeSpan? cachePeriod = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = path;
        CachePeriod = cachePeriod ?? DefaultCachePeriod;
        _time = time ?? TimeProvider.System;
        try
        {
            _token = ReadToken();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KubeConfigException($"cannot read the token file {path}: {e.Message}", e);
        }

        if (_token.Length == 0)
        {
            throw new KubeConfigException($"the token file {path} is empty");
        }

        _readAt = _time.GetUtcNow();
    }

    /// <summary>The token file.</summary>
    public string Path { get; }

    /// <summary>How long a read token is reused before the file is read again.</summary>
    public TimeSpan CachePeriod { get; }

    /// <inheritdoc />
    public ValueTask<string?> GetTokenAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (now - _readAt >= CachePeriod)
            {
                try
                {
                    var fresh = ReadToken();
                    if (fresh.Length > 0)
                    {
                        _token = fresh;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Keep the last good token (client-go behaviour); the file may be mid-rotation.
                }

                _readAt = now;
            }

            return ValueTask.FromResult<string?>(_token);
        }
    }

    private string ReadToken() => File.ReadAllText(Path).Trim();
}
