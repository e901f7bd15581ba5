namespace Dgon.Deployment.Tests.Images;

/// <summary>The test-side Dockerfile reader: continuations, comments, stages, exec form, ENV/LABEL pairs, flags.</summary>
public sealed class DockerfileParserTests
{
    private const string Sample = """
        # leading comment
        ARG BASE=10.0
        FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS build
        WORKDIR /src
        RUN echo one \
            # a comment inside a continuation is dropped
            && echo two \

            && echo three
        COPY --from=other --chown=1:1 a.txt b/ dest/
        COPY ["with space.txt", "/dest/"]

        from registry.example.com:5000/team/app:1.2.3@sha256:abc as final
        ENV A=1 B="two words" C="" \
            D=x\ y
        ENV LEGACY some value
        LABEL org.opencontainers.image.title="t" other='single quoted'
        EXPOSE 8001/tcp 9000
        USER 10001:10001
        ENTRYPOINT ["dotnet", "App.dll"]
        CMD echo shell form
        """;

    private static readonly Dockerfile Parsed = Dockerfile.Parse(Sample);

    [Fact]
    public void Stages_split_at_from_with_names_tags_and_flags()
    {
        Assert.Equal(2, Parsed.Stages.Count);
        var build = Parsed.Stages[0];
        Assert.Equal("build", build.Name);
        Assert.Equal("mcr.microsoft.com/dotnet/sdk:10.0", build.BaseImage);
        Assert.Equal("10.0", build.BaseImageTag);
        Assert.Equal("$BUILDPLATFORM", build.From.Flags["platform"]);

        var final = Parsed.Final;
        Assert.Equal("final", final.Name); // keywords and AS are case-insensitive
        Assert.Equal("1.2.3", final.BaseImageTag); // the registry port is not a tag
        Assert.Equal("registry.example.com:5000/team/app", final.BaseImageRepository);
        Assert.Null(Dockerfile.Parse("FROM ubuntu").Stages[0].BaseImageTag);
        Assert.Null(Dockerfile.Parse("FROM localhost:5000/ubuntu").Stages[0].BaseImageTag);
    }

    [Fact]
    public void Continuations_join_lines_and_skip_comments_and_blank_lines_inside()
    {
        var run = Assert.Single(Parsed.Stages[0].All("RUN"));

        Assert.Equal(5, run.Line);
        Assert.Equal(["echo", "one", "&&", "echo", "two", "&&", "echo", "three"], run.Words);
    }

    [Fact]
    public void Copy_flags_sources_and_destination_in_both_forms()
    {
        var copies = Parsed.Stages[0].All("COPY").ToList();

        Assert.Equal("other", copies[0].Flags["from"]);
        Assert.Equal("1:1", copies[0].Flags["chown"]);
        Assert.Equal(["a.txt", "b/"], copies[0].CopyPaths.Sources);
        Assert.Equal("dest/", copies[0].CopyPaths.Destination);
        Assert.Equal(["with space.txt"], copies[1].CopyPaths.Sources);
        Assert.Equal("/dest/", copies[1].CopyPaths.Destination);
    }

    [Fact]
    public void Env_and_label_pairs_unquote_values_and_later_assignments_win()
    {
        var final = Parsed.Final;

        Assert.Equal("1", final.Env("A"));
        Assert.Equal("two words", final.Env("B"));
        Assert.Equal("", final.Env("C"));
        Assert.Equal("x y", final.Env("D"));
        Assert.Equal("some value", final.Env("LEGACY"));
        Assert.Null(final.Env("MISSING"));
        Assert.Equal("2", Dockerfile.Parse("FROM a:1 AS x\nENV A=1\nENV A=2").Final.Env("A"));

        var labels = Assert.Single(final.All("LABEL")).Pairs;
        Assert.Equal([new("org.opencontainers.image.title", "t"), new KeyValuePair<string, string>("other", "single quoted")], labels);
    }

    [Fact]
    public void Exec_form_is_json_and_shell_form_is_not()
    {
        Assert.Equal(["dotnet", "App.dll"], Assert.Single(Parsed.Final.All("ENTRYPOINT")).ExecForm);
        Assert.Null(Assert.Single(Parsed.Final.All("CMD")).ExecForm);
        Assert.Equal(["8001/tcp", "9000"], Assert.Single(Parsed.Final.All("EXPOSE")).Words);
        Assert.Equal("10001:10001", Assert.Single(Parsed.Final.All("USER")).Arguments);
    }

    [Fact]
    public void Unsupported_syntax_is_rejected_instead_of_misread()
    {
        Assert.Throws<NotSupportedException>(() => Dockerfile.Parse("FROM a:1 AS x\nRUN <<EOF\necho hi\nEOF\n"));
        Assert.Throws<NotSupportedException>(() => Dockerfile.Parse("# escape=`\nFROM a:1 AS x\n"));
        Assert.Throws<FormatException>(() => Dockerfile.Parse("RUN echo before any FROM"));
    }
}
