using System.Collections.Concurrent;

namespace Dgon.Api.Inference;

/// <summary>
/// Token-rate limit per API key (issue 13): <c>DGON_GATEWAY_KEY_TOKENS_PER_MINUTE</c> tokens (input + output) a minute
/// per credential and replica, refilled continuously, at most one minute's worth banked. Post-paid, since a
/// completion's size is known only at its end: a request is admitted while the balance is positive and its tokens are
/// charged when it finishes (the balance may go negative; the next request then waits until it is positive again, which
/// <see cref="TryAdmit"/> reports as the <c>Retry-After</c>). System.Threading.RateLimiting's token bucket cannot go
/// into debt, hence this small class. 0 turns the limit off.
/// </summary>
public sealed class KeyTokenBudget(InferenceOptions options, TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, Account> _accounts = new(StringComparer.Ordinal);

    /// <summary>Whether a request of <paramref name="key"/> may start; if not, when to retry.</summary>
    public bool TryAdmit(string key, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (options.KeyTokensPerMinute <= 0)
        {
            return true;
        }

        var account = _accounts.GetOrAdd(key, _ => new Account(options.KeyTokensPerMinute, clock.GetUtcNow()));
        lock (account)
        {
            var balance = Refill(account);
            if (balance > 0)
            {
                return true;
            }

            retryAfter = TimeSpan.FromMinutes((1 - balance) / options.KeyTokensPerMinute);
            return false;
        }
    }

    /// <summary>Charges a finished request's tokens to <paramref name="key"/>.</summary>
    public void Charge(string key, int tokens)
    {
        if (options.KeyTokensPerMinute <= 0 || tokens <= 0)
        {
            return;
        }

        var account = _accounts.GetOrAdd(key, _ => new Account(options.KeyTokensPerMinute, clock.GetUtcNow()));
        lock (account)
        {
            Refill(account);
            account.Balance -= tokens;
        }

        if (_accounts.Count > 100_000)
        {
            // Bound memory: drop accounts that are full again (they carry no debt worth remembering).
            foreach (var (k, a) in _accounts)
            {
                lock (a)
                {
                    if (Refill(a) >= options.KeyTokensPerMinute)
                    {
                        _accounts.TryRemove(k, out _);
                    }
                }
            }
        }
    }

    private double Refill(Account account)
    {
        var now = clock.GetUtcNow();
        var elapsed = (now - account.At).TotalMinutes;
        account.Balance = Math.Min(options.KeyTokensPerMinute, account.Balance + (elapsed * options.KeyTokensPerMinute));
        account.At = now;
        return account.Balance;
    }

    private sealed class Account(double balance, DateTimeOffset at)
    {
        public double Balance { get; set; } = balance;

        public DateTimeOffset At { get; set; } = at;
    }
}
