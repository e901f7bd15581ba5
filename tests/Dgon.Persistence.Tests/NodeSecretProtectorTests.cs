using System.Security.Cryptography;
using System.Text;

namespace Dgon.Persistence.Tests;

/// <summary>The node secret key ring (issue 9): AES-256-GCM, the first key encrypts, every key decrypts by its id.</summary>
public sealed class NodeSecretProtectorTests
{
    private const string NodeId = "macbook-001";
    private const string Token = "3f1c0a7e9b2d4c6f8a1b3d5e7f9012345678abcdef0123456789abcdef012345";

    private static byte[] Key(byte fill) => Enumerable.Repeat(fill, 32).ToArray();

    private static readonly byte[] K1 = Key(0x11);
    private static readonly byte[] K2 = Key(0x22);
    private static readonly byte[] K3 = Key(0x33);

    // Independent of the code under test: first 8 lowercase hex digits of SHA-256 of the key.
    private static string IdOf(byte[] key) => Convert.ToHexString(SHA256.HashData(key))[..8].ToLowerInvariant();

    [Theory]
    [InlineData(0x11)]
    [InlineData(0x22)]
    [InlineData(0x00)]
    public void KeyId_is_the_first_8_hex_digits_of_the_keys_sha256(byte fill)
    {
        var key = Key(fill);
        var protector = new NodeSecretProtector(key);
        Assert.Equal(IdOf(key), protector.KeyId);
        Assert.Matches("^[0-9a-f]{8}$", protector.KeyId);
        Assert.True(protector.HasKey(protector.KeyId));
    }

    [Theory]
    [InlineData("")]
    [InlineData(Token)]
    [InlineData("héllo 😀")]
    public void Protect_then_Unprotect_round_trips_under_the_nonce_ciphertext_tag_layout(string token)
    {
        var protector = new NodeSecretProtector(K1);
        var ciphertext = protector.Protect(NodeId, token);
        Assert.Equal(12 + Encoding.UTF8.GetByteCount(token) + 16, ciphertext.Length);
        Assert.Equal(token, protector.Unprotect(NodeId, ciphertext));
        Assert.Equal(token, protector.Unprotect(NodeId, ciphertext, protector.KeyId));
    }

    [Fact]
    public void Each_Protect_uses_a_fresh_nonce()
    {
        var protector = new NodeSecretProtector(K1);
        var a = protector.Protect(NodeId, Token);
        var b = protector.Protect(NodeId, Token);
        Assert.NotEqual(a, b);
        Assert.NotEqual(a[..12], b[..12]);
        Assert.False(a.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Token[..16])) >= 0, "the token shows in the ciphertext");
    }

    [Fact]
    public void A_rotated_ring_decrypts_the_old_keys_secret_by_its_id_and_encrypts_under_the_new_key()
    {
        var old = new NodeSecretProtector(K1);
        var oldCiphertext = old.Protect(NodeId, Token);

        var ring = new NodeSecretProtector([K2, K1]);
        Assert.Equal(IdOf(K2), ring.KeyId);
        Assert.NotEqual(old.KeyId, ring.KeyId);
        Assert.True(ring.HasKey(IdOf(K1)));
        Assert.True(ring.HasKey(IdOf(K2)));
        Assert.Equal(Token, ring.Unprotect(NodeId, oldCiphertext, old.KeyId));

        // New secrets go under K2: a K2-only protector reads them, a K1-only one cannot.
        var rewrapped = ring.Protect(NodeId, Token);
        Assert.Equal(Token, new NodeSecretProtector(K2).Unprotect(NodeId, rewrapped));
        Assert.Equal(Token, ring.Unprotect(NodeId, rewrapped, IdOf(K2)));
        Assert.ThrowsAny<CryptographicException>(() => old.Unprotect(NodeId, rewrapped));
    }

    [Fact]
    public void The_two_argument_Unprotect_uses_the_current_key_only()
    {
        var oldCiphertext = new NodeSecretProtector(K1).Protect(NodeId, Token);
        var ring = new NodeSecretProtector([K2, K1]);
        Assert.ThrowsAny<CryptographicException>(() => ring.Unprotect(NodeId, oldCiphertext));
    }

    [Theory]
    [InlineData("right ciphertext, other key's id")]
    [InlineData("other key's ciphertext, right id")]
    public void A_ciphertext_under_the_wrong_key_of_the_ring_fails(string mismatch)
    {
        var ring = new NodeSecretProtector([K2, K1]);
        var k1Ciphertext = new NodeSecretProtector(K1).Protect(NodeId, Token);
        var k2Ciphertext = ring.Protect(NodeId, Token);
        Assert.ThrowsAny<CryptographicException>(() => mismatch.StartsWith("right", StringComparison.Ordinal)
            ? ring.Unprotect(NodeId, k1Ciphertext, IdOf(K2))
            : ring.Unprotect(NodeId, k2Ciphertext, IdOf(K1)));
    }

    [Theory]
    [InlineData("deadbeef")]
    [InlineData("")]
    [InlineData("k3")]
    [InlineData("K1-upper")]
    [InlineData("K1-prefix")]
    public void An_unknown_key_id_throws_CryptographicException(string keyId)
    {
        var ring = new NodeSecretProtector([K2, K1]);
        var ciphertext = new NodeSecretProtector(K1).Protect(NodeId, Token);
        var id = keyId switch
        {
            "k3" => IdOf(K3),
            "K1-upper" => IdOf(K1).ToUpperInvariant(), // ids are compared ordinally
            "K1-prefix" => IdOf(K1)[..7],
            _ => keyId,
        };
        Assert.False(ring.HasKey(id));
        var error = Assert.Throws<CryptographicException>(() => ring.Unprotect(NodeId, ciphertext, id));
        Assert.Contains(NodeId, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("macbook-002")]
    [InlineData("macbook-00")]
    [InlineData("macbook-0011")]
    [InlineData("MACBOOK-001")]
    [InlineData("")]
    public void The_node_id_is_bound_so_another_node_id_cannot_decrypt(string otherNodeId)
    {
        var ring = new NodeSecretProtector([K2, K1]);
        var ciphertext = ring.Protect(NodeId, Token);
        Assert.ThrowsAny<CryptographicException>(() => ring.Unprotect(otherNodeId, ciphertext));
        Assert.ThrowsAny<CryptographicException>(() => ring.Unprotect(otherNodeId, ciphertext, ring.KeyId));
        Assert.Equal(Token, ring.Unprotect(NodeId, ciphertext));
    }

    [Theory]
    [InlineData(0)]      // nonce
    [InlineData(11)]
    [InlineData(12)]     // first ciphertext byte
    [InlineData(-16)]    // first tag byte
    [InlineData(-1)]     // last tag byte
    public void Flipping_any_stored_byte_fails(int index)
    {
        var protector = new NodeSecretProtector(K1);
        var ciphertext = protector.Protect(NodeId, Token);
        ciphertext[index < 0 ? ciphertext.Length + index : index] ^= 0x01;
        Assert.ThrowsAny<CryptographicException>(() => protector.Unprotect(NodeId, ciphertext));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(27)]
    public void A_truncated_ciphertext_throws_CryptographicException(int length)
    {
        var protector = new NodeSecretProtector(K1);
        Assert.ThrowsAny<CryptographicException>(() => protector.Unprotect(NodeId, new byte[length]));
    }

    [Fact]
    public void A_ciphertext_cut_to_the_bare_nonce_and_tag_does_not_decrypt()
    {
        var protector = new NodeSecretProtector(K1);
        var ciphertext = protector.Protect(NodeId, Token);
        byte[] cut = [.. ciphertext[..12], .. ciphertext[^16..]];
        Assert.ThrowsAny<CryptographicException>(() => protector.Unprotect(NodeId, cut));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void A_key_that_is_not_32_bytes_is_refused(int length)
    {
        Assert.Throws<ArgumentException>(() => new NodeSecretProtector(new byte[length]));
        Assert.Throws<ArgumentException>(() => new NodeSecretProtector([K1, new byte[length]]));
        Assert.Throws<ArgumentException>(() => new NodeSecretProtector([new byte[length], K1]));
    }

    [Fact]
    public void An_empty_ring_or_a_null_key_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new NodeSecretProtector(Array.Empty<byte[]>()));
        Assert.Throws<ArgumentException>(() => new NodeSecretProtector([K1, null!]));
    }

    [Fact]
    public void A_ring_with_a_repeated_key_still_works()
    {
        var ring = new NodeSecretProtector([K1, K2, K1]);
        Assert.Equal(IdOf(K1), ring.KeyId);
        var ciphertext = ring.Protect(NodeId, Token);
        Assert.Equal(Token, ring.Unprotect(NodeId, ciphertext, IdOf(K1)));
    }
}
