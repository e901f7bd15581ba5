using System.Security.Cryptography;
using System.Text;
using Dgon.Api.Configuration;

namespace Dgon.Api.Auth;

/// <summary>
/// The admin credential (issue 9): a bearer token from <c>DGON_ADMIN_TOKEN</c>, or, when unset, one generated at first
/// start (32 random bytes, base64url) and kept in <c>{DGON_DATA_DIR}/admin-token</c> with mode 0600, like Argo CD's
/// initial admin secret. Compared in constant time. The next issue adds users and API keys behind the same
/// authentication handler (<see cref="BearerAuthenticationHandler"/>).
/// </summary>
public sealed partial class AdminCredential
{
    private readonly byte[] _digest;

    /// <summary>Resolves the token: the configured one, else the file in the data directory, else a new one written there.</summary>
    /// <exception cref="IOException">The data directory or file cannot be read or written.</exception>
    /// <exception cref="InvalidOperationException">The token file exists but is readable by others, or is too short.</exception>
    public AdminCredential(NodeTrustOptions options, ILogger<AdminCredential> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        string token;
        if (options.AdminToken is { } configured)
        {
            token = configured;
            Source = "DGON_ADMIN_TOKEN";
        }
        else
        {
            var path = Path.Combine(options.DataDirectory, "admin-token");
            Source = path;
            token = File.Exists(path) ? ReadFile(path) : Generate(path, logger);
        }

        _digest = SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    /// <summary>Where the token came from: <c>DGON_ADMIN_TOKEN</c> or the file's path (never the token).</summary>
    public string Source { get; }

    /// <summary>Whether <paramref name="presented"/> is the admin token (constant time over SHA-256 digests, so length leaks nothing).</summary>
    public bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _digest);

    private static string ReadFile(string path)
    {
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new InvalidOperationException($"{path} is readable or writable by other users; run `chmod 600 {path}`");
        }

        var token = File.ReadAllText(path).Trim();
        return token.Length >= 32 ? token : throw new InvalidOperationException($"{path} holds no admin token of at least 32 characters");
    }

    private static string Generate(string path, ILogger logger)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var stream = new FileStream(path, options);
            stream.Write(Encoding.UTF8.GetBytes(token + "\n"));
            stream.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another replica sharing the directory created it first: use theirs.
            return ReadFile(path);
        }

        LogGenerated(logger, path);
        return token;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "DGON_ADMIN_TOKEN is not set: generated an admin token in {Path} (mode 0600); read it with `cat {Path}`")]
    private static partial void LogGenerated(ILogger logger, string path);
}
