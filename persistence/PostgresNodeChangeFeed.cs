using Dgon.Domain.Ports;
using Npgsql;

namespace Dgon.Persistence;

/// <summary>
/// <see cref="INodeChangeFeed"/> on PostgreSQL <c>LISTEN</c>/<c>NOTIFY</c>: one dedicated connection (outside the
/// pool's rotation) listening on <see cref="NodeChannel"/> (payload: node id) and <see cref="ClockChannel"/>
/// (payload: node id, space, holder). Notifications are sent inside the writing transactions
/// (<see cref="Notify"/>), so they are delivered when, and only if, the change commits.
/// </summary>
public sealed class PostgresNodeChangeFeed(NpgsqlDataSource dataSource) : INodeChangeFeed
{
    /// <summary>Channel of node changes: registration, rotation, reset, phase change, deletion.</summary>
    public const string NodeChannel = "dgon_node_changed";

    /// <summary>Channel of request-clock claims.</summary>
    public const string ClockChannel = "dgon_request_clock";

    /// <summary>How long the connection may be silent before a keepalive query checks it.</summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>SQL that announces a change of the node in parameter <c>{0}</c> (for EF's <c>ExecuteSql</c>).</summary>
    public const string Notify = $"SELECT pg_notify('{NodeChannel}', {{0}})";

    /// <inheritdoc />
    /// <exception cref="NpgsqlException">The connection failed or was lost.</exception>
    public async Task ListenAsync(Func<CancellationToken, Task> onConnected, Action<string> onNodeChanged, Action<ClockClaimed> onClockClaimed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onConnected);
        ArgumentNullException.ThrowIfNull(onNodeChanged);
        ArgumentNullException.ThrowIfNull(onClockClaimed);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        connection.Notification += (_, e) =>
        {
            if (e.Channel == NodeChannel)
            {
                onNodeChanged(e.Payload);
            }
            else if (e.Channel == ClockChannel && e.Payload.Split(' ', 2) is [var node, var holder])
            {
                onClockClaimed(new ClockClaimed(node, holder));
            }
        };
        await using (var listen = new NpgsqlCommand($"LISTEN {NodeChannel}; LISTEN {ClockChannel}", connection))
        {
            await listen.ExecuteNonQueryAsync(cancellationToken);
        }

        await onConnected(cancellationToken);
        while (!cancellationToken.IsCancellationRequested)
        {
            if (!await connection.WaitAsync(KeepAlive, cancellationToken))
            {
                await using var ping = new NpgsqlCommand("SELECT 1", connection);
                await ping.ExecuteScalarAsync(cancellationToken);
            }
        }
    }
}
