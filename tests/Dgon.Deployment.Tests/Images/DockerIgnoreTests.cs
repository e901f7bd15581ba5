using Dgon.Testing;

namespace Dgon.Deployment.Tests.Images;

/// <summary>The .dockerignore matcher (Docker's rules) and the repository's build context.</summary>
public sealed class DockerIgnoreTests
{
    [Theory]
    [InlineData("bin", "bin/x.dll", true)]
    [InlineData("bin", "api/bin/x.dll", false)] // a plain name matches at the root only
    [InlineData("**/bin", "api/bin/Release/x.dll", true)]
    [InlineData("**/bin", "bin/x.dll", true)] // ** matches zero directories too
    [InlineData("**/bin", "api/binary.cs", false)]
    [InlineData("*.md", "README.md", true)]
    [InlineData("*.md", "api/README.md", false)] // '*' does not cross '/'
    [InlineData("api/*.json", "api/appsettings.json", true)]
    [InlineData("a?c", "abc", true)]
    [InlineData("a?c", "a/c", false)]
    [InlineData("[ab]*", "api/x", true)]
    [InlineData("/tests/", "tests/x/y.cs", true)] // leading and trailing '/' are cleaned away
    [InlineData("./docs", "docs/a.md", true)]
    [InlineData("**", "anything/at/all", true)]
    public void Single_pattern_matches_like_docker(string pattern, string path, bool excluded) =>
        Assert.Equal(excluded, DockerIgnore.Parse(pattern).IsExcluded(path));

    [Fact]
    public void Exceptions_and_order_decide_the_last_match_wins()
    {
        var ignore = DockerIgnore.Parse("""
            # comment
            *
            !api

               **/bin
            !api/bin/keep.txt
            """);

        Assert.True(ignore.IsExcluded("README.md"));
        Assert.True(ignore.IsExcluded(".git/HEAD"));
        Assert.False(ignore.IsExcluded("api/Program.cs"));
        Assert.True(ignore.IsExcluded("api/bin/Release/Dgon.Api.dll"));
        Assert.False(ignore.IsExcluded("api/bin/keep.txt"));
        Assert.Equal(["*", "!api", "**/bin", "!api/bin/keep.txt"], ignore.Patterns);
    }

    [Theory]
    [InlineData(".git/HEAD")]
    [InlineData(".dgon/secret.key")]
    [InlineData(".dgon/pg/postgresql.conf")]
    [InlineData("api/bin/Release/net10.0/Dgon.Api.dll")]
    [InlineData("api/obj/project.assets.json")]
    [InlineData("domain/obj/Release/net10.0/Dgon.Domain.dll")]
    [InlineData("dashboard/node_modules/htmx.org/dist/htmx.min.js")]
    [InlineData("dashboard/wwwroot/lib/htmx/htmx.min.js")]
    [InlineData("tests/Dgon.Api.Tests/Dgon.Api.Tests.csproj")]
    [InlineData("bench/README.md")]
    [InlineData("charts/dgon/values.yaml")]
    [InlineData("scripts/dev-stack.sh")]
    [InlineData("README.md")]
    [InlineData("Dgon.sln")]
    [InlineData("api/Dockerfile")]
    public void Context_leaves_out_local_state_outputs_and_what_no_image_builds(string path) =>
        Assert.True(ImageCatalog.Context.IsExcluded(path), $"{path} would be sent to the builder");

    [Theory]
    [InlineData("global.json")]
    [InlineData("Directory.Build.props")]
    [InlineData("Directory.Packages.props")]
    [InlineData(".editorconfig")]
    [InlineData("api/Program.cs")]
    [InlineData("persistence/Migrations/0001_initial.sql")]
    [InlineData("dashboard/package.json")]
    [InlineData("dashboard/package-lock.json")]
    [InlineData("dashboard/wwwroot/css/site.css")]
    [InlineData("agent/TokenStore.cs")]
    public void Context_keeps_what_the_builds_read(string path) =>
        Assert.False(ImageCatalog.Context.IsExcluded(path), $"{path} would be missing from the build context");

    /// <summary>
    /// Every file of every project an image builds is in the context, except build outputs and generated npm
    /// copies (which the image build recreates): a new folder of sources can never silently go missing.
    /// </summary>
    [Fact]
    public void Every_source_file_of_every_image_project_is_in_the_context()
    {
        var context = ImageCatalog.Context;
        var folders = ImageCatalog.All.SelectMany(i => i.Project.Closure()).Select(p => p.Folder).Distinct(StringComparer.Ordinal);
        string[] generated = ["bin", "obj", "node_modules"];

        var missing = new List<string>();
        foreach (var folder in folders)
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, folder), "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(RepoPaths.Root, file).Replace(Path.DirectorySeparatorChar, '/');
                var segments = relative.Split('/');
                if (segments.Any(generated.Contains) || relative.StartsWith("dashboard/wwwroot/lib/", StringComparison.Ordinal)
                    || segments[^1] == "Dockerfile")
                {
                    continue;
                }

                if (context.IsExcluded(relative))
                {
                    missing.Add(relative);
                }
            }
        }

        Assert.Empty(missing);
    }
}
