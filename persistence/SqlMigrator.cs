using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Dgon.Persistence;

/// <summary>
/// Applies the versioned SQL scripts embedded from <c>Infrastructure/Migrations/NNNN_name.sql</c>, in order, each in
/// its own transaction, recording them in <c>schema_migrations (version, name, checksum, applied_at)</c>.
/// </summary>
/// <remarks>
/// SQL-first migrations (reviewable plain SQL, applied at start-up by every component). Concurrent starters are serialised by a PostgreSQL advisory lock. An applied script whose
/// checksum changed is an error: migrations are append-only.
/// </remarks>
public sealed partial class SqlMigrator(string connectionString, ILogger<SqlMigrator> logger)
{
    private const long AdvisoryLockKey = 0x4447_4F4E_0001; // "DGON" + 1

    /// <summary>One embedded script.</summary>
    /// <param name="Version">Number from the file name.</param>
    /// <param name="Name">File name.</param>
    /// <param name="Sql">Script text.</param>
    public sealed record Script(int Version, string Name, string Sql)
    {
        /// <summary>SHA-256 of the script text, hex.</summary>
        public string Checksum => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Sql)));
    }

    /// <summary>The embedded scripts, ordered by version.</summary>
    public static IReadOnlyList<Script> Scripts { get; } = LoadScripts();

    /// <summary>
    /// Start-up form of <see cref="MigrateAsync"/> for the API and the operator: waits for an unreachable database
    /// (transient errors, retried every 2 s) for at most <paramref name="patience"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The database stayed unreachable, or a migration failed.</exception>
    public async Task MigrateWithRetryAsync(TimeSpan patience, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                await MigrateAsync(cancellationToken);
                return;
            }
            catch (NpgsqlException e) when (e.IsTransient && DateTime.UtcNow < deadline)
            {
                LogWaiting(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            }
            catch (NpgsqlException e)
            {
                throw new InvalidOperationException($"database migration failed: {e.Message}", e);
            }
        }
    }

    /// <summary>Applies every script not yet applied.</summary>
    /// <returns>The versions applied by this call.</returns>
    /// <exception cref="InvalidOperationException">An applied script was changed afterwards.</exception>
    /// <exception cref="NpgsqlException">The database is unreachable or a script failed (its transaction is rolled back).</exception>
    public async Task<IReadOnlyList<int>> MigrateAsync(CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        await ExecAsync(conn, null, $"SELECT pg_advisory_lock({AdvisoryLockKey})", cancellationToken);
        try
        {
            await ExecAsync(conn, null, """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, cancellationToken);

            var applied = new Dictionary<int, string>();
            await using (var cmd = new NpgsqlCommand("SELECT version, checksum FROM schema_migrations", conn))
            await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied[reader.GetInt32(0)] = reader.GetString(1);
                }
            }

            var done = new List<int>();
            foreach (var script in Scripts)
            {
                if (applied.TryGetValue(script.Version, out var checksum))
                {
                    if (checksum != script.Checksum)
                    {
                        throw new InvalidOperationException($"migration {script.Name} was changed after it was applied; add a new migration instead");
                    }

                    continue;
                }

                await using var tx = await conn.BeginTransactionAsync(cancellationToken);
                await ExecAsync(conn, tx, script.Sql, cancellationToken);
                await using (var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", conn, tx))
                {
                    record.Parameters.Add(new NpgsqlParameter { Value = script.Version });
                    record.Parameters.Add(new NpgsqlParameter { Value = script.Name });
                    record.Parameters.Add(new NpgsqlParameter { Value = script.Checksum });
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await tx.CommitAsync(cancellationToken);
                LogApplied(script.Name);
                done.Add(script.Version);
            }

            return done;
        }
        finally
        {
            await ExecAsync(conn, null, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
        }
    }

    private static async Task ExecAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static List<Script> LoadScripts()
    {
        var assembly = Assembly.GetExecutingAssembly();
        const string prefix = "Dgon.Persistence.Migrations.";
        var scripts = new List<Script>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var name = resource[prefix.Length..];
            var digits = new string(name.TakeWhile(char.IsAsciiDigit).ToArray());
            if (digits.Length == 0)
            {
                throw new InvalidOperationException($"migration {name} does not start with a version number");
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            scripts.Add(new Script(int.Parse(digits, System.Globalization.CultureInfo.InvariantCulture), name, reader.ReadToEnd()));
        }

        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));
        return scripts;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied database migration {Name}")]
    private partial void LogApplied(string name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Database not reachable yet ({Message}); retrying")]
    private partial void LogWaiting(string message);
}
