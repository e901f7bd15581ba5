using System.Security.Cryptography;
using System.Text;

namespace Dgon.Persistence;

/// <summary>
/// Encrypts node tokens at rest with AES-256-GCM under a key ring (issue 9, <c>DGON_SECRET_KEY</c> = comma-separated
/// base64 keys, the first one current). Layout: <c>nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)</c>; the node id is
/// bound as associated data so a ciphertext copied to another row fails to decrypt. Each ciphertext is stored with the
/// <see cref="KeyId"/> of its key (first 8 hex digits of SHA-256 of the key, not secret), so an old key still decrypts
/// its secrets after a rotation and the registry re-wraps them under the current key on first use.
/// </summary>
public sealed class NodeSecretProtector
{
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly byte[] _current;
    private readonly Dictionary<string, byte[]> _byId = new(StringComparer.Ordinal);

    /// <summary>Creates the protector over one key (the current one).</summary>
    /// <exception cref="ArgumentException">The key is not 32 bytes.</exception>
    public NodeSecretProtector(byte[] key)
        : this([key])
    {
    }

    /// <summary>Creates the protector over a key ring: <paramref name="keys"/>[0] encrypts, all decrypt.</summary>
    /// <exception cref="ArgumentException">The ring is empty or a key is not 32 bytes.</exception>
    public NodeSecretProtector(IReadOnlyList<byte[]> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            throw new ArgumentException("the key ring needs at least one key", nameof(keys));
        }

        foreach (var key in keys)
        {
            if (key is not { Length: 32 })
            {
                throw new ArgumentException("AES-256 needs 32-byte keys", nameof(keys));
            }

            _byId.TryAdd(IdOf(key), key);
        }

        _current = keys[0];
        KeyId = IdOf(_current);
    }

    /// <summary>Identifier of the current key (not secret).</summary>
    public string KeyId { get; }

    /// <summary>Whether a key with this id is in the ring.</summary>
    public bool HasKey(string keyId) => _byId.ContainsKey(keyId);

    /// <summary>Encrypts a token for a node under the current key (<see cref="KeyId"/>).</summary>
    public byte[] Protect(string nodeId, string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var plaintext = Encoding.UTF8.GetBytes(token);
        var output = new byte[NonceSize + plaintext.Length + TagSize];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_current, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(NonceSize, plaintext.Length), output.AsSpan(NonceSize + plaintext.Length), Aad(nodeId));
        return output;
    }

    /// <summary>Decrypts a token stored by <see cref="Protect"/> under the current key.</summary>
    /// <exception cref="CryptographicException">Wrong key, wrong node id, or tampered data.</exception>
    public string Unprotect(string nodeId, byte[] protectedToken) => Unprotect(nodeId, protectedToken, KeyId);

    /// <summary>Decrypts a token stored under the key <paramref name="keyId"/> of the ring.</summary>
    /// <exception cref="CryptographicException">The ring has no such key, or wrong node id, or tampered data.</exception>
    public string Unprotect(string nodeId, byte[] protectedToken, string keyId)
    {
        ArgumentNullException.ThrowIfNull(protectedToken);
        if (!_byId.TryGetValue(keyId, out var key))
        {
            throw new CryptographicException($"node secret of '{nodeId}' was encrypted with key {keyId}, which is not in DGON_SECRET_KEY");
        }

        if (protectedToken.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("stored node secret is truncated");
        }

        var cipherLength = protectedToken.Length - NonceSize - TagSize;
        var plaintext = new byte[cipherLength];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(
            protectedToken.AsSpan(0, NonceSize),
            protectedToken.AsSpan(NonceSize, cipherLength),
            protectedToken.AsSpan(NonceSize + cipherLength),
            plaintext,
            Aad(nodeId));
        return Encoding.UTF8.GetString(plaintext);
    }

    private static string IdOf(byte[] key) => Convert.ToHexStringLower(SHA256.HashData(key))[..8];

    private static byte[] Aad(string nodeId) => Encoding.UTF8.GetBytes("dgon/node-secret/v1/" + nodeId);
}
