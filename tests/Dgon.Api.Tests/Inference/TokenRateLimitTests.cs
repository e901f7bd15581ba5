using System.Net;
using Dgon.Testing;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// Issue 13's token-rate limit per API key (<c>DGON_GATEWAY_KEY_TOKENS_PER_MINUTE</c>): a key that spent its minute's
/// tokens gets 429 with a Retry-After until the budget refills; another key is not affected.
/// </summary>
public sealed class TokenRateLimitTests
{
    [Fact]
    public async Task A_key_over_its_tokens_per_minute_gets_429_with_Retry_After_and_other_keys_do_not()
    {
        var postgres = await SharedPostgres.GetAsync();
        await using var host = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = await postgres.CreateDatabaseAsync(),
            Environment = new Dictionary<string, string?> { ["DGON_GATEWAY_KEY_TOKENS_PER_MINUTE"] = "6" },
        });
        var email = NewEmail("tokens");
        await CreateUserAsync(host.Client, email, "operator");
        var session = await LoginAsync(host.Client, email);
        var (_, spender) = await CreateKeyAsync(host.Client, session, "inference");
        var (_, other) = await CreateKeyAsync(host.Client, session, "inference");
        var model = "m-tokens-" + Guid.NewGuid().ToString("N")[..8];
        await using var node = await FakeLinkNode.StartAsync(host.Client, "n-tokens-" + Guid.NewGuid().ToString("N")[..8], model);

        // The echo node reports 3 prompt tokens and one completion token per word: "one two three four" costs 7 > 6.
        using (var first = await GatewayTests.PostAsync(host.Client, spender, model, "one two three four"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using (var refused = await GatewayTests.PostAsync(host.Client, spender, model, "again"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.InRange(refused.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 60);
            Assert.Contains("DGON_GATEWAY_KEY_TOKENS_PER_MINUTE", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using var unaffected = await GatewayTests.PostAsync(host.Client, other, model, "hi");
        Assert.Equal(HttpStatusCode.OK, unaffected.StatusCode);
    }
}
