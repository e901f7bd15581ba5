using System.Collections.Concurrent;
using System.Net;
using Dgon.Api.Http;
using Npgsql;

namespace Dgon.Api.Accounts;

/// <summary>An active IP ban.</summary>
/// <param name="Id">Row id.</param>
/// <param name="Network">Banned address or network.</param>
/// <param name="Reason">Why.</param>
/// <param name="CreatedBy">Actor id, or <c>system</c> for automatic bans.</param>
/// <param name="Automatic">Set by the API after repeated authentication failures.</param>
/// <param name="CreatedAt">Creation time.</param>
/// <param name="ExpiresAt">Expiry, or null until lifted.</param>
/// <param name="LiftedAt">When lifted, or null.</param>
public sealed record IpBan(long Id, IPNetwork Network, string Reason, string CreatedBy, bool Automatic, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LiftedAt);

/// <summary>Automatic bans: <see cref="Failures"/> failed authentications from one address within <see cref="Window"/> ban it for <see cref="Duration"/>.</summary>
/// <param name="Failures">Threshold (<c>DGON_AUTO_BAN_FAILURES</c>, default 20; 0 turns automatic bans off).</param>
/// <param name="Window">Counting window (<c>DGON_AUTO_BAN_WINDOW_SECONDS</c>, default 600).</param>
/// <param name="Duration">Ban length (<c>DGON_AUTO_BAN_SECONDS</c>, default 3600).</param>
public sealed record AutoBanOptions(int Failures, TimeSpan Window, TimeSpan Duration)
{
    /// <summary>Defaults: 20 failures in 10 min → 1 h.</summary>
    public static AutoBanOptions Default { get; } = new(20, TimeSpan.FromMinutes(10), TimeSpan.FromHours(1));
}

/// <summary>
/// IP bans (issue 12, seed 004's <c>IPBan (ip_address, reason, expires_at)</c>): the table <c>ip_bans</c>, written
/// only through this class (admins' bans and lifts, and automatic bans after repeated authentication failures), and
/// an in-memory copy of the active bans that every request is checked against. Each write announces itself with
/// <c>pg_notify('dgon_ip_bans')</c> in its transaction, and every replica listens on that channel and reloads, so a
/// ban or a lift takes effect on every replica within a round trip; the copy is also reloaded every 30 s and on
/// each reconnection. Loopback addresses are never banned automatically (a local admin cannot lock themselves out).
/// </summary>
public sealed partial class IpBanList(NpgsqlDataSource dataSource, AutoBanOptions autoBan, TimeProvider clock, ILogger<IpBanList> logger) : BackgroundService
{
    /// <summary>Notification channel.</summary>
    public const string Channel = "dgon_ip_bans";

    /// <summary>Actor id of automatic bans.</summary>
    public const string SystemActor = "system";

    private static readonly TimeSpan Reload = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<IPAddress, (DateTimeOffset Start, int Count)> _failures = new();
    private volatile IpBan[] _active = [];
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Raised after an automatic ban was stored (for the audit log): the ban and the address.</summary>
    public event Action<IpBan>? AutomaticBan;

    /// <summary>Completes once the first load finished.</summary>
    public Task Loaded => _loaded.Task;

    /// <summary>The active ban covering <paramref name="address"/>, or null.</summary>
    public IpBan? Match(IPAddress? address)
    {
        if (address is null)
        {
            return null;
        }

        address = Normalize(address);
        var now = clock.GetUtcNow();
        foreach (var ban in _active)
        {
            if ((ban.ExpiresAt is null || ban.ExpiresAt > now) && ban.Network.Contains(address))
            {
                return ban;
            }
        }

        return null;
    }

    /// <summary>Stores a ban and announces it.</summary>
    /// <exception cref="NpgsqlException">The database failed.</exception>
    public async Task<IpBan> BanAsync(IPNetwork network, string reason, string createdBy, bool automatic, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using var insert = new NpgsqlCommand(
            "INSERT INTO ip_bans (network, reason, created_by, automatic, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at", connection, tx);
        insert.Parameters.Add(new NpgsqlParameter { Value = network, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Cidr });
        insert.Parameters.Add(new NpgsqlParameter { Value = reason });
        insert.Parameters.Add(new NpgsqlParameter { Value = createdBy });
        insert.Parameters.Add(new NpgsqlParameter { Value = automatic });
        insert.Parameters.Add(new NpgsqlParameter { Value = clock.GetUtcNow().UtcDateTime });
        insert.Parameters.Add(new NpgsqlParameter { Value = (object?)expiresAt?.UtcDateTime ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        long id;
        DateTime created;
        await using (var reader = await insert.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            id = reader.GetInt64(0);
            created = reader.GetDateTime(1);
        }

        await NotifyAsync(connection, tx, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        await ReloadAsync(cancellationToken);
        return new IpBan(id, network, reason, createdBy, automatic, new DateTimeOffset(created, TimeSpan.Zero), expiresAt, null);
    }

    /// <summary>Lifts a ban. False when there is no active ban with this id.</summary>
    public async Task<bool> LiftAsync(long id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using var update = new NpgsqlCommand("UPDATE ip_bans SET lifted_at = $2 WHERE id = $1 AND lifted_at IS NULL", connection, tx);
        update.Parameters.Add(new NpgsqlParameter { Value = id });
        update.Parameters.Add(new NpgsqlParameter { Value = clock.GetUtcNow().UtcDateTime });
        var rows = await update.ExecuteNonQueryAsync(cancellationToken);
        await NotifyAsync(connection, tx, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        await ReloadAsync(cancellationToken);
        return rows > 0;
    }

    /// <summary>Bans from the table, newest first: active ones only, or every ban when <paramref name="all"/>.</summary>
    public async Task<IReadOnlyList<IpBan>> ListAsync(bool all, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        await using var command = dataSource.CreateCommand(
            "SELECT id, network, reason, created_by, automatic, created_at, expires_at, lifted_at FROM ip_bans"
            + (all ? "" : " WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)")
            + " ORDER BY id DESC LIMIT 10000");
        if (!all)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = now });
        }

        var bans = new List<IpBan>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            bans.Add(new IpBan(
                reader.GetInt64(0),
                reader.GetFieldValue<IPNetwork>(1),
                reader.GetString(2),
                reader.GetString(3),
                reader.GetBoolean(4),
                Utc(reader.GetDateTime(5)),
                reader.IsDBNull(6) ? null : Utc(reader.GetDateTime(6)),
                reader.IsDBNull(7) ? null : Utc(reader.GetDateTime(7))));
        }

        return bans;
    }

    /// <summary>
    /// Counts a failed authentication (a wrong password, an unknown or revoked bearer credential) from
    /// <paramref name="address"/>; the <see cref="AutoBanOptions.Failures"/>-th within the window bans the address.
    /// </summary>
    public async Task RecordFailureAsync(IPAddress? address, CancellationToken cancellationToken)
    {
        if (address is null || autoBan.Failures <= 0)
        {
            return;
        }

        address = Normalize(address);
        if (IPAddress.IsLoopback(address))
        {
            return;
        }

        var now = clock.GetUtcNow();
        var entry = _failures.AddOrUpdate(address, (now, 1), (_, e) => now - e.Start > autoBan.Window ? (now, 1) : (e.Start, e.Count + 1));
        if (_failures.Count > 100_000)
        {
            foreach (var old in _failures.Where(f => now - f.Value.Start > autoBan.Window).Select(f => f.Key).ToList())
            {
                _failures.TryRemove(old, out _);
            }
        }

        if (entry.Count != autoBan.Failures || Match(address) is not null)
        {
            return;
        }

        var network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        var ban = await BanAsync(network, $"{autoBan.Failures} failed authentications within {autoBan.Window.TotalSeconds:0} s", SystemActor, automatic: true, now + autoBan.Duration, cancellationToken);
        _failures.TryRemove(address, out _);
        LogAutoBan(logger, address.ToString(), autoBan.Failures, ban.ExpiresAt!.Value);
        AutomaticBan?.Invoke(ban);
    }

    /// <summary>Reloads the active bans from the table.</summary>
    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        _active = [.. await ListAsync(all: false, cancellationToken)];
        _loaded.TrySetResult();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                var changed = 0;
                connection.Notification += (_, _) => Interlocked.Exchange(ref changed, 1);
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                await ReloadAsync(stoppingToken);
                backoff = TimeSpan.FromSeconds(1);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(Reload, stoppingToken);
                    Interlocked.Exchange(ref changed, 0);
                    await ReloadAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                LogListenFailed(logger, e.Message, backoff.TotalSeconds);
                await Task.Delay(backoff, clock, stoppingToken);
                backoff = TimeSpan.FromSeconds(Math.Min(30, backoff.TotalSeconds * 2));
            }
        }
    }

    /// <summary>
    /// Middleware: a request from a banned address gets 403 problem+json (<see cref="Problems.AddressBanned"/>);
    /// health probes and <c>/metrics</c> are exempt (the kubelet and Prometheus are not clients to ban).
    /// </summary>
    public async Task RefuseBannedAsync(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var path = context.Request.Path;
        if (!path.StartsWithSegments("/healthz") && !path.StartsWithSegments("/readyz") && !path.StartsWithSegments("/metrics")
            && Match(context.Connection.RemoteIpAddress) is { } ban)
        {
            await Problems.AddressBanned(ban.ExpiresAt).ExecuteAsync(context);
            return;
        }

        await next(context);
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));

    private static async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken cancellationToken)
    {
        await using var notify = new NpgsqlCommand($"SELECT pg_notify('{Channel}', '')", connection, tx);
        await notify.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Banned {Address} automatically after {Failures} failed authentications, until {Until:o}")]
    private static partial void LogAutoBan(ILogger logger, string address, int failures, DateTimeOffset until);

    [LoggerMessage(Level = LogLevel.Warning, Message = "IP ban feed: {Error}; retrying in {Seconds} s")]
    private static partial void LogListenFailed(ILogger logger, string error, double seconds);
}
