namespace Dgon.Testing;

/// <summary>Locations in the repository and of its build outputs, found from the test assembly's location.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Dgon.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Dgon.sln not found above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository root (the folder holding Dgon.sln).</summary>
    public static string Root => RootPath.Value;

    /// <summary>The build configuration of the running test assembly (Debug or Release), read from its bin path.</summary>
    public static string Configuration
    {
        get
        {
            var parts = AppContext.BaseDirectory.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            var bin = Array.LastIndexOf(parts, "bin");
            return bin >= 0 && bin + 1 < parts.Length ? parts[bin + 1] : "Debug";
        }
    }

    /// <summary>The shared seed documents (<c>../shared/seeds</c> beside the repository).</summary>
    public static string SharedSeeds => Path.GetFullPath(Path.Combine(Root, "..", "shared", "seeds"));

    /// <summary>
    /// Full path of a project's built assembly, e.g. <c>BuiltAssembly("api", "Dgon.Api")</c> →
    /// <c>api/bin/{Configuration}/net10.0/Dgon.Api.dll</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The project was not built in this configuration.</exception>
    public static string BuiltAssembly(string projectDir, string assemblyName)
    {
        var path = Path.Combine(Root, projectDir, "bin", Configuration, "net10.0", assemblyName + ".dll");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{path} is missing: build the solution (dotnet build Dgon.sln -c {Configuration}) first", path);
    }
}
