using System.Text;
using Dgon.Domain.Auth;
using Dgon.Kubernetes.Enrollment;
using Dgon.Testing;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dgon.Kubernetes.Tests;

/// <summary>
/// Issue 9, Kubernetes mode: <see cref="KubernetesJoinTokenStore"/> on <c>dgon.io/join-token</c> Secrets of the
/// Kubernetes API test server, including Secrets made by the real kubectl.
/// </summary>
public sealed class JoinTokenStoreTests
{
    private const string Ns = "default";
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

    private static KubernetesJoinTokenStore Store(IKubernetes client, TimeProvider? clock = null) =>
        new(client, new KubeNamespace(Ns), clock ?? TimeProvider.System, NullLogger<KubernetesJoinTokenStore>.Instance);

    private static string Data(V1Secret s, string key) => Encoding.UTF8.GetString(s.Data![key]);

    [Fact]
    public async Task Create_stores_the_secret_only_hashed_and_each_registration_takes_one_use()
    {
        await using var c = await Cluster.StartAsync();
        var clock = new FakeTimeProvider(Start);
        var store = Store(c.Client, clock);
        var ct = Cluster.Timeout();

        var (record, token) = await store.CreateAsync(new JoinTokenSpec(TimeSpan.FromHours(2), 2, "rack 7", null), ct);
        Assert.True(JoinTokens.TryParse(token.ToString(), out _));
        Assert.Equal(token.Id, record.Id);
        Assert.Equal(Start.AddHours(2), record.ExpiresAt);
        Assert.Equal(2, record.MaxUses);
        Assert.Equal(0, record.Uses);
        Assert.Equal("rack 7", record.Description);

        var secret = await c.Client.CoreV1.ReadNamespacedSecretAsync("dgon-join-token-" + token.Id, Ns, cancellationToken: ct);
        Assert.Equal("dgon.io/join-token", secret.Type);
        Assert.Equal(token.Id, Data(secret, "token-id"));
        Assert.Equal(JoinTokens.HashSecret(token.Secret), Data(secret, "token-secret-sha256"));
        Assert.False(secret.Data!.ContainsKey("token-secret"));
        Assert.DoesNotContain(secret.Data.Values, v => Encoding.UTF8.GetString(v).Contains(token.Secret, StringComparison.Ordinal));
        Assert.Equal("2026-11-21T12:00:00Z", Data(secret, "expiration"));
        Assert.Equal("2", Data(secret, "usage-limit"));

        Assert.Equal(JoinTokenCheck.Ok, await store.TryConsumeAsync(token, "eu-west", ct));
        Assert.Equal(JoinTokenCheck.Ok, await store.TryConsumeAsync(token, "us-east", ct));
        Assert.Equal(JoinTokenCheck.UsedUp, await store.TryConsumeAsync(token, "eu-west", ct));
        var listed = Assert.Single(await store.ListAsync(ct));
        Assert.Equal(2, listed.Uses);
        Assert.Equal("2", (await c.Client.CoreV1.ReadNamespacedSecretAsync("dgon-join-token-" + token.Id, Ns, cancellationToken: ct)).Metadata.Annotations!["dgon.io/uses"]);
    }

    [Fact]
    public async Task A_secret_made_with_kubectl_create_secret_is_accepted()
    {
        await using var c = await Cluster.StartAsync();
        using var kubectl = new Kubectl(home => c.Server.WriteKubeconfig(Path.Combine(home, "kubeconfig"), Ns));
        (await kubectl.RunAsync("create", "secret", "generic", "dgon-join-token-abc123", "-n", Ns, "--type=dgon.io/join-token",
            "--from-literal=token-id=abc123", "--from-literal=token-secret=0123456789abcdef", "--from-literal=expiration=2099-12-31T00:00:00Z",
            "--from-literal=usage-limit=1", "--from-literal=description=made by hand")).EnsureSuccess("create secret");
        var store = Store(c.Client);
        var ct = Cluster.Timeout();

        Assert.Equal(JoinTokenCheck.Unknown, await store.TryConsumeAsync(new JoinTokenCredential("abc123", "0123456789abcdeg"), "eu-west", ct));
        Assert.Equal(JoinTokenCheck.Ok, await store.TryConsumeAsync(new JoinTokenCredential("abc123", "0123456789abcdef"), "eu-west", ct));
        Assert.Equal(JoinTokenCheck.UsedUp, await store.TryConsumeAsync(new JoinTokenCredential("abc123", "0123456789abcdef"), "eu-west", ct));

        var uses = (await kubectl.RunAsync("get", "secret", "dgon-join-token-abc123", "-o", "jsonpath={.metadata.annotations.dgon\\.io/uses}")).EnsureSuccess("get").Stdout;
        Assert.Equal("1", uses);
        var listed = Assert.Single(await store.ListAsync(ct));
        Assert.Equal(("abc123", "made by hand", 1, 1), (listed.Id, listed.Description, listed.MaxUses, listed.Uses));
        Assert.Equal(new DateTimeOffset(2099, 12, 31, 0, 0, 0, TimeSpan.Zero), listed.ExpiresAt);
    }

    [Fact]
    public async Task Expired_revoked_region_bound_unknown_and_malformed_tokens_are_refused()
    {
        await using var c = await Cluster.StartAsync();
        var clock = new FakeTimeProvider(Start);
        var store = Store(c.Client, clock);
        var ct = Cluster.Timeout();

        var (_, shortLived) = await store.CreateAsync(new JoinTokenSpec(TimeSpan.FromHours(1), null, null, null), ct);
        var (_, revoked) = await store.CreateAsync(new JoinTokenSpec(TimeSpan.FromDays(1), null, null, null), ct);
        var (_, regional) = await store.CreateAsync(new JoinTokenSpec(TimeSpan.FromDays(1), null, null, "eu-west"), ct);

        Assert.True(await store.RevokeAsync(revoked.Id, ct));
        var revokedAt = (await c.Client.CoreV1.ReadNamespacedSecretAsync("dgon-join-token-" + revoked.Id, Ns, cancellationToken: ct)).Metadata.Annotations!["dgon.io/revoked-at"];
        Assert.Equal("2026-11-21T10:00:00Z", revokedAt);
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.True(await store.RevokeAsync(revoked.Id, ct)); // again: the first time stands
        Assert.Equal(revokedAt, (await c.Client.CoreV1.ReadNamespacedSecretAsync("dgon-join-token-" + revoked.Id, Ns, cancellationToken: ct)).Metadata.Annotations!["dgon.io/revoked-at"]);
        Assert.False(await store.RevokeAsync("zzzzzz", ct));
        Assert.False(await store.RevokeAsync("NOT-AN-ID", ct));

        Assert.Equal(JoinTokenCheck.Revoked, await store.TryConsumeAsync(revoked, "eu-west", ct));
        Assert.Equal(JoinTokenCheck.RegionNotAllowed, await store.TryConsumeAsync(regional, "us-east", ct));
        Assert.Equal(JoinTokenCheck.Ok, await store.TryConsumeAsync(regional, "eu-west", ct));
        Assert.Equal(JoinTokenCheck.Ok, await store.TryConsumeAsync(shortLived, "eu-west", ct));
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(JoinTokenCheck.Expired, await store.TryConsumeAsync(shortLived, "eu-west", ct));

        Assert.Equal(JoinTokenCheck.Unknown, await store.TryConsumeAsync(new JoinTokenCredential("nope00", "0123456789abcdef"), "eu-west", ct));
        Assert.Equal(JoinTokenCheck.Unknown, await store.TryConsumeAsync(regional with { Secret = "0000000000000000" }, "eu-west", ct));
        Assert.Equal(JoinTokenCheck.Malformed, await store.TryConsumeAsync(new JoinTokenCredential("ABC123", "0123456789abcdef"), "eu-west", ct));
        Assert.Equal(JoinTokenCheck.Malformed, await store.TryConsumeAsync(new JoinTokenCredential("abc123", "short"), "eu-west", ct));

        // A Secret of another type with the same name is not a join token, whatever it holds.
        await c.Client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "dgon-join-token-opaq00", NamespaceProperty = Ns },
            Type = "Opaque",
            StringData = new Dictionary<string, string> { ["token-id"] = "opaq00", ["token-secret"] = "0123456789abcdef", ["expiration"] = "2099-01-01T00:00:00Z" },
        }, Ns, cancellationToken: ct);
        Assert.Equal(JoinTokenCheck.Unknown, await store.TryConsumeAsync(new JoinTokenCredential("opaq00", "0123456789abcdef"), "eu-west", ct));
        Assert.DoesNotContain(await store.ListAsync(ct), r => r.Id == "opaq00");
    }

    [Fact]
    public async Task Malformed_secrets_are_refused_and_left_out_of_the_list()
    {
        await using var c = await Cluster.StartAsync();
        var store = Store(c.Client);
        var ct = Cluster.Timeout();
        async Task Make(string id, Dictionary<string, string> data) => await c.Client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "dgon-join-token-" + id, NamespaceProperty = Ns },
            Type = "dgon.io/join-token",
            StringData = data,
        }, Ns, cancellationToken: ct);

        await Make("noexp0", new() { ["token-id"] = "noexp0", ["token-secret"] = "0123456789abcdef" });
        await Make("badlim", new() { ["token-id"] = "badlim", ["token-secret"] = "0123456789abcdef", ["expiration"] = "2099-01-01T00:00:00Z", ["usage-limit"] = "many" });
        await Make("other0", new() { ["token-id"] = "other1", ["token-secret"] = "0123456789abcdef", ["expiration"] = "2099-01-01T00:00:00Z" });
        await Make("good00", new() { ["token-id"] = "good00", ["token-secret"] = "0123456789abcdef", ["expiration"] = "2099-01-01T00:00:00Z" });

        foreach (var id in new[] { "noexp0", "badlim", "other0" })
        {
            Assert.Equal(JoinTokenCheck.Unknown, await store.TryConsumeAsync(new JoinTokenCredential(id, "0123456789abcdef"), "eu-west", ct));
        }

        Assert.Equal("good00", Assert.Single(await store.ListAsync(ct)).Id);
        Assert.Equal(JoinTokenCheck.Ok, await store.TryConsumeAsync(new JoinTokenCredential("good00", "0123456789abcdef"), "eu-west", ct));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Concurrent_registrations_never_take_more_uses_than_the_limit(int maxUses)
    {
        await using var c = await Cluster.StartAsync();
        var ct = Cluster.Timeout(60);
        var (_, token) = await Store(c.Client).CreateAsync(new JoinTokenSpec(TimeSpan.FromHours(1), maxUses, null, null), ct);

        // Five "replicas" (own clients, own connections), four registrations each, all at once.
        var clients = Enumerable.Range(0, 5).Select(_ => c.NewClient()).ToList();
        try
        {
            using var go = new ManualResetEventSlim();
            var attempts = clients.SelectMany(client => Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                go.Wait(ct);
                return await Store(client).TryConsumeAsync(token, "eu-west", ct);
            }))).ToList();
            go.Set();
            var results = await Task.WhenAll(attempts);

            Assert.Equal(maxUses, results.Count(r => r == JoinTokenCheck.Ok));
            Assert.Equal(20 - maxUses, results.Count(r => r == JoinTokenCheck.UsedUp));
            Assert.Equal(maxUses, Assert.Single(await Store(c.Client).ListAsync(ct)).Uses);
        }
        finally
        {
            clients.ForEach(k => k.Dispose());
        }
    }

    [Fact]
    public async Task List_is_newest_first_and_holds_no_secrets()
    {
        await using var c = await Cluster.StartAsync();
        var store = Store(c.Client);
        var ct = Cluster.Timeout();
        var (first, _) = await store.CreateAsync(new JoinTokenSpec(TimeSpan.FromHours(1), null, "first", null), ct);
        await Task.Delay(1100, ct); // creationTimestamp has whole seconds
        var (second, _) = await store.CreateAsync(new JoinTokenSpec(TimeSpan.FromHours(1), 5, "second", "eu-west"), ct);
        await c.Client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "unrelated", NamespaceProperty = Ns }, StringData = new Dictionary<string, string> { ["k"] = "v" } }, Ns, cancellationToken: ct);

        var list = await store.ListAsync(ct);
        Assert.Equal([second.Id, first.Id], list.Select(r => r.Id));
        Assert.Equal(("second", 5, "eu-west"), (list[0].Description, list[0].MaxUses, list[0].Region));
    }

    [Fact]
    public void Cleanup_reason_follows_expiry_and_an_hour_after_revocation()
    {
        static V1Secret Token(string expiration, string? revokedAt = null) => new()
        {
            Metadata = new V1ObjectMeta
            {
                Name = "dgon-join-token-abc123",
                CreationTimestamp = Start.AddDays(-1).UtcDateTime,
                Annotations = revokedAt is null ? null : new Dictionary<string, string> { ["dgon.io/revoked-at"] = revokedAt },
            },
            Type = "dgon.io/join-token",
            Data = new Dictionary<string, byte[]>
            {
                ["token-id"] = Encoding.UTF8.GetBytes("abc123"),
                ["token-secret"] = Encoding.UTF8.GetBytes("0123456789abcdef"),
                ["expiration"] = Encoding.UTF8.GetBytes(expiration),
            },
        };

        Assert.Null(JoinTokenSecrets.CleanupReason(Token("2026-11-21T10:00:01Z"), Start));
        Assert.Equal("Expired", JoinTokenSecrets.CleanupReason(Token("2026-11-21T10:00:00Z"), Start));
        Assert.Equal("Expired", JoinTokenSecrets.CleanupReason(Token("2026-11-21T11:00:00+02:00"), Start));
        Assert.Null(JoinTokenSecrets.CleanupReason(Token("2027-01-01T00:00:00Z", "2026-11-21T09:00:01Z"), Start));
        Assert.Equal("Revoked", JoinTokenSecrets.CleanupReason(Token("2027-01-01T00:00:00Z", "2026-11-21T09:00:00Z"), Start));
        Assert.Equal("Revoked", JoinTokenSecrets.CleanupReason(Token("2027-01-01T00:00:00Z", "garbage"), Start)); // counts from creation
        Assert.Null(JoinTokenSecrets.CleanupReason(Token("tomorrow"), Start)); // malformed: never deleted on a guess
        Assert.Equal(Start.AddMinutes(1), JoinTokenSecrets.CleanupDeadline(Token("2026-11-21T10:01:00Z")));
        Assert.Equal(Start.AddMinutes(30), JoinTokenSecrets.CleanupDeadline(Token("2027-01-01T00:00:00Z", "2026-11-21T09:30:00Z")));
    }
}
