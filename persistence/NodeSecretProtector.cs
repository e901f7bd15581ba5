using System.Security.Cryptography;
using System.Text;

namespace Dgon.Persistence;

/// <summary>
/// Encrypts node tokens at rest with AES-256-GCM (issue 2: secrets never stored in plaintext).
/// Layout: <c>nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)</c>; the node id is bound as associated data so a
/// ciphertext copied to another row fails to decrypt. <see cref="KeyId"/> (first 8 hex digits of SHA-256 of the key)
/// is stored beside it so a wrong key is reported as such, not as a bad MAC.
/// </summary>
public sealed class NodeSecretProtector
{
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly byte[] _key;

    /// <summary>Creates the protector.</summary>
    /// <exception cref="ArgumentException">The key is not 32 bytes.</exception>
    public NodeSecretProtector(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != 32)
        {
            throw new ArgumentException("AES-256 needs a 32-byte key", nameof(key));
        }

        _key = key;
        KeyId = Convert.ToHexStringLower(SHA256.HashData(key))[..8];
    }

    /// <summary>Identifier of the key in use (not secret).</summary>
    public string KeyId { get; }

    /// <summary>Encrypts a token for a node.</summary>
    public byte[] Protect(string nodeId, string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var plaintext = Encoding.UTF8.GetBytes(token);
        var output = new byte[NonceSize + plaintext.Length + TagSize];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(NonceSize, plaintext.Length), output.AsSpan(NonceSize + plaintext.Length), Aad(nodeId));
        return output;
    }

    /// <summary>Decrypts a token stored by <see cref="Protect"/>.</summary>
    /// <exception cref="CryptographicException">Wrong key, wrong node id, or tampered data.</exception>
    public string Unprotect(string nodeId, byte[] protectedToken)
    {
        ArgumentNullException.ThrowIfNull(protectedToken);
        if (protectedToken.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("stored node secret is truncated");
        }

        var cipherLength = protectedToken.Length - NonceSize - TagSize;
        var plaintext = new byte[cipherLength];
        using var aes = new AesGcm(_key, TagSize);
        aes.Decrypt(
            protectedToken.AsSpan(0, NonceSize),
            protectedToken.AsSpan(NonceSize, cipherLength),
            protectedToken.AsSpan(NonceSize + cipherLength),
            plaintext,
            Aad(nodeId));
        return Encoding.UTF8.GetString(plaintext);
    }

    private static byte[] Aad(string nodeId) => Encoding.UTF8.GetBytes("dgon/node-secret/v1/" + nodeId);
}
