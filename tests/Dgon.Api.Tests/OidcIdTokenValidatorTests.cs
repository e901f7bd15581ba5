using System.Buffers.Text;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dgon.Api.Accounts;
using Dgon.Testing;
using Microsoft.Extensions.Configuration;

namespace Dgon.Api.Tests;

/// <summary>Two real in-process OpenID Connect providers (OpenIddict on Kestrel) shared by the validator tests.</summary>
public sealed class OidcProvidersFixture : IAsyncLifetime
{
    public const string ClientId = "dgon-dashboard";
    public const string ClientSecret = "dashboard-secret-for-tests";
    public const string OtherClientId = "some-other-app";
    public static readonly Uri RedirectUri = new("http://127.0.0.1:9/auth/oidc/callback");

    /// <summary>The authority the validator trusts.</summary>
    public OidcProvider Provider { get; private set; } = null!;

    /// <summary>Another issuer, with its own key, knowing the same client id.</summary>
    public OidcProvider Stranger { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Provider = await OidcProvider.StartAsync(
        [
            new OidcTestClient(ClientId, ClientSecret, [RedirectUri]),
            new OidcTestClient(OtherClientId, null, [RedirectUri]),
        ]);
        Stranger = await OidcProvider.StartAsync([new OidcTestClient(ClientId, ClientSecret, [RedirectUri])]);
    }

    public async Task DisposeAsync()
    {
        await Provider.DisposeAsync();
        await Stranger.DisposeAsync();
    }

    public static OidcOptions Options(Uri authority) => new() { Authority = authority, ClientId = ClientId };
}

/// <summary>
/// Issue 12, OIDC: <see cref="OidcIdTokenValidator"/> against a real provider's discovery document, JWKS and ID tokens
/// obtained through the authorization-code flow with PKCE.
/// </summary>
public sealed class OidcIdTokenValidatorTests(OidcProvidersFixture fx) : IClassFixture<OidcProvidersFixture>
{
    private OidcProvider Provider => fx.Provider;

    public static TheoryData<string[], string, JsonValueKind?> RoleCases => new()
    {
        { ["dgon-admin", "dgon-operator"], "admin", JsonValueKind.Array },
        { ["staff", "dgon-operator"], "operator", JsonValueKind.Array },
        { ["staff", "guests"], "viewer", JsonValueKind.Array },
        { ["dgon-admin"], "admin", JsonValueKind.String },
        { ["dgon-operator"], "operator", JsonValueKind.String },
        { ["dgon-admins"], "viewer", JsonValueKind.String },
        { [], "viewer", null },
    };

    [Theory]
    [MemberData(nameof(RoleCases))]
    public async Task A_valid_id_token_gives_subject_email_name_and_the_mapped_role(string[] roles, string expectedRole, JsonValueKind? rolesKind)
    {
        var subject = "user-" + Guid.NewGuid().ToString("N");
        var token = await TokenAsync(Provider, new OidcTestUser(subject, "ada@example.test", "Ada Lovelace", roles));
        Assert.Equal(rolesKind, Payload(token)["roles"]?.GetValueKind()); // the claim's form in the token is what the case says

        var result = await Validator().ValidateAsync(token);

        Assert.True(result.IsValid, result.Failure);
        Assert.Equal(new OidcIdentity(subject, "ada@example.test", "Ada Lovelace", expectedRole), result.Identity);
    }

    [Fact]
    public async Task Missing_email_and_name_are_null()
    {
        var token = await TokenAsync(Provider, new OidcTestUser("bare-user", null, null, []));

        var result = await Validator().ValidateAsync(token);

        Assert.True(result.IsValid, result.Failure);
        Assert.Equal(new OidcIdentity("bare-user", null, null, "viewer"), result.Identity);
    }

    [Fact]
    public async Task Role_claim_name_and_values_come_from_the_options()
    {
        var token = await TokenAsync(Provider, new OidcTestUser("u1", null, null, ["ops", "platform-admins"]));
        var options = OidcProvidersFixture.Options(Provider.Authority);

        var custom = await Validator(options with { AdminValues = ["platform-admins"] }).ValidateAsync(token);
        var otherClaim = await Validator(options with { RoleClaim = "groups", AdminValues = ["platform-admins"] }).ValidateAsync(token);
        var defaults = await Validator(options).ValidateAsync(token);

        Assert.Equal("admin", custom.Identity?.Role);
        Assert.Equal("viewer", otherClaim.Identity?.Role);
        Assert.Equal("viewer", defaults.Identity?.Role);
    }

    [Fact]
    public async Task A_token_issued_to_another_client_is_refused()
    {
        Provider.SetUser("u2", null, null, "dgon-admin");
        var token = await Provider.GetIdTokenAsync(OidcProvidersFixture.OtherClientId, null, OidcProvidersFixture.RedirectUri);
        Assert.Equal(OidcProvidersFixture.OtherClientId, Payload(token)["aud"]?.GetValue<string>());

        var result = await Validator().ValidateAsync(token);

        Assert.False(result.IsValid);
        Assert.Contains("another client", result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_from_another_issuer_is_refused_though_it_is_valid_there()
    {
        var token = await TokenAsync(fx.Stranger, new OidcTestUser("u3", null, null, ["dgon-admin"]));

        var here = await Validator().ValidateAsync(token);
        var there = await Validator(OidcProvidersFixture.Options(fx.Stranger.Authority)).ValidateAsync(token);

        Assert.False(here.IsValid);
        Assert.Equal("the ID token was issued by another issuer", here.Failure);
        Assert.True(there.IsValid, there.Failure);
        Assert.Equal("admin", there.Identity.Role);
    }

    [Fact]
    public async Task A_token_with_a_changed_payload_or_signature_is_refused()
    {
        var token = await TokenAsync(Provider, new OidcTestUser("u4", null, null, ["staff"]));
        var parts = token.Split('.');
        var payload = Payload(token);
        payload["roles"] = "dgon-admin";
        var elevated = $"{parts[0]}.{Base64Url.EncodeToString(Encoding.UTF8.GetBytes(payload.ToJsonString()))}.{parts[2]}";
        var signature = Base64Url.DecodeFromChars(parts[2]);
        signature[signature.Length / 2] ^= 0x01;
        var flipped = $"{parts[0]}.{parts[1]}.{Base64Url.EncodeToString(signature)}";
        var unsigned = $"{Base64Url.EncodeToString("""{"alg":"none","typ":"JWT"}"""u8)}.{parts[1]}.";

        var validator = Validator();
        Assert.True((await validator.ValidateAsync(token)).IsValid); // the untouched token passes
        foreach (var forged in new[] { elevated, flipped, unsigned })
        {
            var result = await validator.ValidateAsync(forged);
            Assert.False(result.IsValid);
            Assert.Null(result.Identity);
        }

        Assert.Contains("signature", (await validator.ValidateAsync(flipped)).Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_expired_token_is_refused_by_the_validators_clock()
    {
        var token = await TokenAsync(Provider, new OidcTestUser("u5", null, null, []));
        var expires = DateTimeOffset.FromUnixTimeSeconds(Payload(token)["exp"]!.GetValue<long>());
        var clock = new FakeTimeProvider(expires - TimeSpan.FromMinutes(1));
        var validator = new OidcIdTokenValidator(OidcProvidersFixture.Options(Provider.Authority), timeProvider: clock);

        Assert.True((await validator.ValidateAsync(token)).IsValid);
        clock.Advance(TimeSpan.FromMinutes(1) + OidcIdTokenValidator.ClockSkew - TimeSpan.FromSeconds(1));
        Assert.True((await validator.ValidateAsync(token)).IsValid); // within the allowed skew
        clock.Advance(TimeSpan.FromSeconds(2));
        var result = await validator.ValidateAsync(token);

        Assert.False(result.IsValid);
        Assert.Equal("the ID token has expired", result.Failure);
    }

    [Fact]
    public async Task A_token_issued_in_the_validators_future_is_not_valid_yet()
    {
        var token = await TokenAsync(Provider, new OidcTestUser("u6", null, null, []));
        var issued = DateTimeOffset.FromUnixTimeSeconds(Payload(token)["iat"]!.GetValue<long>());
        var clock = new FakeTimeProvider(issued - OidcIdTokenValidator.ClockSkew - TimeSpan.FromSeconds(5));
        var validator = new OidcIdTokenValidator(OidcProvidersFixture.Options(Provider.Authority), timeProvider: clock);

        Assert.Equal("the ID token is not valid yet", (await validator.ValidateAsync(token)).Failure);
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True((await validator.ValidateAsync(token)).IsValid); // within the allowed skew
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("not-a-jwt")]
    [InlineData("a.b.c")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")]
    public async Task Garbage_is_a_failure_not_an_exception(string token)
    {
        var result = await Validator().ValidateAsync(token);

        Assert.False(result.IsValid);
        Assert.False(string.IsNullOrWhiteSpace(result.Failure));
    }

    [Fact]
    public async Task An_unreachable_authority_throws_its_own_exception_and_recovers_when_it_answers()
    {
        var port = FreePort.Next();
        var authority = new Uri($"http://127.0.0.1:{port}/");
        var validator = Validator(OidcProvidersFixture.Options(authority));
        var someToken = await TokenAsync(Provider, new OidcTestUser("u7", null, null, []));

        var unavailable = await Assert.ThrowsAsync<OidcAuthorityUnavailableException>(() => validator.ValidateAsync(someToken));
        Assert.Contains(authority.Authority, unavailable.Message, StringComparison.Ordinal);

        await using var late = await OidcProvider.StartAsync(
            [new OidcTestClient(OidcProvidersFixture.ClientId, OidcProvidersFixture.ClientSecret, [OidcProvidersFixture.RedirectUri])], port);
        var token = await TokenAsync(late, new OidcTestUser("u8", null, null, ["dgon-operator"]));
        var result = await validator.ValidateAsync(token); // the next call fetches again: no failure is cached

        Assert.True(result.IsValid, result.Failure);
        Assert.Equal("operator", result.Identity.Role);
    }

    [Fact]
    public async Task A_discovery_document_whose_issuer_is_not_the_authority_is_an_unavailable_authority()
    {
        // Same host, spelled differently: the discovery issuer says 127.0.0.1, the setting says localhost.
        var authority = new Uri($"http://localhost:{Provider.Authority.Port}/");
        var token = await TokenAsync(Provider, new OidcTestUser("u9", null, null, []));

        var e = await Assert.ThrowsAsync<OidcAuthorityUnavailableException>(() => Validator(OidcProvidersFixture.Options(authority)).ValidateAsync(token));

        Assert.Contains("issuer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Role_values_unpack_a_string_holding_a_json_array()
    {
        var identity = new ClaimsIdentity(
        [
            new Claim("roles", """["dgon-operator","staff"]"""),
            new Claim("roles", "[not json"),
            new Claim("roles", "plain"),
        ]);

        Assert.Equal(["dgon-operator", "staff", "[not json", "plain"], OidcIdTokenValidator.RoleValues(identity, "roles"));
    }

    private OidcIdTokenValidator Validator(OidcOptions? options = null) =>
        new(options ?? OidcProvidersFixture.Options(Provider.Authority));

    private static async Task<string> TokenAsync(OidcProvider provider, OidcTestUser user)
    {
        provider.SetUser(user);
        return await provider.GetIdTokenAsync(OidcProvidersFixture.ClientId, OidcProvidersFixture.ClientSecret, OidcProvidersFixture.RedirectUri);
    }

    private static JsonObject Payload(string token) =>
        JsonNode.Parse(Base64Url.DecodeFromChars(token.Split('.')[1]))!.AsObject();
}

/// <summary>The test provider refuses what a real one refuses, so tests built on it can fail.</summary>
public sealed class OidcProviderTests(OidcProvidersFixture fx) : IClassFixture<OidcProvidersFixture>
{
    [Fact]
    public async Task Unknown_clients_unregistered_redirects_wrong_secrets_and_no_user_are_refused()
    {
        var provider = fx.Provider;
        var redirect = OidcProvidersFixture.RedirectUri;
        provider.SetUser("u10", null, null, "dgon-admin");
        var before = provider.Authorizations;

        async Task<string> RefusedAsync(string clientId, string? secret, Uri redirectUri) =>
            (await Assert.ThrowsAsync<InvalidOperationException>(() => provider.GetIdTokenAsync(clientId, secret, redirectUri))).Message;

        Assert.Contains("invalid_client", await RefusedAsync("nobody", null, redirect), StringComparison.Ordinal);
        Assert.Contains("redirect_uri", await RefusedAsync(OidcProvidersFixture.ClientId, OidcProvidersFixture.ClientSecret, new Uri("http://127.0.0.1:9/elsewhere")), StringComparison.Ordinal);
        Assert.Equal(before, provider.Authorizations);
        Assert.Contains("invalid_client", await RefusedAsync(OidcProvidersFixture.ClientId, "wrong-secret", redirect), StringComparison.Ordinal);
        Assert.Contains("invalid_client", await RefusedAsync(OidcProvidersFixture.ClientId, null, redirect), StringComparison.Ordinal);

        provider.SetUser(null);
        Assert.Contains("access_denied", await RefusedAsync(OidcProvidersFixture.ClientId, OidcProvidersFixture.ClientSecret, redirect), StringComparison.Ordinal);

        provider.SetUser("u11", null, null);
        var token = await provider.GetIdTokenAsync(OidcProvidersFixture.ClientId, OidcProvidersFixture.ClientSecret, redirect);
        Assert.Equal(3, token.Split('.').Length);
        Assert.Equal(before + 3, provider.Authorizations); // the two wrong-secret tries signed in before the token request failed
    }

    [Fact]
    public async Task Discovery_names_the_endpoints_and_the_jwks_has_an_rsa_signing_key()
    {
        using var http = new HttpClient();
        using var discovery = JsonDocument.Parse(await http.GetStringAsync(new Uri(fx.Provider.Authority, ".well-known/openid-configuration")));
        var root = discovery.RootElement;

        Assert.Equal(fx.Provider.Authority.AbsoluteUri, root.GetProperty("issuer").GetString());
        Assert.Equal(fx.Provider.AuthorizationEndpoint.AbsoluteUri, root.GetProperty("authorization_endpoint").GetString());
        Assert.Equal(fx.Provider.TokenEndpoint.AbsoluteUri, root.GetProperty("token_endpoint").GetString());
        Assert.Contains("S256", root.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()));
        using var jwks = JsonDocument.Parse(await http.GetStringAsync(root.GetProperty("jwks_uri").GetString()));
        Assert.Contains(jwks.RootElement.GetProperty("keys").EnumerateArray(), key => key.GetProperty("kty").GetString() == "RSA" && key.GetProperty("use").GetString() == "sig");
    }
}

/// <summary>Issue 12: <c>DGON_OIDC_*</c> parsing.</summary>
public sealed class OidcOptionsTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Unset_or_blank_authority_means_oidc_is_off()
    {
        Assert.Null(OidcOptions.FromConfiguration(Config()));
        Assert.Null(OidcOptions.FromConfiguration(Config(("DGON_OIDC_AUTHORITY", "  "), ("DGON_OIDC_CLIENT_ID", "x"))));
    }

    [Fact]
    public void Defaults_apply_when_only_authority_and_client_id_are_set()
    {
        var options = OidcOptions.FromConfiguration(Config(("DGON_OIDC_AUTHORITY", "https://login.example.test/realms/dgon"), ("DGON_OIDC_CLIENT_ID", "dgon")))!;

        Assert.Equal(new Uri("https://login.example.test/realms/dgon"), options.Authority);
        Assert.Equal("dgon", options.ClientId);
        Assert.Null(options.ClientSecret);
        Assert.Equal("roles", options.RoleClaim);
        Assert.Equal(["dgon-admin"], options.AdminValues);
        Assert.Equal(["dgon-operator"], options.OperatorValues);
        Assert.Equal("single sign-on", options.DisplayName);
        Assert.False(options.AllowsHttp);
        Assert.Equal("https://login.example.test/realms/dgon/.well-known/openid-configuration", OidcIdTokenValidator.MetadataAddress(options.Authority));
    }

    [Fact]
    public void Every_variable_is_read_and_lists_are_trimmed()
    {
        var options = OidcOptions.FromConfiguration(Config(
            ("DGON_OIDC_AUTHORITY", " https://idp.example.test/ "),
            ("DGON_OIDC_CLIENT_ID", "dgon-console"),
            ("DGON_OIDC_CLIENT_SECRET", "s3cret"),
            ("DGON_OIDC_ROLE_CLAIM", "groups"),
            ("DGON_OIDC_ADMIN_VALUES", " platform-admins , sre ,"),
            ("DGON_OIDC_OPERATOR_VALUES", "gpu-providers"),
            ("DGON_OIDC_DISPLAY_NAME", "Sign in with Example")))!;

        Assert.Equal(new OidcOptions
        {
            Authority = new Uri("https://idp.example.test/"),
            ClientId = "dgon-console",
            ClientSecret = "s3cret",
            RoleClaim = "groups",
            AdminValues = options.AdminValues,
            OperatorValues = options.OperatorValues,
            DisplayName = "Sign in with Example",
        }, options);
        Assert.Equal(["platform-admins", "sre"], options.AdminValues);
        Assert.Equal(["gpu-providers"], options.OperatorValues);
        Assert.Equal("https://idp.example.test/.well-known/openid-configuration", OidcIdTokenValidator.MetadataAddress(options.Authority));
    }

    [Theory]
    [InlineData("http://127.0.0.1:5001/")]
    [InlineData("http://127.8.9.10/")]
    [InlineData("http://localhost:8080/realms/dgon")]
    [InlineData("http://[::1]:5001/")]
    public void Plain_http_is_allowed_for_loopback_hosts(string authority)
    {
        var options = OidcOptions.FromConfiguration(Config(("DGON_OIDC_AUTHORITY", authority), ("DGON_OIDC_CLIENT_ID", "dgon")))!;

        Assert.True(options.AllowsHttp);
    }

    [Theory]
    [InlineData("DGON_OIDC_AUTHORITY", "http://idp.example.test/")]
    [InlineData("DGON_OIDC_AUTHORITY", "http://10.0.0.5/")]
    [InlineData("DGON_OIDC_AUTHORITY", "idp.example.test")]
    [InlineData("DGON_OIDC_AUTHORITY", "/realms/dgon")]
    [InlineData("DGON_OIDC_AUTHORITY", "ftp://idp.example.test/")]
    [InlineData("DGON_OIDC_AUTHORITY", "https://idp.example.test/?tenant=x")]
    [InlineData("DGON_OIDC_AUTHORITY", "https://user:pw@idp.example.test/")]
    [InlineData("DGON_OIDC_CLIENT_ID", "")]
    [InlineData("DGON_OIDC_ROLE_CLAIM", "my roles")]
    [InlineData("DGON_OIDC_ADMIN_VALUES", " , ,")]
    [InlineData("DGON_OIDC_OPERATOR_VALUES", ",")]
    public void A_bad_value_fails_naming_its_variable(string variable, string value)
    {
        var values = new Dictionary<string, string>
        {
            ["DGON_OIDC_AUTHORITY"] = "https://idp.example.test/",
            ["DGON_OIDC_CLIENT_ID"] = "dgon",
            [variable] = value,
        };

        var e = Assert.Throws<InvalidOperationException>(() => OidcOptions.FromConfiguration(Config([.. values.Select(kv => (kv.Key, kv.Value))])));

        Assert.Contains(variable, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "dgon-admin", "dgon-operator" }, "admin")]
    [InlineData(new[] { "dgon-operator" }, "operator")]
    [InlineData(new[] { "DGON-ADMIN" }, "viewer")]
    [InlineData(new string[0], "viewer")]
    public void Roles_map_admin_before_operator_before_viewer(string[] values, string role)
    {
        var options = new OidcOptions { Authority = new Uri("https://idp.example.test/"), ClientId = "dgon" };

        Assert.Equal(role, options.MapRole(values));
    }
}
