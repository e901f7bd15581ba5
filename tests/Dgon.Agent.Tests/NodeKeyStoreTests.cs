using System.Security.Cryptography;
using System.Text;
using Dgon.Agent.Tests.Support;
using Dgon.Domain.Auth;
using NSec.Cryptography;

namespace Dgon.Agent.Tests;

public sealed class NodeKeyStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Key_is_created_0600_in_a_0700_directory_as_one_base64_line_and_reused()
    {
        var store = new NodeKeyStore(_dir.Combine("cfg", "dgon"));
        string publicKey;
        using (var created = store.LoadOrCreate("node-a"))
        {
            Assert.True(created.Created);
            Assert.Equal(_dir.Combine("cfg", "dgon", "node-a.key"), created.Path);
            publicKey = created.PublicKeyText;
            Assert.True(NodeKeyProof.IsValidPublicKey(publicKey));
        }

        var path = store.PathFor("node-a");
        var text = File.ReadAllText(path);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        Assert.Equal(32, Convert.FromBase64String(text.TrimEnd('\n')).Length);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(store.ConfigDir));
        }

        using var loaded = new NodeKeyStore(_dir.Combine("cfg", "dgon")).LoadOrCreate("node-a");
        Assert.False(loaded.Created);
        Assert.Equal(publicKey, loaded.PublicKeyText);
        Assert.Equal(text, File.ReadAllText(path));
        Assert.Equal(["node-a.key"], Directory.GetFiles(store.ConfigDir).Select(f => Path.GetFileName(f)).ToArray());
    }

    [Fact]
    public void Each_node_id_has_its_own_key()
    {
        var store = new NodeKeyStore(_dir.Path);
        using var a = store.LoadOrCreate("node-a");
        using var b = store.LoadOrCreate("node-b");
        Assert.NotEqual(a.PublicKeyText, b.PublicKeyText);
    }

    [Theory]
    [InlineData(0b110_100_100)] // 0644
    [InlineData(0b110_110_000)] // 0660
    [InlineData(0b110_000_001)] // 0601
    [InlineData(0b111_000_000)] // 0700: executable is wider than 0600 too
    public void Key_file_with_a_wider_mode_is_refused_and_left_alone(int mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var store = new NodeKeyStore(_dir.Path);
        store.LoadOrCreate("node-a").Dispose();
        var path = store.PathFor("node-a");
        var content = File.ReadAllBytes(path);
        File.SetUnixFileMode(path, (UnixFileMode)mode);

        var e = Assert.Throws<NodeKeyFileException>(() => store.LoadOrCreate("node-a"));

        Assert.Equal(path, e.Path);
        Assert.Contains("0" + Convert.ToString(mode, 8), e.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 600 " + path, e.Message, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllBytes(path));
        Assert.Equal((UnixFileMode)mode, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Read_only_key_file_0400_is_accepted()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var store = new NodeKeyStore(_dir.Path);
        string publicKey;
        using (var created = store.LoadOrCreate("node-a"))
        {
            publicKey = created.PublicKeyText;
        }

        File.SetUnixFileMode(store.PathFor("node-a"), UnixFileMode.UserRead);
        using var loaded = store.LoadOrCreate("node-a");
        Assert.Equal(publicKey, loaded.PublicKeyText);
    }

    [Theory]
    [InlineData("not base64 at all!")]
    [InlineData("AAAA")] // 3 bytes
    [InlineData("")]
    public void Corrupt_key_file_is_refused_not_replaced(string content)
    {
        var store = new NodeKeyStore(_dir.Path);
        var path = store.PathFor("node-a");
        File.WriteAllText(path, content);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var e = Assert.Throws<NodeKeyFileException>(() => store.LoadOrCreate("node-a"));

        Assert.Contains("is not a node key file", e.Message, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllText(path));
    }

    [Fact]
    public void Oversized_key_file_is_refused()
    {
        var store = new NodeKeyStore(_dir.Path);
        var path = store.PathFor("node-a");
        File.WriteAllText(path, new string('A', 4096));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        Assert.Contains("4096 bytes", Assert.Throws<NodeKeyFileException>(() => store.LoadOrCreate("node-a")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_written_elsewhere_is_imported_as_is()
    {
        using var key = NodeKeyProof.NewKey();
        var store = new NodeKeyStore(_dir.Path);
        File.WriteAllText(store.PathFor("node-a"), Convert.ToBase64String(NodeKeyProof.ExportPrivateKey(key)) + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(store.PathFor("node-a"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        using var loaded = store.LoadOrCreate("node-a");
        Assert.Equal(NodeKeyProof.PublicKeyText(key), loaded.PublicKeyText);
        var body = "{}"u8.ToArray();
        var proof = NodeKeyProof.Sign(loaded.Key, "POST", "/v1/nodes/rotate-token", "node-a", body, "1");
        Assert.True(NodeKeyProof.Verify(NodeKeyProof.PublicKeyText(key), proof, "POST", "/v1/nodes/rotate-token", "node-a", body, "1"));
    }

    [Fact]
    public void Fingerprint_is_unpadded_base64_sha256_of_the_raw_public_key()
    {
        using var key = NodeKeyProof.NewKey();
        var expected = "SHA256:" + Convert.ToBase64String(SHA256.HashData(key.PublicKey.Export(KeyBlobFormat.RawPublicKey))).TrimEnd('=');
        Assert.Equal(expected, NodeKeyStore.Fingerprint(key));
        Assert.Equal(50, expected.Length);
        Assert.DoesNotContain(Convert.ToBase64String(NodeKeyProof.ExportPrivateKey(key)), NodeKeyStore.Fingerprint(key), StringComparison.Ordinal);
    }

    [Fact]
    public void Config_dir_that_cannot_be_created_is_a_key_file_error()
    {
        var blocker = _dir.Combine("not-a-dir");
        File.WriteAllText(blocker, "a file where the config directory should be");

        var e = Assert.Throws<NodeKeyFileException>(() => new NodeKeyStore(Path.Combine(blocker, "dgon")).LoadOrCreate("node-a"));

        Assert.Contains("cannot write the node key file", e.Message, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(blocker, "dgon", "node-a.key"), e.Path);
    }

    [Fact]
    public void Node_key_prints_its_fingerprint_and_path_only()
    {
        using var key = new NodeKeyStore(_dir.Path).LoadOrCreate("node-a");
        var text = key.ToString();
        Assert.Contains(key.Fingerprint, text, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(NodeKeyProof.ExportPrivateKey(key.Key)), text, StringComparison.Ordinal);
        Assert.DoesNotContain(Encoding.ASCII.GetString(File.ReadAllBytes(key.Path)).Trim(), text, StringComparison.Ordinal);
    }
}
