using Dgon.Testing;

namespace Dgon.Deployment.Tests.Images;

/// <summary>One container image of the contract (/work/issue4-contract.md): where it is built from and how it runs.</summary>
/// <param name="Folder">Project folder, which also holds the Dockerfile (api, operator, dashboard, agent).</param>
/// <param name="ProjectFile">The project file inside <paramref name="Folder"/>.</param>
/// <param name="Port">The container port, or null for the agent (outbound only, no HTTP server).</param>
/// <param name="RuntimeImage">The final stage's base image.</param>
public sealed record ImageSpec(string Folder, string ProjectFile, int? Port, string RuntimeImage)
{
    public string DockerfilePath => Path.Combine(RepoPaths.Root, Folder, "Dockerfile");

    public string ProjectPath => $"{Folder}/{ProjectFile}";

    public Dockerfile Dockerfile => Dockerfile.Load(DockerfilePath);

    public Project Project => Project.Load(ProjectPath);

    public override string ToString() => Folder;
}

public static class ImageCatalog
{
    public const int UserId = 10001;
    public const string SdkImage = "mcr.microsoft.com/dotnet/sdk:10.0";

    public static readonly IReadOnlyList<ImageSpec> All =
    [
        new("api", "Dgon.Api.csproj", 8001, "mcr.microsoft.com/dotnet/aspnet:10.0"),
        new("operator", "Dgon.Operator.csproj", 8002, "mcr.microsoft.com/dotnet/aspnet:10.0"),
        new("dashboard", "Dgon.Dashboard.csproj", 3000, "mcr.microsoft.com/dotnet/aspnet:10.0"),
        new("agent", "Dgon.Agent.csproj", null, "mcr.microsoft.com/dotnet/runtime:10.0"),
    ];

    public static TheoryData<string> Folders => new(All.Select(i => i.Folder));

    public static ImageSpec Get(string folder) => All.Single(i => i.Folder == folder);

    public static DockerIgnore Context => DockerIgnore.Load(Path.Combine(RepoPaths.Root, ".dockerignore"));
}
