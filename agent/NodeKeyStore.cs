using System.Security.Cryptography;
using System.Text;
using Dgon.Domain.Auth;
using NSec.Cryptography;

namespace Dgon.Agent;

/// <summary>
/// The node's Ed25519 key pair (issue 9), loaded from or just written to its key file. Owns the NSec
/// <see cref="NSec.Cryptography.Key"/>: dispose it when the agent stops.
/// </summary>
public sealed class NodeKey : IDisposable
{
    internal NodeKey(Key key, string path, bool created)
    {
        Key = key;
        Path = path;
        Created = created;
        PublicKeyText = NodeKeyProof.PublicKeyText(key);
        Fingerprint = NodeKeyStore.Fingerprint(key);
    }

    /// <summary>The key pair (private key exportable, as <see cref="NodeKeyProof.NewKey"/> makes it).</summary>
    public Key Key { get; }

    /// <summary>The key file, <c>{configDir}/{nodeId}.key</c>.</summary>
    public string Path { get; }

    /// <summary>True when the file did not exist and this key was generated now (the API cannot know it yet).</summary>
    public bool Created { get; }

    /// <summary>The public key as sent in <c>public_key</c>: <c>ed25519:</c> + base64 of 32 bytes.</summary>
    public string PublicKeyText { get; }

    /// <summary>What the agent logs instead of any secret: <c>SHA256:</c> + unpadded base64 of SHA-256(raw public key), as <c>ssh-keygen -l</c>.</summary>
    public string Fingerprint { get; }

    /// <inheritdoc />
    public void Dispose() => Key.Dispose();

    /// <summary>Path and fingerprint; never key material.</summary>
    public override string ToString() => $"{Fingerprint} ({Path})";
}

/// <summary>
/// A key file the agent refuses to use: too open (wider than 0600), unreadable, not a key, or not writable. The agent
/// logs <see cref="Exception.Message"/> and exits with the configuration error code 2.
/// </summary>
public sealed class NodeKeyFileException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The key file.</param>
    /// <param name="message">What is wrong and how to fix it.</param>
    /// <param name="innerException">The I/O or format error, if any.</param>
    public NodeKeyFileException(string path, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Path = path;
    }

    /// <summary>Creates an exception with a message only.</summary>
    public NodeKeyFileException()
        : this("", "invalid key file")
    {
    }

    /// <summary>Creates an exception with a message only.</summary>
    public NodeKeyFileException(string message)
        : this("", message)
    {
    }

    /// <summary>Creates an exception with a message and cause.</summary>
    public NodeKeyFileException(string message, Exception innerException)
        : this("", message, innerException)
    {
    }

    /// <summary>The key file concerned.</summary>
    public string Path { get; }
}

/// <summary>
/// Keeps the node's Ed25519 private key in <c>{configDir}/{nodeId}.key</c>, beside the token file (seed 002 §2.3.1:
/// "Generate and protect the node's key. Mode 0600 enforced"). File format: one line, the standard base64 of the
/// 32-byte raw private key (NSec <see cref="KeyBlobFormat.RawPrivateKey"/>, the RFC 8032 seed) followed by a line
/// feed. Created with mode 0600 in a 0700 directory and written atomically; never overwritten. Like ssh with
/// identity files, a key file whose mode grants anything to group or others is refused (on Unix).
/// </summary>
public sealed class NodeKeyStore
{
    /// <summary>Largest key file read: 1 KiB (a key file is 45 bytes).</summary>
    public const int MaxFileBytes = 1024;

    /// <summary>Mode bits a key file may have: owner read and write (0600; 0400 is fine too).</summary>
    public const UnixFileMode AllowedMode = PrivateFiles.FileMode;

    /// <summary>Creates a store over <paramref name="configDir"/> (created with mode 0700 on first save).</summary>
    public NodeKeyStore(string configDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(configDir);
        ConfigDir = System.IO.Path.GetFullPath(configDir);
    }

    /// <summary>The config directory (absolute).</summary>
    public string ConfigDir { get; }

    /// <summary>The key file of a node: <c>{ConfigDir}/{nodeId}.key</c>.</summary>
    public string PathFor(string nodeId) => System.IO.Path.Combine(ConfigDir, nodeId + ".key");

    /// <summary>The fingerprint of a key: <c>SHA256:</c> + unpadded base64 of SHA-256 over the 32-byte raw public key.</summary>
    public static string Fingerprint(Key key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var hash = SHA256.HashData(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
        return "SHA256:" + Convert.ToBase64String(hash).TrimEnd('=');
    }

    /// <summary>
    /// Loads the node's key, or generates one (<see cref="NodeKeyProof.NewKey"/>) and stores it when the file does
    /// not exist. An existing file is never replaced: a lost or broken key is for the operator to resolve.
    /// </summary>
    /// <returns>The key; <see cref="NodeKey.Created"/> tells whether it is new.</returns>
    /// <exception cref="NodeKeyFileException">
    /// The file's mode is wider than 0600, it cannot be read, it does not hold a base64 32-byte key, or a new key cannot be
    /// written.
    /// </exception>
    public NodeKey LoadOrCreate(string nodeId)
    {
        ArgumentException.ThrowIfNullOrEmpty(nodeId);
        var path = PathFor(nodeId);
        if (File.Exists(path))
        {
            return Load(path);
        }

        var key = NodeKeyProof.NewKey();
        try
        {
            var text = Encoding.ASCII.GetBytes(Convert.ToBase64String(NodeKeyProof.ExportPrivateKey(key)) + "\n");
            PrivateFiles.EnsureDirectory(ConfigDir);
            PrivateFiles.WriteAtomic(path, stream => stream.Write(text), overwrite: false);
            return new NodeKey(key, path, created: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            // another agent process with the same node id wrote its key first: use that one
            key.Dispose();
            return Load(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            key.Dispose();
            throw new NodeKeyFileException(path, $"cannot write the node key file {path}: {e.Message}. The directory must be writable by this user.", e);
        }
    }

    private static NodeKey Load(string path)
    {
        byte[] content;
        try
        {
            using var handle = File.OpenHandle(path, System.IO.FileMode.Open, FileAccess.Read, FileShare.Read);
            if (!OperatingSystem.IsWindows())
            {
                // the mode of the file actually opened (fstat), not of whatever the path names a moment later
                var mode = File.GetUnixFileMode(handle);
                if ((mode & ~AllowedMode) != 0)
                {
                    throw new NodeKeyFileException(
                        path,
                        $"UNPROTECTED NODE KEY FILE: {path} has mode {Octal(mode)}, readable or writable by others than its owner; the agent refuses to use it (mode 0600 enforced). Fix it with: chmod 600 {path}");
                }
            }

            var length = RandomAccess.GetLength(handle);
            if (length > MaxFileBytes)
            {
                throw new NodeKeyFileException(path, $"{path} is not a node key file ({length} bytes; a key file holds one line of base64). Move it away to let the agent generate a new key; the API then needs a new join token for this node.");
            }

            content = new byte[length];
            var read = RandomAccess.Read(handle, content, 0);
            content = content[..read];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NodeKeyFileException(path, $"cannot read the node key file {path}: {e.Message}", e);
        }

        try
        {
            var raw = Convert.FromBase64String(Encoding.ASCII.GetString(content).Trim());
            return new NodeKey(NodeKeyProof.ImportPrivateKey(raw), path, created: false);
        }
        catch (FormatException e)
        {
            throw new NodeKeyFileException(path, $"{path} is not a node key file (expected one line of base64 of a 32-byte Ed25519 private key). Restore it from a backup, or move it away to let the agent generate a new key; the API then needs a new join token for this node.", e);
        }
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xFFF, 8);
}
