using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dgon.Domain.Auth;
using Dgon.Kubernetes.DgonNodes;
using k8s.Models;

namespace Dgon.Kubernetes.Enrollment;

/// <summary>
/// The Kubernetes-mode join-token Secret (issue 9), shaped like a <c>bootstrap.kubernetes.io/token</c> Secret so that
/// <c>kubectl create secret generic</c> can make one:
/// <list type="bullet">
/// <item>name <c>dgon-join-token-&lt;id&gt;</c>, type <c>dgon.io/join-token</c>;</item>
/// <item>data <c>token-id</c> (required, equal to the id in the name); <c>token-secret</c> (the plain 16-character
/// secret, as kubectl makes it) or <c>token-secret-sha256</c> (lowercase hex SHA-256 of it, as the API writes it);
/// <c>expiration</c> (RFC 3339, required); <c>usage-limit</c> (decimal, optional); <c>description</c> and
/// <c>region</c> (optional);</item>
/// <item>annotations <c>dgon.io/uses</c> (decimal use count, written by the API with the resourceVersion as
/// precondition) and <c>dgon.io/revoked-at</c> (RFC 3339, written by the API on revoke).</item>
/// </list>
/// The operator deletes expired Secrets and those revoked more than an hour ago. Pure functions.
/// </summary>
public static class JoinTokenSecrets
{
    /// <summary>Secret type of join tokens.</summary>
    public const string SecretType = "dgon.io/join-token";

    /// <summary>Name prefix; the name is the prefix plus the six-character token id.</summary>
    public const string NamePrefix = "dgon-join-token-";

    /// <summary>Field selector that lists only join-token Secrets.</summary>
    public const string FieldSelector = "type=" + SecretType;

    /// <summary>Data key of the token id (required).</summary>
    public const string TokenIdKey = "token-id";

    /// <summary>Data key of the plain secret (what <c>kubectl create secret --from-literal</c> stores).</summary>
    public const string TokenSecretKey = "token-secret";

    /// <summary>Data key of the secret's lowercase hex SHA-256 (what the API stores).</summary>
    public const string TokenSecretSha256Key = "token-secret-sha256";

    /// <summary>Data key of the expiry, RFC 3339 (required).</summary>
    public const string ExpirationKey = "expiration";

    /// <summary>Data key of the use limit, a positive decimal integer (optional: no limit).</summary>
    public const string UsageLimitKey = "usage-limit";

    /// <summary>Data key of the description (optional, ≤ 256 characters).</summary>
    public const string DescriptionKey = "description";

    /// <summary>Data key of the region constraint (optional).</summary>
    public const string RegionKey = "region";

    /// <summary>Data key of the id of the user who created the token and owns the nodes it enrolls (issue 12); absent for tokens of the admin token or kubectl.</summary>
    public const string OwnerKey = "owner-id";

    /// <summary>Annotation counting the registrations the token enrolled (decimal; absent = 0). Written by the API.</summary>
    public const string UsesAnnotation = "dgon.io/uses";

    /// <summary>Annotation holding the revocation time (RFC 3339). Written by the API.</summary>
    public const string RevokedAtAnnotation = "dgon.io/revoked-at";

    /// <summary>How long a revoked token's Secret is kept before the operator deletes it (1 hour).</summary>
    public static readonly TimeSpan RevokedRetention = TimeSpan.FromHours(1);

    /// <summary>The Secret name of a token id: <c>dgon-join-token-&lt;id&gt;</c>.</summary>
    public static string SecretName(string id) => NamePrefix + id;

    /// <summary>
    /// A new Secret for a token the API created: the secret stored only as its SHA-256, the expiry at
    /// <paramref name="expiresAt"/> (whole seconds, rounded down).
    /// </summary>
    public static V1Secret NewSecret(string @namespace, JoinTokenCredential token, DateTimeOffset expiresAt, int? maxUses, string? description, string? region, string? ownerId = null)
    {
        ArgumentNullException.ThrowIfNull(token);
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [TokenIdKey] = Encoding.UTF8.GetBytes(token.Id),
            [TokenSecretSha256Key] = Encoding.UTF8.GetBytes(JoinTokens.HashSecret(token.Secret)),
            [ExpirationKey] = Encoding.UTF8.GetBytes(FormatTime(expiresAt)),
        };
        if (maxUses is { } max)
        {
            data[UsageLimitKey] = Encoding.UTF8.GetBytes(max.ToString(CultureInfo.InvariantCulture));
        }

        if (!string.IsNullOrEmpty(description))
        {
            data[DescriptionKey] = Encoding.UTF8.GetBytes(description);
        }

        if (!string.IsNullOrEmpty(region))
        {
            data[RegionKey] = Encoding.UTF8.GetBytes(region);
        }

        if (!string.IsNullOrEmpty(ownerId))
        {
            data[OwnerKey] = Encoding.UTF8.GetBytes(ownerId);
        }

        return new V1Secret
        {
            Metadata = new V1ObjectMeta
            {
                Name = SecretName(token.Id),
                NamespaceProperty = @namespace,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal) { [DgonNodeMapping.ManagedByLabel] = "dgon-api" },
            },
            Type = SecretType,
            Data = data,
        };
    }

    /// <summary>
    /// Reads a join-token Secret. Fails (with the reason in <paramref name="error"/>) when it is not of type
    /// <c>dgon.io/join-token</c>, its name and <c>token-id</c> disagree, it has neither secret key, or a value is
    /// malformed (expiration, usage-limit, the uses annotation). An unparseable <c>dgon.io/revoked-at</c> counts as
    /// revoked at the Secret's creation.
    /// </summary>
    public static bool TryRead(V1Secret secret, [NotNullWhen(true)] out JoinTokenRecord? record, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(secret);
        record = null;
        var name = secret.Metadata.Name ?? "";
        if (secret.Type != SecretType)
        {
            error = $"type is '{secret.Type}', not {SecretType}";
            return false;
        }

        var id = Text(secret, TokenIdKey);
        if (!JoinTokens.IsValidId(id) || name != SecretName(id!))
        {
            error = $"data.{TokenIdKey} must be six lowercase letters or digits and the name must be {NamePrefix}<{TokenIdKey}>";
            return false;
        }

        if (Text(secret, TokenSecretSha256Key) is null && Text(secret, TokenSecretKey) is null)
        {
            error = $"neither data.{TokenSecretKey} nor data.{TokenSecretSha256Key} is set";
            return false;
        }

        if (!TryParseTime(Text(secret, ExpirationKey), out var expires))
        {
            error = $"data.{ExpirationKey} must be an RFC 3339 time";
            return false;
        }

        int? maxUses = null;
        if (Text(secret, UsageLimitKey) is { } limitText)
        {
            if (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 1)
            {
                error = $"data.{UsageLimitKey} must be a positive integer";
                return false;
            }

            maxUses = limit;
        }

        var uses = 0;
        if (secret.Metadata.Annotations?.ValueOrDefault(UsesAnnotation) is { } usesText
            && (!int.TryParse(usesText, NumberStyles.None, CultureInfo.InvariantCulture, out uses) || uses < 0))
        {
            error = $"annotation {UsesAnnotation} must be a non-negative integer";
            return false;
        }

        var created = DgonNodeMapping.Utc(secret.Metadata.CreationTimestamp) ?? DateTimeOffset.UnixEpoch;
        DateTimeOffset? revoked = null;
        if (secret.Metadata.Annotations?.ValueOrDefault(RevokedAtAnnotation) is { } revokedText)
        {
            revoked = TryParseTime(revokedText, out var at) ? at : created;
        }

        record = new JoinTokenRecord
        {
            Id = id!,
            Description = Text(secret, DescriptionKey),
            ExpiresAt = expires,
            MaxUses = maxUses,
            Uses = uses,
            RevokedAt = revoked,
            Region = Text(secret, RegionKey),
            CreatedAt = created,
            OwnerId = Text(secret, OwnerKey),
        };
        error = null;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="presented"/> is the Secret's secret, in constant time: against
    /// <c>token-secret-sha256</c> when present (<see cref="JoinTokens.SecretMatches"/>), else against the plain
    /// <c>token-secret</c> (<see cref="CryptographicOperations.FixedTimeEquals"/>). False when neither is set.
    /// </summary>
    public static bool SecretMatches(V1Secret secret, string presented)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentNullException.ThrowIfNull(presented);
        if (Text(secret, TokenSecretSha256Key) is { } hash)
        {
            return JoinTokens.SecretMatches(presented, hash.Trim());
        }

        if (secret.Data?.ValueOrDefault(TokenSecretKey) is { } plain)
        {
            // Compare hashes so that the time taken does not depend on where the strings differ or on their lengths.
            return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(plain));
        }

        return false;
    }

    /// <summary>
    /// Why the operator should delete this Secret at <paramref name="now"/>: <c>Expired</c> (expiration passed),
    /// <c>Revoked</c> (revoked more than <see cref="RevokedRetention"/> ago), or null to keep it (also when it is
    /// malformed: an admin's Secret is never deleted on a guess).
    /// </summary>
    public static string? CleanupReason(V1Secret secret, DateTimeOffset now)
    {
        if (!TryRead(secret, out var record, out _))
        {
            return null;
        }

        if (now >= record.ExpiresAt)
        {
            return "Expired";
        }

        return record.RevokedAt is { } revoked && now - revoked >= RevokedRetention ? "Revoked" : null;
    }

    /// <summary>The instant time alone makes <see cref="CleanupReason"/> non-null, or null when never (or malformed).</summary>
    public static DateTimeOffset? CleanupDeadline(V1Secret secret)
    {
        if (!TryRead(secret, out var record, out _))
        {
            return null;
        }

        return record.RevokedAt is { } revoked && revoked + RevokedRetention < record.ExpiresAt ? revoked + RevokedRetention : record.ExpiresAt;
    }

    /// <summary>RFC 3339 UTC with whole seconds: <c>2026-12-31T00:00:00Z</c>.</summary>
    public static string FormatTime(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Parses an RFC 3339 time (with <c>Z</c> or an offset; fractional seconds allowed).</summary>
    public static bool TryParseTime(string? text, out DateTimeOffset time)
    {
        time = default;
        return !string.IsNullOrWhiteSpace(text)
            && text.Length >= 20 && text[10] is 'T' or 't'
            && DateTimeOffset.TryParse(text.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);
    }

    /// <summary>A data value as UTF-8 text, or null when absent or empty.</summary>
    private static string? Text(V1Secret secret, string key) =>
        secret.Data?.ValueOrDefault(key) is { Length: > 0 } bytes ? Encoding.UTF8.GetString(bytes) : null;
}
