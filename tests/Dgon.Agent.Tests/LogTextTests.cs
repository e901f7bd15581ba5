namespace Dgon.Agent.Tests;

public sealed class LogTextTests
{
    [Theory]
    [InlineData("a\u001b[31mb", "a\\u001b[31mb")]
    [InlineData("line\r\nCritical: forged", "line\\u000d\\u000aCritical: forged")]
    [InlineData("nul\0del\u007fc1\u0085", "nul\\u0000del\\u007fc1\\u0085")]
    [InlineData("sep\u2028para\u2029", "sep\\u2028para\\u2029")]
    [InlineData("bidi\u202egnp.exe\u2066\u200f", "bidi\\u202egnp.exe\\u2066\\u200f")]
    [InlineData("tab\tbell\u0007", "tab\\u0009bell\\u0007")]
    public void Unsafe_characters_are_escaped_visibly(string input, string expected) =>
        Assert.Equal(expected, LogText.Clean(input));

    [Theory]
    [InlineData("The request body is invalid.")]
    [InlineData("café ✓ 東京 — ok")]
    [InlineData("")]
    public void Printable_text_is_unchanged(string input) =>
        Assert.Same(input, LogText.Clean(input));

    [Fact]
    public void Null_stays_null() => Assert.Null(LogText.Clean(null));

    [Fact]
    public void Long_text_is_cut_with_an_ellipsis()
    {
        var clean = LogText.Clean(new string('a', 5000))!;
        Assert.Equal(LogText.MaxLength + 1, clean.Length);
        Assert.EndsWith("…", clean, StringComparison.Ordinal);
        Assert.Equal("abc…", LogText.Clean("abcdef", 3));
    }
}
