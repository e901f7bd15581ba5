using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Dgon.Domain.Accounts;

/// <summary>
/// Roles of people (issue 12): <c>admin</c> (everything), <c>operator</c> (owns nodes: sees and manages only theirs),
/// <c>viewer</c> (read-only fleet view, no wallets).
/// </summary>
public static class Roles
{
    /// <summary>Everything.</summary>
    public const string Admin = "admin";

    /// <summary>Owns nodes through the join tokens they create.</summary>
    public const string Operator = "operator";

    /// <summary>Read-only fleet view.</summary>
    public const string Viewer = "viewer";

    /// <summary>Every role, most powerful first.</summary>
    public static IReadOnlyList<string> All { get; } = [Admin, Operator, Viewer];

    /// <summary>Whether <paramref name="role"/> is one of <see cref="All"/> (exact, lowercase).</summary>
    public static bool IsValid([NotNullWhen(true)] string? role) => role is Admin or Operator or Viewer;
}

/// <summary>
/// Scopes of credentials (issue 12): what a session or API key may do. A session has every scope of its user's role;
/// an API key has the scopes it was created with, intersected with its owner's current role (<see cref="Effective"/>),
/// so a key never has more than its owner's role.
/// </summary>
public static class Scopes
{
    /// <summary><c>GET /v1/nodes</c>, <c>GET /v1/summary</c>.</summary>
    public const string NodesRead = "nodes:read";

    /// <summary>Receipt reads.</summary>
    public const string ReceiptsRead = "receipts:read";

    /// <summary>The inference gateway (issue 13).</summary>
    public const string Inference = "inference";

    /// <summary>Everything under <c>/v1/admin</c>.</summary>
    public const string Admin = "admin";

    /// <summary>Every scope.</summary>
    public static IReadOnlyList<string> All { get; } = [NodesRead, ReceiptsRead, Inference, Admin];

    /// <summary>Whether <paramref name="scope"/> is one of <see cref="All"/>.</summary>
    public static bool IsValid([NotNullWhen(true)] string? scope) => scope is NodesRead or ReceiptsRead or Inference or Admin;

    /// <summary>The scopes a role grants: admin all; operator <c>nodes:read receipts:read inference</c>; viewer <c>nodes:read receipts:read</c>; anything else none.</summary>
    public static IReadOnlyList<string> OfRole(string? role) => role switch
    {
        Roles.Admin => All,
        Roles.Operator => [NodesRead, ReceiptsRead, Inference],
        Roles.Viewer => [NodesRead, ReceiptsRead],
        _ => [],
    };

    /// <summary>The scopes a credential has now: <paramref name="granted"/> ∩ the scopes of <paramref name="ownerRole"/>, in <see cref="All"/>'s order.</summary>
    public static IReadOnlyList<string> Effective(IEnumerable<string> granted, string? ownerRole)
    {
        ArgumentNullException.ThrowIfNull(granted);
        var allowed = OfRole(ownerRole);
        var set = granted.ToHashSet(StringComparer.Ordinal);
        return [.. allowed.Where(set.Contains)];
    }
}

/// <summary>
/// Bearer credentials of people and programs (issue 12). Session tokens <c>dgs_</c> + 43 base64url characters (32
/// random bytes); API keys <c>dgk_&lt;12 hex id&gt;_&lt;43 base64url&gt;</c>, whose public prefix <c>dgk_&lt;id&gt;</c>
/// names the key in logs and lists (like GitHub's and Stripe's prefixed tokens). Both are stored as SHA-256 only:
/// 256 random bits need no slow hash.
/// </summary>
public static class Credentials
{
    /// <summary>Prefix of session tokens.</summary>
    public const string SessionPrefix = "dgs_";

    /// <summary>Prefix of API keys.</summary>
    public const string ApiKeyPrefix = "dgk_";

    /// <summary>A new session token.</summary>
    public static string NewSessionToken() => SessionPrefix + RandomBase64Url();

    /// <summary>A new API key: its id (12 hex) and the whole key.</summary>
    public static (string Id, string Key) NewApiKey()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        return (id, ApiKeyPrefix + id + "_" + RandomBase64Url());
    }

    /// <summary>A new public session id (16 hex).</summary>
    public static string NewSessionId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>Splits an API key into its id and secret; false unless it is <c>dgk_</c> + 12 lowercase hex + <c>_</c> + 43 base64url characters.</summary>
    public static bool TryParseApiKey(string? text, [NotNullWhen(true)] out string? id, [NotNullWhen(true)] out string? secret)
    {
        id = secret = null;
        if (text is not { Length: 4 + 12 + 1 + 43 } || !text.StartsWith(ApiKeyPrefix, StringComparison.Ordinal) || text[16] != '_')
        {
            return false;
        }

        var idPart = text.Substring(4, 12);
        var secretPart = text[17..];
        if (!idPart.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f') || !secretPart.All(IsBase64Url))
        {
            return false;
        }

        (id, secret) = (idPart, secretPart);
        return true;
    }

    /// <summary>Whether <paramref name="text"/> has the shape of a session token.</summary>
    public static bool IsSessionToken([NotNullWhen(true)] string? text) =>
        text is { Length: 4 + 43 } && text.StartsWith(SessionPrefix, StringComparison.Ordinal) && text.AsSpan(4).ToString().All(IsBase64Url);

    /// <summary>Lowercase hex SHA-256 of a token or secret (UTF-8).</summary>
    public static string Hash(string secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
    }

    /// <summary>Constant-time comparison of <paramref name="secret"/>'s hash with a stored hash.</summary>
    public static bool Matches(string secret, string storedSha256)
    {
        ArgumentNullException.ThrowIfNull(storedSha256);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(secret)), Encoding.ASCII.GetBytes(storedSha256));
    }

    private static bool IsBase64Url(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    private static string RandomBase64Url() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
