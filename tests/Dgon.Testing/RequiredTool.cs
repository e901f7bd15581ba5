using System.Diagnostics;

namespace Dgon.Testing;

/// <summary>
/// Finds the external tools tests depend on. A missing tool fails the test with a message naming it and how
/// <c>.ci/run</c> installs it; tests never skip or pass without their tool.
/// </summary>
public static class RequiredTool
{
    /// <summary>How <c>.ci/run</c> installs Python 3 with requests (for the seed's agent).</summary>
    public const string PythonInstall = "`apt-get install -y python3 python3-requests` (.ci/run installs python3-requests when `import requests` fails)";

    /// <summary>
    /// The full path of <paramref name="name"/>: itself when it is an absolute path to an existing file, else the first
    /// match on <c>PATH</c>.
    /// </summary>
    /// <param name="name">An executable name (<c>python3</c>) or absolute path (<c>/usr/bin/chromium</c>).</param>
    /// <param name="install">How to install it, e.g. the apt command <c>.ci/run</c> uses.</param>
    /// <exception cref="InvalidOperationException">Not found; the message names the tool and <paramref name="install"/>.</exception>
    public static string Find(string name, string install)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Path.IsPathRooted(name))
        {
            return File.Exists(name) ? name : throw Missing(name, install);
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw Missing(name, install);
    }

    /// <summary>The full path of <c>python3</c>, checked to import <c>requests</c> (the seed agent's one dependency).</summary>
    /// <exception cref="InvalidOperationException">python3 is missing or lacks requests; the message says how to install them.</exception>
    public static string Python3WithRequests()
    {
        var python = Find("python3", PythonInstall);
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import requests");
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(30_000) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{python} cannot `import requests` ({stderr.Result.Trim()}): install it with {PythonInstall}");
        }

        return python;
    }

    private static InvalidOperationException Missing(string name, string install) =>
        new($"required tool {name} is missing: install it with {install}; tests that need it fail rather than skip");
}
