using Dgon.Agent.Tests.Support;

namespace Dgon.Agent.Tests;

public sealed class TokenStoreTests : IDisposable
{
    private static readonly Uri Api = new("http://127.0.0.1:8001");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static StoredToken Token(string nodeId = "node-a", string token = "0123456789abcdef", string api = "http://127.0.0.1:8001") =>
        new(api, nodeId, token, new DateTimeOffset(2026, 11, 1, 10, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Save_creates_directory_0700_and_file_0600()
    {
        var store = new TokenStore(_dir.Combine("cfg", "dgon"));
        var path = store.Save(Token());

        Assert.Equal(store.PathFor("node-a"), path);
        Assert.Equal(_dir.Combine("cfg", "dgon", "node-a.json"), path);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(store.ConfigDir));
        }
    }

    [Fact]
    public void Save_tightens_an_existing_open_directory_to_0700()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var dir = _dir.Combine("open");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101); // 0755
        new TokenStore(dir).Save(Token());
        Assert.Equal(TokenStore.DirectoryMode, File.GetUnixFileMode(dir));
    }

    [Fact]
    public void File_holds_api_node_id_token_and_registered_at()
    {
        var store = new TokenStore(_dir.Path);
        var path = store.Save(Token());
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        Assert.Equal("http://127.0.0.1:8001", root.GetProperty("api").GetString());
        Assert.Equal("node-a", root.GetProperty("node_id").GetString());
        Assert.Equal("0123456789abcdef", root.GetProperty("node_token").GetString());
        Assert.Equal(new DateTimeOffset(2026, 11, 1, 10, 0, 0, TimeSpan.Zero), root.GetProperty("registered_at").GetDateTimeOffset());
    }

    [Fact]
    public void Saved_token_is_reused_when_api_and_node_id_match()
    {
        var store = new TokenStore(_dir.Path);
        store.Save(Token());

        var loaded = new TokenStore(_dir.Path).Load(Api, "node-a");

        Assert.NotNull(loaded.Token);
        Assert.Null(loaded.Reason);
        Assert.Equal("0123456789abcdef", loaded.Token.NodeToken);
    }

    [Fact]
    public void Api_match_ignores_a_trailing_slash()
    {
        var store = new TokenStore(_dir.Path);
        store.Save(Token(api: "http://127.0.0.1:8001/"));
        Assert.NotNull(store.Load(new Uri("http://127.0.0.1:8001/"), "node-a").Token);
        Assert.NotNull(store.Load(Api, "node-a").Token);
    }

    [Fact]
    public void Overwrite_is_atomic_keeps_0600_and_leaves_no_temporary_file()
    {
        var store = new TokenStore(_dir.Path);
        store.Save(Token(token: "first"));
        var path = store.Save(Token(token: "second"));

        Assert.Equal("second", store.Load(Api, "node-a").Token?.NodeToken);
        Assert.Equal(["node-a.json"], Directory.GetFiles(_dir.Path).Select(f => Path.GetFileName(f)).ToArray());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(TokenStore.FileMode, File.GetUnixFileMode(path));
        }
    }

    [Fact]
    public void Overwrite_replaces_a_file_that_had_a_wider_mode()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var store = new TokenStore(_dir.Path);
        var path = store.Save(Token(token: "first"));
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100); // 0644
        store.Save(Token(token: "second"));
        Assert.Equal(TokenStore.FileMode, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Missing_file_is_not_reused_and_gives_no_reason()
    {
        var loaded = new TokenStore(_dir.Path).Load(Api, "node-a");
        Assert.Null(loaded.Token);
        Assert.Null(loaded.Reason);
    }

    [Fact]
    public void Token_of_another_api_is_not_reused()
    {
        var store = new TokenStore(_dir.Path);
        store.Save(Token(api: "http://10.0.0.1:8001"));

        var loaded = store.Load(Api, "node-a");

        Assert.Null(loaded.Token);
        Assert.Contains("http://10.0.0.1:8001", loaded.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void File_whose_node_id_differs_is_not_reused()
    {
        var store = new TokenStore(_dir.Path);
        store.Save(Token(nodeId: "node-b"));
        File.Move(store.PathFor("node-b"), store.PathFor("node-a"));

        var loaded = store.Load(Api, "node-a");

        Assert.Null(loaded.Token);
        Assert.Contains("node-b", loaded.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_file_is_not_reused()
    {
        var store = new TokenStore(_dir.Path);
        File.WriteAllText(store.PathFor("node-a"), "{not json");

        var loaded = store.Load(Api, "node-a");

        Assert.Null(loaded.Token);
        Assert.Contains("not a valid token file", loaded.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Issued_at_is_stored_and_defaults_to_registered_at_in_older_files()
    {
        var store = new TokenStore(_dir.Path);
        var issued = new DateTimeOffset(2026, 11, 2, 8, 0, 0, TimeSpan.Zero);
        store.Save(Token() with { IssuedAt = issued });
        var loaded = store.Load(Api, "node-a").Token!;
        Assert.Equal(issued, loaded.IssuedAt);
        Assert.Equal(issued, loaded.TokenIssuedAt);

        File.WriteAllText(store.PathFor("node-a"), """{"api":"http://127.0.0.1:8001","node_id":"node-a","node_token":"t","registered_at":"2026-11-01T10:00:00+00:00"}""");
        var old = store.Load(Api, "node-a").Token!;
        Assert.Null(old.IssuedAt);
        Assert.Equal(new DateTimeOffset(2026, 11, 1, 10, 0, 0, TimeSpan.Zero), old.TokenIssuedAt);
    }

    [Fact]
    public void File_without_issued_at_omits_it()
    {
        var path = new TokenStore(_dir.Path).Save(Token());
        Assert.DoesNotContain("issued_at", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Stored_token_never_prints_the_token()
    {
        var text = Token(token: "0123456789abcdef0123").ToString();
        Assert.DoesNotContain("01234567", text, StringComparison.Ordinal);
        Assert.Contains("node-a", text, StringComparison.Ordinal);
    }
}
