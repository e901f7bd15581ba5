using System.Xml.Linq;
using Dgon.Testing;

namespace Dgon.Deployment.Tests.Images;

/// <summary>A project file read from the repository: its assembly name and ProjectReferences.</summary>
/// <param name="RelativePath">Path from the repository root, '/'-separated (e.g. api/Dgon.Api.csproj).</param>
/// <param name="AssemblyName">The AssemblyName property, else the file name without extension (MSBuild's default).</param>
/// <param name="References">The ProjectReference paths, resolved to repository-relative paths.</param>
public sealed record Project(string RelativePath, string AssemblyName, IReadOnlyList<string> References)
{
    /// <summary>The folder of the project, e.g. api.</summary>
    public string Folder => RelativePath[..RelativePath.LastIndexOf('/')];

    public static Project Load(string relativePath)
    {
        var full = Path.Combine(RepoPaths.Root, relativePath);
        var xml = XDocument.Load(full);
        var assemblyName = xml.Descendants("AssemblyName").Select(e => e.Value.Trim()).LastOrDefault(v => v.Length > 0)
            ?? Path.GetFileNameWithoutExtension(full);
        var directory = Path.GetDirectoryName(full)!;
        var references = xml.Descendants("ProjectReference")
            .Select(e => (string?)e.Attribute("Include"))
            .OfType<string>()
            .Select(include => ToRelative(Path.GetFullPath(Path.Combine(directory, include.Replace('\\', '/')))))
            .ToList();
        return new Project(relativePath, assemblyName, references);
    }

    /// <summary>This project and every project it references, directly or not (the restore closure).</summary>
    public IReadOnlyList<Project> Closure()
    {
        var seen = new Dictionary<string, Project>(StringComparer.Ordinal);
        var pending = new Stack<Project>([this]);
        while (pending.Count > 0)
        {
            var project = pending.Pop();
            if (!seen.TryAdd(project.RelativePath, project))
            {
                continue;
            }

            foreach (var reference in project.References)
            {
                pending.Push(Load(reference));
            }
        }

        return seen.Values.OrderBy(p => p.RelativePath, StringComparer.Ordinal).ToList();
    }

    private static string ToRelative(string fullPath) =>
        Path.GetRelativePath(RepoPaths.Root, fullPath).Replace(Path.DirectorySeparatorChar, '/');
}
