using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Dgon.Domain.Auth;

/// <summary>
/// A join token as presented: <c>&lt;id&gt;.&lt;secret&gt;</c> in the shape of a Kubernetes bootstrap token
/// (<c>[a-z0-9]{6}.[a-z0-9]{16}</c>). The id is public (it names the token in lists and logs); the secret is stored
/// only as its SHA-256 (<see cref="JoinTokens.HashSecret"/>; 16 characters of a 36-symbol alphabet are about 82
/// random bits, enough that a plain hash cannot be brute-forced).
/// </summary>
/// <param name="Id">Six lowercase letters or digits.</param>
/// <param name="Secret">Sixteen lowercase letters or digits.</param>
public sealed record JoinTokenCredential(string Id, string Secret)
{
    /// <summary>The token as given to an agent: <c>id.secret</c>.</summary>
    public override string ToString() => Id + "." + Secret;
}

/// <summary>A stored join token (never the secret itself).</summary>
public sealed record JoinTokenRecord
{
    /// <summary>Public id (six characters).</summary>
    public required string Id { get; init; }

    /// <summary>Free-text description, at most 256 characters, or null.</summary>
    public string? Description { get; init; }

    /// <summary>When it stops working (UTC).</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>How many registrations it may enroll, or null for no limit.</summary>
    public int? MaxUses { get; init; }

    /// <summary>Registrations enrolled with it so far.</summary>
    public int Uses { get; init; }

    /// <summary>When an admin revoked it, or null.</summary>
    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary>Only nodes declaring this region may enroll with it, or null for any region.</summary>
    public string? Region { get; init; }

    /// <summary>When it was created (UTC).</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>The user who created it and owns the nodes it enrolls (issue 12), or null (admin token, or created with kubectl).</summary>
    public string? OwnerId { get; init; }
}

/// <summary>What an admin asks for when creating a join token.</summary>
/// <param name="Ttl">Lifetime from now; <see cref="JoinTokens.DefaultTtl"/> (24 h) unless given.</param>
/// <param name="MaxUses">Use limit, or null for none.</param>
/// <param name="Description">Description or null.</param>
/// <param name="Region">Region constraint or null.</param>
/// <param name="OwnerId">The creating user, who will own the nodes it enrolls (issue 12), or null.</param>
public sealed record JoinTokenSpec(TimeSpan Ttl, int? MaxUses, string? Description, string? Region, string? OwnerId = null);

/// <summary>Why a presented join token was accepted or refused.</summary>
public enum JoinTokenCheck
{
    /// <summary>Valid; one use was consumed.</summary>
    Ok,

    /// <summary>Not of the form <c>[a-z0-9]{6}.[a-z0-9]{16}</c>.</summary>
    Malformed,

    /// <summary>No token with this id, or the secret does not match (indistinguishable on purpose).</summary>
    Unknown,

    /// <summary>Past its expiry.</summary>
    Expired,

    /// <summary>Its max uses are spent.</summary>
    UsedUp,

    /// <summary>Revoked by an admin.</summary>
    Revoked,

    /// <summary>The token is bound to another region than the one declared.</summary>
    RegionNotAllowed,
}

/// <summary>Join token rules: format, generation, hashing and the check of a stored token (issue 9).</summary>
public static partial class JoinTokens
{
    /// <summary>Default lifetime of a join token: 24 hours (as <c>kubeadm token create</c>).</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromHours(24);

    /// <summary>Longest lifetime an admin may give: 365 days.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromDays(365);

    /// <summary>Longest description.</summary>
    public const int MaxDescriptionLength = 256;

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>Creates a fresh token from the OS CSPRNG.</summary>
    public static JoinTokenCredential New() => new(RandomString(6), RandomString(16));

    /// <summary>Parses <c>id.secret</c>.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out JoinTokenCredential? credential)
    {
        credential = null;
        if (text is null || text.Length != 23)
        {
            return false;
        }

        var match = Shape().Match(text);
        if (!match.Success)
        {
            return false;
        }

        credential = new JoinTokenCredential(match.Groups[1].Value, match.Groups[2].Value);
        return true;
    }

    /// <summary>Whether <paramref name="id"/> is a join token id (six lowercase letters or digits).</summary>
    public static bool IsValidId(string? id) => id is { Length: 6 } && IdShape().IsMatch(id);

    /// <summary>The stored form of a secret: lowercase hex SHA-256 of its UTF-8 bytes.</summary>
    public static string HashSecret(string secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
    }

    /// <summary>Constant-time comparison of a presented secret with a stored hash.</summary>
    public static bool SecretMatches(string secret, string storedHash)
    {
        ArgumentNullException.ThrowIfNull(storedHash);
        var presented = Encoding.ASCII.GetBytes(HashSecret(secret));
        var stored = Encoding.ASCII.GetBytes(storedHash.ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(presented, stored);
    }

    /// <summary>
    /// Checks a stored token (already matched by id and secret) for a registration in <paramref name="region"/> at
    /// <paramref name="now"/>: revoked, then expired, then used up, then the region constraint.
    /// </summary>
    public static JoinTokenCheck Check(JoinTokenRecord token, string region, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.RevokedAt is not null)
        {
            return JoinTokenCheck.Revoked;
        }

        if (now >= token.ExpiresAt)
        {
            return JoinTokenCheck.Expired;
        }

        if (token.MaxUses is { } max && token.Uses >= max)
        {
            return JoinTokenCheck.UsedUp;
        }

        return token.Region is { } bound && !string.Equals(bound, region, StringComparison.Ordinal)
            ? JoinTokenCheck.RegionNotAllowed
            : JoinTokenCheck.Ok;
    }

    private static string RandomString(int length) => RandomNumberGenerator.GetString(Alphabet, length);

    [GeneratedRegex("^([a-z0-9]{6})\\.([a-z0-9]{16})$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    [GeneratedRegex("^[a-z0-9]{6}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdShape();
}
