using Dgon.Testing;

namespace Dgon.Deployment.Tests.Images;

/// <summary>
/// The four Dockerfiles against the contract (ports, user, runtime images, assemblies) and against the repository
/// (COPY sources, the .dockerignore context, the ProjectReference closure). The tests build no image; these
/// checks catch what would break a build or a pod without one.
/// </summary>
public sealed class DockerfileTests
{
    public static TheoryData<string> Folders => ImageCatalog.Folders;

    [Theory]
    [MemberData(nameof(Folders))]
    public void Is_multi_stage_with_unique_stage_names(string folder)
    {
        var dockerfile = ImageCatalog.Get(folder).Dockerfile;

        Assert.True(dockerfile.Stages.Count >= 2, $"{folder}/Dockerfile has {dockerfile.Stages.Count} stage(s)");
        Assert.All(dockerfile.Stages, s => Assert.False(string.IsNullOrEmpty(s.Name), $"line {s.From.Line}: FROM without AS <name>"));
        Assert.Equal(dockerfile.Stages.Count, dockerfile.Stages.Select(s => s.Name).Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Base_images_are_pinned_and_dotnet_images_are_10_0(string folder)
    {
        foreach (var stage in ImageCatalog.Get(folder).Dockerfile.Stages)
        {
            var tag = stage.BaseImageTag;
            Assert.False(tag is null, $"line {stage.From.Line}: {stage.BaseImage} has no tag (that means latest)");
            Assert.NotEqual("latest", tag);
            Assert.DoesNotContain("$", stage.BaseImage, StringComparison.Ordinal);
            if (stage.BaseImageRepository.StartsWith("mcr.microsoft.com/dotnet/", StringComparison.Ordinal))
            {
                Assert.Equal("10.0", tag);
            }
            else
            {
                Assert.True(char.IsAsciiDigit(tag![0]), $"line {stage.From.Line}: {stage.BaseImage} should be pinned to a version");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Builds_with_the_sdk_and_runs_on_the_contract_runtime_image(string folder)
    {
        var image = ImageCatalog.Get(folder);
        var dockerfile = image.Dockerfile;

        var publishing = dockerfile.Stages.Single(s => s.All("RUN").Any(r => r.Arguments.Contains("dotnet publish", StringComparison.Ordinal)));
        Assert.Equal(ImageCatalog.SdkImage, publishing.BaseImage);
        Assert.Equal(image.RuntimeImage, dockerfile.Final.BaseImage);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Final_stage_runs_as_numeric_non_root_user_10001(string folder)
    {
        var final = ImageCatalog.Get(folder).Dockerfile.Final;

        var user = Assert.Single(final.All("USER"));
        Assert.Equal($"{ImageCatalog.UserId}:{ImageCatalog.UserId}", user.Arguments);
        Assert.DoesNotContain(final.Instructions.SkipWhile(i => i != user), i => i.Keyword == "RUN");
        // The user exists in /etc/passwd too, so tools that look the user up (ps, id) show a name.
        Assert.Contains(final.All("RUN"), r => r.Arguments.Contains($"useradd --uid {ImageCatalog.UserId} --gid {ImageCatalog.UserId}", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Final_stage_exposes_exactly_the_contract_port(string folder)
    {
        var image = ImageCatalog.Get(folder);

        var exposed = image.Dockerfile.Final.All("EXPOSE").SelectMany(e => e.Words).Select(p => int.Parse(p.Split('/')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();

        Assert.Equal(image.Port is { } port ? [port] : Array.Empty<int>(), exposed);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Runtime_environment_fits_a_read_only_root_filesystem(string folder)
    {
        var image = ImageCatalog.Get(folder);
        var final = image.Dockerfile.Final;

        Assert.Equal("0", final.Env("DOTNET_EnableDiagnostics"));
        Assert.Equal("/tmp", final.Env("HOME"));
        if (image.Port is { } port)
        {
            Assert.Equal($"http://+:{port}", final.Env("ASPNETCORE_URLS"));
            Assert.Equal("", final.Env("ASPNETCORE_HTTP_PORTS")); // the base image's 8080 default is cleared
        }
        else
        {
            Assert.Null(final.Env("ASPNETCORE_URLS"));
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Entrypoint_runs_the_assembly_named_by_the_project(string folder)
    {
        var image = ImageCatalog.Get(folder);
        var final = image.Dockerfile.Final;

        var entrypoint = Assert.Single(final.All("ENTRYPOINT"));
        Assert.Equal(["dotnet", image.Project.AssemblyName + ".dll"], entrypoint.ExecForm);
        Assert.Empty(final.All("CMD"));
        Assert.Equal("/app", final.All("WORKDIR").Last().Arguments);

        var publishStage = image.Dockerfile.Stages.Single(s => s.All("RUN").Any(r => r.Arguments.Contains("dotnet publish", StringComparison.Ordinal)));
        var copy = Assert.Single(final.All("COPY"), c => c.Flags.ContainsKey("from"));
        Assert.Equal(publishStage.Name, copy.Flags["from"]);
        Assert.Equal(["/app"], copy.CopyPaths.Sources);
        Assert.Equal("./", copy.CopyPaths.Destination);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Every_copy_source_exists_and_is_in_the_build_context(string folder)
    {
        var dockerfile = ImageCatalog.Get(folder).Dockerfile;
        var context = ImageCatalog.Context;
        var stageNames = new List<string>();

        foreach (var stage in dockerfile.Stages)
        {
            foreach (var copy in stage.All("COPY").Concat(stage.All("ADD")))
            {
                if (copy.Flags.TryGetValue("from", out var from))
                {
                    Assert.True(stageNames.Contains(from), $"line {copy.Line}: COPY --from={from} is not an earlier stage");
                    continue;
                }

                foreach (var source in copy.CopyPaths.Sources)
                {
                    Assert.DoesNotContain("*", source, StringComparison.Ordinal);
                    var full = Path.Combine(RepoPaths.Root, source);
                    Assert.True(File.Exists(full) || Directory.Exists(full), $"line {copy.Line}: COPY source {source} does not exist in the repository");
                    Assert.False(context.IsExcluded(source), $"line {copy.Line}: COPY source {source} is excluded by .dockerignore");
                    if (Directory.Exists(full))
                    {
                        Assert.Contains(Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories),
                            f => !context.IsExcluded(Path.GetRelativePath(RepoPaths.Root, f)));
                    }
                }
            }

            stageNames.Add(stage.Name!);
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Restore_layer_copies_exactly_the_project_reference_closure(string folder)
    {
        var image = ImageCatalog.Get(folder);
        var build = image.Dockerfile.Stages.Single(s => s.All("RUN").Any(r => r.Arguments.StartsWith("dotnet restore", StringComparison.Ordinal)));
        var restore = build.Instructions.First(i => i.Keyword == "RUN" && i.Arguments.StartsWith("dotnet restore", StringComparison.Ordinal));
        var beforeRestore = build.Instructions.TakeWhile(i => i != restore).Where(i => i.Keyword == "COPY" && !i.Flags.ContainsKey("from"))
            .SelectMany(i => i.CopyPaths.Sources).ToList();
        var closure = image.Project.Closure();

        Assert.Equal($"dotnet restore {image.ProjectPath}", restore.Arguments);
        Assert.Equal(
            closure.Select(p => p.RelativePath).Order(StringComparer.Ordinal),
            beforeRestore.Where(s => s.EndsWith(".csproj", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        // Everything at the root that MSBuild and the SDK read is there before the restore.
        var rootInputs = Directory.EnumerateFiles(RepoPaths.Root)
            .Select(Path.GetFileName)
            .Where(n => n is "global.json" or ".editorconfig" or "NuGet.Config" or "nuget.config"
                || (n!.StartsWith("Directory.", StringComparison.Ordinal) && (n.EndsWith(".props", StringComparison.Ordinal) || n.EndsWith(".targets", StringComparison.Ordinal))));
        Assert.All(rootInputs, n => Assert.Contains(n!, beforeRestore));
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Publish_layer_copies_the_closure_sources_and_does_not_restore_again(string folder)
    {
        var image = ImageCatalog.Get(folder);
        var build = image.Dockerfile.Stages.Single(s => s.All("RUN").Any(r => r.Arguments.Contains("dotnet publish", StringComparison.Ordinal)));
        var restoreIndex = build.Instructions.ToList().FindIndex(i => i.Keyword == "RUN" && i.Arguments.StartsWith("dotnet restore", StringComparison.Ordinal));
        var publish = Assert.Single(build.All("RUN"), r => r.Arguments.Contains("dotnet publish", StringComparison.Ordinal));
        var afterRestore = build.Instructions.Skip(restoreIndex + 1).TakeWhile(i => i != publish)
            .Where(i => i.Keyword == "COPY" && !i.Flags.ContainsKey("from"))
            .Select(i => (i.CopyPaths.Sources.Single(), i.CopyPaths.Destination)).ToList();

        Assert.Equal($"dotnet publish {image.ProjectPath} -c Release -o /app --no-restore -p:UseAppHost=false", publish.Arguments);
        Assert.Equal(
            image.Project.Closure().Select(p => (p.Folder + "/", p.Folder + "/")).Order(),
            afterRestore.Order());
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Final_stage_carries_oci_labels(string folder)
    {
        var labels = ImageCatalog.Get(folder).Dockerfile.Final.All("LABEL").SelectMany(l => l.Pairs).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

        Assert.Equal($"dgon-{folder}", labels["org.opencontainers.image.title"]);
        Assert.False(string.IsNullOrWhiteSpace(labels["org.opencontainers.image.description"]));
        Assert.Equal("${SOURCE_URL}", labels["org.opencontainers.image.source"]);
        Assert.Contains("org.opencontainers.image.revision", labels.Keys);
    }

    [Fact]
    public void Agent_keeps_its_token_in_a_volume_owned_by_10001()
    {
        var final = ImageCatalog.Get("agent").Dockerfile.Final;

        Assert.Equal("/var/lib/dgon", final.Env("DGON_CONFIG_DIR"));
        Assert.Equal(["/var/lib/dgon"], Assert.Single(final.All("VOLUME")).ExecForm);
        // Created before VOLUME, so a new volume is initialised with this owner and the mode the agent itself uses.
        var create = Assert.Single(final.All("RUN"), r => r.Arguments.Contains("/var/lib/dgon", StringComparison.Ordinal));
        Assert.Contains("install -d -o 10001 -g 10001 -m 0700 /var/lib/dgon", create.Arguments, StringComparison.Ordinal);
        Assert.True(create.Line < final.All("VOLUME").Single().Line);
    }

    [Fact]
    public void Dashboard_build_stage_has_node_and_npm_for_npm_ci()
    {
        var dockerfile = ImageCatalog.Get("dashboard").Dockerfile;
        var build = dockerfile.StageNamed("build");

        var nodeStages = build.All("COPY").Where(c => c.Flags.ContainsKey("from")).Select(c => dockerfile.StageNamed(c.Flags["from"])).ToList();
        Assert.NotEmpty(nodeStages);
        Assert.All(nodeStages, s => Assert.Equal("node", s.BaseImageRepository));
        Assert.Contains(build.All("RUN"), r => r.Arguments.Contains("npm --version", StringComparison.Ordinal));
        // package.json and the lock file reach the build with the dashboard folder; node_modules never does.
        Assert.False(ImageCatalog.Context.IsExcluded("dashboard/package-lock.json"));
        Assert.True(ImageCatalog.Context.IsExcluded("dashboard/node_modules/htmx.org/package.json"));
    }
}
