using Dgon.Domain.Accounts;
using Dgon.Domain.Contracts;

namespace Dgon.Domain.Tests;

/// <summary>Issue 12's pure rules: role scopes, a key's effective scopes, credential shapes, account field rules.</summary>
public sealed class AccessRulesTests
{
    [Theory]
    [InlineData("admin", "nodes:read receipts:read inference admin")]
    [InlineData("operator", "nodes:read receipts:read inference")]
    [InlineData("viewer", "nodes:read receipts:read")]
    [InlineData("root", "")]
    [InlineData(null, "")]
    public void Each_role_grants_its_scopes(string? role, string scopes) =>
        Assert.Equal(scopes, string.Join(' ', Scopes.OfRole(role)));

    [Fact]
    public void A_keys_scopes_are_cut_to_its_owners_current_role()
    {
        Assert.Equal(["nodes:read", "admin"], Scopes.Effective(["admin", "nodes:read"], Roles.Admin));
        Assert.Equal(["nodes:read"], Scopes.Effective(["admin", "nodes:read"], Roles.Viewer));
        Assert.Empty(Scopes.Effective(["inference"], Roles.Viewer));
        Assert.Empty(Scopes.Effective(["nodes:read"], "deleted-role"));
    }

    [Fact]
    public void Api_keys_round_trip_and_anything_else_is_not_one()
    {
        var (id, key) = Credentials.NewApiKey();
        Assert.Matches("^[0-9a-f]{12}$", id);
        Assert.True(Credentials.TryParseApiKey(key, out var parsedId, out var secret));
        Assert.Equal(id, parsedId);
        Assert.Equal(43, secret.Length);
        Assert.NotEqual(Credentials.NewApiKey().Key, key);
        foreach (var bad in new[] { "", "dgk_", key[..^1], key + "A", key.Replace("dgk_", "dgx_", StringComparison.Ordinal), "dgk_ABCDEF012345_" + secret, key[..16] + "-" + key[17..], "dgk_0123456789ab_" + new string('!', 43) })
        {
            Assert.False(Credentials.TryParseApiKey(bad, out _, out _), bad);
        }
    }

    [Fact]
    public void Session_tokens_have_their_shape_and_hashes_compare_in_constant_time()
    {
        var token = Credentials.NewSessionToken();
        Assert.True(Credentials.IsSessionToken(token));
        Assert.False(Credentials.IsSessionToken(token[..^1]));
        Assert.False(Credentials.IsSessionToken("dgs_" + new string('+', 43)));
        var hash = Credentials.Hash(token);
        Assert.Matches("^[0-9a-f]{64}$", hash);
        Assert.True(Credentials.Matches(token, hash));
        Assert.False(Credentials.Matches(token + "x", hash));
    }

    [Theory]
    [InlineData("a@b.co", "twelve chars", "viewer", null)]
    [InlineData("not-an-email", "twelve chars", "viewer", "email")]
    [InlineData("a@b.co", "short", "viewer", "password")]
    [InlineData("a@b.co", "twelve chars", "superuser", "role")]
    [InlineData("a@@b.co", "twelve chars", "viewer", "email")]
    public void New_users_need_an_email_a_12_character_password_and_a_role(string email, string password, string role, string? field)
    {
        var errors = AccountValidator.Validate(new UserCreateRequest { Email = email, Password = password, Role = role }, roleRequired: true);
        if (field is null)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.Equal([field], errors.Keys);
        }
    }

    [Fact]
    public void Keys_need_a_name_known_distinct_scopes_and_a_future_expiry()
    {
        var now = DateTimeOffset.UtcNow;
        Assert.Empty(AccountValidator.Validate(new ApiKeyCreateRequest { Name = "ci", Scopes = ["nodes:read"] }, now));
        Assert.Contains("scopes", AccountValidator.Validate(new ApiKeyCreateRequest { Name = "ci", Scopes = [] }, now).Keys);
        Assert.Contains("scopes", AccountValidator.Validate(new ApiKeyCreateRequest { Name = "ci", Scopes = ["nodes:write"] }, now).Keys);
        Assert.Contains("scopes", AccountValidator.Validate(new ApiKeyCreateRequest { Name = "ci", Scopes = ["admin", "admin"] }, now).Keys);
        Assert.Contains("name", AccountValidator.Validate(new ApiKeyCreateRequest { Name = "a\nb", Scopes = ["admin"] }, now).Keys);
        Assert.Contains("expires_at", AccountValidator.Validate(new ApiKeyCreateRequest { Name = "ci", Scopes = ["admin"], ExpiresAt = now.UtcDateTime.AddSeconds(-1) }, now).Keys);
    }
}
