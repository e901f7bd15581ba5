using Dgon.Domain.Auth;

namespace Dgon.Domain.Ports;

/// <summary>
/// Join tokens (issue 9). Standalone mode: the PostgreSQL table <c>join_tokens</c>. Kubernetes mode: Secrets of
/// type <c>dgon.io/join-token</c> named <c>dgon-join-token-&lt;id&gt;</c>, like <c>bootstrap.kubernetes.io/token</c>
/// Secrets, so <c>kubectl create secret</c> can make one.
/// </summary>
public interface IJoinTokenStore
{
    /// <summary>Creates a token; the secret is returned here once and stored only hashed (Kubernetes: see the Secret format).</summary>
    /// <returns>The stored record and the token to hand out.</returns>
    Task<(JoinTokenRecord Record, JoinTokenCredential Token)> CreateAsync(JoinTokenSpec spec, CancellationToken cancellationToken);

    /// <summary>Every token not yet deleted, newest first, without secrets (expired and revoked ones included).</summary>
    Task<IReadOnlyList<JoinTokenRecord>> ListAsync(CancellationToken cancellationToken);

    /// <summary>One token by id (without the secret), or null.</summary>
    Task<JoinTokenRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Revokes a token at once.</summary>
    /// <returns>False when no token has this id.</returns>
    Task<bool> RevokeAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Checks a presented token for a registration in <paramref name="region"/> (<see cref="JoinTokens.Check"/>) and,
    /// when it is valid, consumes one use atomically (two registrations can never both take the last use).
    /// </summary>
    Task<JoinTokenCheck> TryConsumeAsync(JoinTokenCredential token, string region, CancellationToken cancellationToken);
}
