using Npgsql;

namespace Dgon.Persistence;

/// <summary>
/// Turns <c>DATABASE_URL</c> into an Npgsql connection string. Accepts the URL form the seed uses
/// (<c>postgres://user:password@host:port/database?sslmode=require</c>, also <c>postgresql://</c>) or an Npgsql
/// key=value connection string as it is.
/// </summary>
public static class DatabaseUrl
{
    /// <summary>Converts <paramref name="value"/>; user name and password are URL-decoded; query parameters become keywords.</summary>
    /// <exception cref="InvalidOperationException">The value is neither a postgres URL nor a connection string Npgsql accepts.</exception>
    public static string ToConnectionString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        value = value.Trim();
        if (!value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            && !value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return new NpgsqlConnectionStringBuilder(value).ConnectionString;
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"DATABASE_URL is neither a postgres:// URL nor a valid connection string: {e.Message}", e);
            }
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new InvalidOperationException("DATABASE_URL is not a valid postgres:// URL");
        }

        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } db ? db : "postgres",
        };
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var val = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
            try
            {
                builder[key] = val;
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"DATABASE_URL parameter '{key}' is not understood: {e.Message}", e);
            }
        }

        return builder.ConnectionString;
    }
}
