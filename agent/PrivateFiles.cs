namespace Dgon.Agent;

/// <summary>
/// Owner-only files in the config directory (token and key files): directory mode 0700, files created 0600 and
/// written atomically (a temporary file in the same directory, flushed to disk, then renamed). Unix modes are applied
/// only off Windows.
/// </summary>
internal static class PrivateFiles
{
    /// <summary>Mode of the config directory: owner read/write/execute (0700).</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Mode of a secret file: owner read/write (0600).</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates <paramref name="directory"/> with mode 0700 if needed and tightens an existing one to 0700.</summary>
    /// <exception cref="IOException">It cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">Permission denied.</exception>
    public static void EnsureDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }

        Directory.CreateDirectory(directory, DirectoryMode);
        if (File.GetUnixFileMode(directory) != DirectoryMode)
        {
            File.SetUnixFileMode(directory, DirectoryMode);
        }
    }

    /// <summary>
    /// Writes <paramref name="path"/> atomically: a temporary file <c>.{name}.{guid}.tmp</c> created with mode 0600 in the
    /// same directory, filled by <paramref name="write"/>, flushed to disk and renamed to <paramref name="path"/>.
    /// </summary>
    /// <param name="path">Target file (its directory must exist, see <see cref="EnsureDirectory"/>).</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="overwrite">Whether an existing file is replaced; when false and it exists, <see cref="IOException"/> is thrown and the file is left as it was.</param>
    /// <exception cref="IOException">The file cannot be written, or it exists and <paramref name="overwrite"/> is false.</exception>
    /// <exception cref="UnauthorizedAccessException">Permission denied.</exception>
    public static void WriteAtomic(string path, Action<Stream> write, bool overwrite)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        try
        {
            using (var stream = new FileStream(temp, options))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // best effort: a leftover .tmp file holds no more than the real file would
        }
        catch (UnauthorizedAccessException)
        {
            // same
        }
    }
}
