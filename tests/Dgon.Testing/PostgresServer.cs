using System.Diagnostics;
using Npgsql;

namespace Dgon.Testing;

/// <summary>
/// A real, throwaway PostgreSQL server (the image's PostgreSQL 15 binaries) in a temporary directory on a free
/// loopback port, trust auth for user <c>postgres</c>. As root, initdb and postgres run as the <c>postgres</c> user.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly ManagedProcess _process;
    private readonly string _dataDir;
    private int _databases;

    private PostgresServer(ManagedProcess process, string dataDir, int port)
    {
        _process = process;
        _dataDir = dataDir;
        Port = port;
    }

    /// <summary>TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>URL of the maintenance database.</summary>
    public string AdminUrl => $"postgres://postgres@127.0.0.1:{Port}/postgres";

    /// <summary>Npgsql connection string for a database on this server.</summary>
    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=false";

    /// <summary>The server process (tests may kill it to simulate a database outage).</summary>
    public ManagedProcess Process => _process;

    /// <summary>Initialises a data directory and starts the server; waits until it accepts connections.</summary>
    /// <exception cref="InvalidOperationException">No PostgreSQL binaries found, or the server did not start within 60 s.</exception>
    public static async Task<PostgresServer> StartAsync()
    {
        var bin = FindBinDir();
        var dataDir = Path.Combine(Path.GetTempPath(), "dgon-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dataDir);
        var asRoot = Environment.IsPrivilegedProcess;
        if (asRoot)
        {
            Run("chown", ["-R", "postgres:postgres", dataDir]);
        }

        RunAs(asRoot, Path.Combine(bin, "initdb"), ["-D", Path.Combine(dataDir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
        var port = FreePort.Next();
        string[] serverArgs =
        [
            "-D", Path.Combine(dataDir, "data"), "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-k", dataDir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300",
        ];
        var process = asRoot
            ? ManagedProcess.Start("runuser", ["-u", "postgres", "--", Path.Combine(bin, "postgres"), .. serverArgs])
            : ManagedProcess.Start(Path.Combine(bin, "postgres"), serverArgs);
        var server = new PostgresServer(process, dataDir, port);
        await Eventually.Until(
            async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException("postgres exited: " + process.Dump());
                }

                try
                {
                    await using var conn = new NpgsqlConnection(server.ConnectionString("postgres"));
                    await conn.OpenAsync();
                    return true;
                }
                catch (NpgsqlException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(60),
            "PostgreSQL to accept connections");
        return server;
    }

    /// <summary>Creates a fresh, empty database and returns its URL (<c>postgres://postgres@127.0.0.1:PORT/NAME</c>).</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"dgon_test_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        await using var conn = new NpgsqlConnection(ConnectionString("postgres"));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
        await cmd.ExecuteNonQueryAsync();
        return $"postgres://postgres@127.0.0.1:{Port}/{name}";
    }

    /// <summary>Npgsql connection string for a URL made by <see cref="CreateDatabaseAsync"/>.</summary>
    public string ConnectionStringForUrl(string databaseUrl) => ConnectionString(new Uri(databaseUrl).AbsolutePath.TrimStart('/'));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _process.StopAsync();
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static string FindBinDir()
    {
        var fromEnv = Environment.GetEnvironmentVariable("PG_BIN");
        if (!string.IsNullOrEmpty(fromEnv) && File.Exists(Path.Combine(fromEnv, "initdb")))
        {
            return fromEnv;
        }

        var root = "/usr/lib/postgresql";
        if (Directory.Exists(root))
        {
            var best = Directory.GetDirectories(root)
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault();
            if (best is not null)
            {
                return best;
            }
        }

        throw new InvalidOperationException("PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin: install them with `apt-get install -y postgresql-15` (.ci/run does) or set PG_BIN; tests that need PostgreSQL fail rather than skip");
    }

    private static void RunAs(bool asRoot, string file, string[] args)
    {
        if (asRoot)
        {
            Run("runuser", ["-u", "postgres", "--", file, .. args]);
        }
        else
        {
            Run(file, args);
        }
    }

    private static void Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/tmp" };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}{stdout.Result}");
        }
    }
}

/// <summary>One <see cref="PostgresServer"/> per test process, started on first use and stopped at process exit.</summary>
public static class SharedPostgres
{
    private static readonly Lazy<Task<PostgresServer>> Server = new(async () =>
    {
        var server = await PostgresServer.StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return server;
    });

    /// <summary>The shared server.</summary>
    public static Task<PostgresServer> GetAsync() => Server.Value;
}
