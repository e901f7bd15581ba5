using Dgon.Testing;
using Npgsql;

namespace Dgon.Api.Tests;

/// <summary>The API hosted in-process on real Kestrel (<see cref="InProcessApiHost"/>), on its own fresh database in the shared PostgreSQL; grace period 3 s.</summary>
public sealed class ApiFixture : IAsyncLifetime
{
    public InProcessApiHost Api { get; private set; } = null!;

    public PostgresServer Postgres { get; private set; } = null!;

    public string DatabaseUrl { get; private set; } = null!;

    public HttpClient Client => Api.Client;

    /// <summary>The API's admin-token client (reads and admin calls).</summary>
    public HttpClient Admin => Api.Admin;

    public async Task InitializeAsync()
    {
        Postgres = await SharedPostgres.GetAsync();
        DatabaseUrl = await Postgres.CreateDatabaseAsync();
        Api = await InProcessApiHost.StartAsync(new ApiHostOptions { DatabaseUrl = DatabaseUrl, GraceSeconds = 3 });
    }

    public async Task DisposeAsync() => await Api.DisposeAsync();

    /// <summary>Runs a scalar query against the API's database.</summary>
    public async Task<T> ScalarAsync<T>(string sql, params object[] args)
    {
        await using var conn = new NpgsqlConnection(Postgres.ConnectionStringForUrl(DatabaseUrl));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        }

        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public static string NewNodeId(string prefix = "n") => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(40, prefix.Length + 33)];
}
