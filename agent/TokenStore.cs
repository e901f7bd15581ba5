using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Agent;

/// <summary>
/// The token file: <c>{"api", "node_id", "node_token", "registered_at", "issued_at"}</c>. The token is the node's HMAC
/// secret (seed 000: returned once by register; issue 9: replaced by <c>rotate-token</c>), so the file is readable by its
/// owner only (0600). <see cref="ToString"/> leaves the token out, so the record can never leak it into a log.
/// </summary>
/// <param name="Api">API base URL the token was issued by, without a trailing '/'.</param>
/// <param name="NodeId">Node id the token belongs to.</param>
/// <param name="NodeToken">The node token (64 hex characters).</param>
/// <param name="RegisteredAt">When the agent registered (UTC).</param>
/// <param name="IssuedAt">
/// When this token was issued (UTC): the registration or the last rotation; the token's age for <c>--token-max-age</c>
/// counts from here. Null in files written before issue 9, which then count from <paramref name="RegisteredAt"/>.
/// </param>
public sealed record StoredToken(
    [property: JsonPropertyName("api")] string Api,
    [property: JsonPropertyName("node_id")] string NodeId,
    [property: JsonPropertyName("node_token")] string NodeToken,
    [property: JsonPropertyName("registered_at")] DateTimeOffset RegisteredAt,
    [property: JsonPropertyName("issued_at")] DateTimeOffset? IssuedAt = null)
{
    /// <summary>When the token was issued: <see cref="IssuedAt"/>, else <see cref="RegisteredAt"/>.</summary>
    [JsonIgnore]
    public DateTimeOffset TokenIssuedAt => IssuedAt ?? RegisteredAt;

    /// <summary>Api, node id and times; never the token.</summary>
    public override string ToString() => $"StoredToken {{ Api = {Api}, NodeId = {NodeId}, RegisteredAt = {RegisteredAt:O}, IssuedAt = {IssuedAt:O} }}";
}

/// <summary>Outcome of <see cref="TokenStore.Load"/>.</summary>
/// <param name="Token">The stored token when it can be reused, else null.</param>
/// <param name="Reason">Why a present file was not reused (null when reused or when no file exists).</param>
public sealed record TokenLoadResult(StoredToken? Token, string? Reason);

/// <summary>
/// Keeps node tokens in <c>{configDir}/{nodeId}.json</c>: directory mode 0700, file mode 0600, written atomically
/// (temporary file created 0600, then renamed over the old one). Unix modes are applied only off Windows. The node's
/// key lives beside it (<see cref="NodeKeyStore"/>).
/// </summary>
public sealed class TokenStore
{
    /// <summary>Mode of the config directory: owner read/write/execute (0700).</summary>
    public const UnixFileMode DirectoryMode = PrivateFiles.DirectoryMode;

    /// <summary>Mode of a token file: owner read/write (0600).</summary>
    public const UnixFileMode FileMode = PrivateFiles.FileMode;

    /// <summary>Creates a store over <paramref name="configDir"/> (created on first save).</summary>
    public TokenStore(string configDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(configDir);
        ConfigDir = Path.GetFullPath(configDir);
    }

    /// <summary>The config directory (absolute).</summary>
    public string ConfigDir { get; }

    /// <summary>The token file of a node: <c>{ConfigDir}/{nodeId}.json</c> (node ids are RFC 1123 labels, safe as file names).</summary>
    public string PathFor(string nodeId) => Path.Combine(ConfigDir, nodeId + ".json");

    /// <summary>The canonical form of an API URL used for the match: absolute URI without trailing '/'.</summary>
    public static string NormaliseApi(Uri api)
    {
        ArgumentNullException.ThrowIfNull(api);
        return api.AbsoluteUri.TrimEnd('/');
    }

    /// <summary>
    /// Reads the node's token if it can be reused: the file exists, parses, and its api and node_id match.
    /// </summary>
    /// <returns>The token, or null with the reason (no reason when the file does not exist).</returns>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file exists but is not readable by this user.</exception>
    public TokenLoadResult Load(Uri api, string nodeId)
    {
        var path = PathFor(nodeId);
        if (!File.Exists(path))
        {
            return new TokenLoadResult(null, null);
        }

        StoredToken? stored;
        try
        {
            stored = JsonSerializer.Deserialize(File.ReadAllBytes(path), AgentJsonContext.Default.StoredToken);
        }
        catch (JsonException e)
        {
            return new TokenLoadResult(null, $"{path} is not a valid token file ({e.Message})");
        }

        if (stored is null || string.IsNullOrEmpty(stored.NodeToken) || string.IsNullOrEmpty(stored.Api))
        {
            return new TokenLoadResult(null, $"{path} has no token");
        }

        if (!string.Equals(stored.NodeId, nodeId, StringComparison.Ordinal))
        {
            return new TokenLoadResult(null, $"{path} belongs to node '{stored.NodeId}', not '{nodeId}'");
        }

        if (!string.Equals(stored.Api.TrimEnd('/'), NormaliseApi(api), StringComparison.Ordinal))
        {
            return new TokenLoadResult(null, $"{path} was issued by {stored.Api}, not {NormaliseApi(api)}");
        }

        return new TokenLoadResult(stored, null);
    }

    /// <summary>
    /// Writes the token file atomically: creates the directory (0700) if needed, writes a temporary file created with
    /// mode 0600 in the same directory, flushes it to disk, and renames it over <c>{nodeId}.json</c>.
    /// </summary>
    /// <returns>The file's path.</returns>
    /// <exception cref="IOException">The directory or file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">Permission denied.</exception>
    public string Save(StoredToken token)
    {
        ArgumentNullException.ThrowIfNull(token);
        PrivateFiles.EnsureDirectory(ConfigDir);
        var path = PathFor(token.NodeId);
        PrivateFiles.WriteAtomic(path, stream => JsonSerializer.Serialize(stream, token, AgentJsonContext.Default.StoredToken), overwrite: true);
        return path;
    }
}
