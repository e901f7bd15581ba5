using System.Globalization;
using Dgon.Domain.Auth;
using Dgon.Domain.Ports;
using k8s;
using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Enrollment;

/// <summary>
/// <see cref="IJoinTokenStore"/> on Secrets of type <c>dgon.io/join-token</c> in the namespace (issue 9, Kubernetes
/// mode; the format is <see cref="JoinTokenSecrets"/>). Registrations are rare, so a presented token is read with a
/// direct GET of its Secret (no cache: a token created with kubectl a moment ago works at once). A use is taken by
/// an update of the <c>dgon.io/uses</c> annotation carrying the resourceVersion the check was made on: a concurrent
/// consumption makes it fail with 409 Conflict, and the check is made again on the fresh Secret, so two
/// registrations can never both take the last use. Needs <c>get</c>, <c>list</c>, <c>create</c> and
/// <c>update</c> on Secrets (no patch, no delete: the operator deletes expired and revoked tokens).
/// </summary>
public sealed partial class KubernetesJoinTokenStore : IJoinTokenStore
{
    /// <summary>Attempts of a read-check-update before a conflict is given up (each re-reads the Secret).</summary>
    public const int MaxAttempts = 16;

    private const int MaxCreateAttempts = 5;
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMilliseconds(500);

    private readonly IKubernetes _client;
    private readonly string _namespace;
    private readonly TimeProvider _clock;
    private readonly ILogger<KubernetesJoinTokenStore> _logger;

    /// <summary>Creates the store for the Secrets of <paramref name="ns"/>.</summary>
    public KubernetesJoinTokenStore(IKubernetes client, KubeNamespace ns, TimeProvider clock, ILogger<KubernetesJoinTokenStore> logger)
    {
        ArgumentNullException.ThrowIfNull(ns);
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _namespace = ns.Name;
        _clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
    }

    /// <inheritdoc />
    /// <remarks>
    /// The expiry is now + <see cref="JoinTokenSpec.Ttl"/>, rounded down to whole seconds (the Secret's RFC 3339 form).
    /// A generated id that is taken already (about one in 2·10⁹ per existing token) is replaced by a fresh token.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The TTL is not positive or the use limit is below 1.</exception>
    /// <exception cref="k8s.Autorest.HttpOperationException">The API server refused the create.</exception>
    public async Task<(JoinTokenRecord Record, JoinTokenCredential Token)> CreateAsync(JoinTokenSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.Ttl, "the TTL must be positive");
        }

        if (spec.MaxUses is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.MaxUses, "max uses must be at least 1");
        }

        for (var attempt = 1; ; attempt++)
        {
            var token = JoinTokens.New();
            var expires = _clock.GetUtcNow() + spec.Ttl;
            var secret = JoinTokenSecrets.NewSecret(_namespace, token, expires, spec.MaxUses, spec.Description, spec.Region, spec.OwnerId);
            try
            {
                var created = await _client.CoreV1.CreateNamespacedSecretAsync(secret, _namespace, cancellationToken: cancellationToken);
                if (!JoinTokenSecrets.TryRead(created, out var record, out var error))
                {
                    throw new InvalidOperationException($"join token {token.Id}: the stored Secret cannot be read back: {error}");
                }

                LogCreated(token.Id, JoinTokenSecrets.FormatTime(record.ExpiresAt));
                return (record, token);
            }
            catch (Exception e) when (e.IsAlreadyExists() && attempt < MaxCreateAttempts)
            {
                // The id is taken: draw another token.
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Lists Secrets with the field selector <c>type=dgon.io/join-token</c> (paged); malformed ones are skipped and logged.</remarks>
    public async Task<IReadOnlyList<JoinTokenRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var records = new List<JoinTokenRecord>();
        string? continueToken = null;
        do
        {
            var page = await _client.CoreV1.ListNamespacedSecretAsync(
                _namespace, continueParameter: continueToken, fieldSelector: JoinTokenSecrets.FieldSelector, limit: 500, cancellationToken: cancellationToken);
            foreach (var secret in page.Items)
            {
                if (JoinTokenSecrets.TryRead(secret, out var record, out var error))
                {
                    records.Add(record);
                }
                else
                {
                    LogMalformed(secret.Metadata.Name ?? "?", error);
                }
            }

            continueToken = page.Metadata?.ContinueProperty;
        }
        while (!string.IsNullOrEmpty(continueToken));

        return [.. records.OrderByDescending(r => r.CreatedAt).ThenBy(r => r.Id, StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    /// <remarks>A direct GET of the Secret; a malformed one counts as absent.</remarks>
    public async Task<JoinTokenRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        if (!JoinTokens.IsValidId(id))
        {
            return null;
        }

        var secret = await _client.TryReadSecretAsync(_namespace, JoinTokenSecrets.SecretName(id), cancellationToken);
        return secret is not null && JoinTokenSecrets.TryRead(secret, out var record, out _) ? record : null;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Sets the annotation <c>dgon.io/revoked-at</c> to now (kept when already revoked: the first revocation time
    /// stands). The operator deletes the Secret an hour later.
    /// </remarks>
    public async Task<bool> RevokeAsync(string id, CancellationToken cancellationToken)
    {
        if (!JoinTokens.IsValidId(id))
        {
            return false;
        }

        for (var attempt = 1; ; attempt++)
        {
            var secret = await _client.TryReadSecretAsync(_namespace, JoinTokenSecrets.SecretName(id), cancellationToken);
            if (secret is null || secret.Type != JoinTokenSecrets.SecretType)
            {
                return false;
            }

            var annotations = secret.Metadata.Annotations ??= new Dictionary<string, string>(StringComparer.Ordinal);
            if (annotations.ContainsKey(JoinTokenSecrets.RevokedAtAnnotation))
            {
                return true;
            }

            annotations[JoinTokenSecrets.RevokedAtAnnotation] = JoinTokenSecrets.FormatTime(_clock.GetUtcNow());
            try
            {
                await _client.CoreV1.ReplaceNamespacedSecretAsync(secret, secret.Metadata.Name, _namespace, cancellationToken: cancellationToken);
                LogRevoked(id);
                return true;
            }
            catch (Exception e) when (e.IsConflict() && attempt < MaxAttempts)
            {
                await BackoffAsync(attempt, cancellationToken);
            }
            catch (Exception e) when (e.IsNotFound())
            {
                return false;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Order of checks: shape of the id and secret, then the Secret (absent, another type, malformed, or the secret
    /// does not match: all <see cref="JoinTokenCheck.Unknown"/>, so a wrong secret learns nothing about the token),
    /// then <see cref="JoinTokens.Check"/>. On <see cref="JoinTokenCheck.Ok"/> the use count is raised with the
    /// resourceVersion as precondition; on 409 everything is checked again on the re-read Secret (up to
    /// <see cref="MaxAttempts"/> times, with jittered exponential backoff).
    /// </remarks>
    /// <exception cref="k8s.Autorest.HttpOperationException">409: every attempt lost a race (extreme contention on one token).</exception>
    public async Task<JoinTokenCheck> TryConsumeAsync(JoinTokenCredential token, string region, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(region);
        if (!JoinTokens.TryParse(token.ToString(), out _))
        {
            return JoinTokenCheck.Malformed;
        }

        for (var attempt = 1; ; attempt++)
        {
            var secret = await _client.TryReadSecretAsync(_namespace, JoinTokenSecrets.SecretName(token.Id), cancellationToken);
            if (secret is null || secret.Type != JoinTokenSecrets.SecretType || !JoinTokenSecrets.SecretMatches(secret, token.Secret))
            {
                return JoinTokenCheck.Unknown;
            }

            if (!JoinTokenSecrets.TryRead(secret, out var record, out var error))
            {
                LogMalformed(secret.Metadata.Name!, error);
                return JoinTokenCheck.Unknown;
            }

            var check = JoinTokens.Check(record, region, _clock.GetUtcNow());
            if (check != JoinTokenCheck.Ok)
            {
                return check;
            }

            var annotations = secret.Metadata.Annotations ??= new Dictionary<string, string>(StringComparer.Ordinal);
            annotations[JoinTokenSecrets.UsesAnnotation] = (record.Uses + 1).ToString(CultureInfo.InvariantCulture);
            try
            {
                // PUT with the resourceVersion just read: 409 if anyone changed the Secret since (another use, a revoke).
                await _client.CoreV1.ReplaceNamespacedSecretAsync(secret, secret.Metadata.Name, _namespace, cancellationToken: cancellationToken);
                LogConsumed(token.Id, record.Uses + 1, record.MaxUses?.ToString(CultureInfo.InvariantCulture) ?? "unlimited");
                return JoinTokenCheck.Ok;
            }
            catch (Exception e) when (e.IsConflict() && attempt < MaxAttempts)
            {
                await BackoffAsync(attempt, cancellationToken);
            }
            catch (Exception e) when (e.IsNotFound())
            {
                return JoinTokenCheck.Unknown; // deleted meanwhile (the operator's cleaner)
            }
        }
    }

    private Task BackoffAsync(int attempt, CancellationToken ct)
    {
        var delay = InitialBackoff * Math.Pow(2, Math.Min(attempt - 1, 10));
        if (delay > MaxBackoff)
        {
            delay = MaxBackoff;
        }

        return Task.Delay(delay * (0.5 + Random.Shared.NextDouble()), _clock, ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Join token {TokenId} created (Secret dgon-join-token-{TokenId}), expires {ExpiresAt}")]
    private partial void LogCreated(string tokenId, string expiresAt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Join token {TokenId} revoked")]
    private partial void LogRevoked(string tokenId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Join token {TokenId} used ({Uses} of {MaxUses})")]
    private partial void LogConsumed(string tokenId, int uses, string maxUses);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Join-token Secret {Name} is malformed and refused: {Error}")]
    private partial void LogMalformed(string name, string error);
}
