using System.Globalization;
using System.Net;
using System.Text;
using Dgon.Domain.Auth;

namespace Dgon.Fleet;

/// <summary>
/// The registered nodes of a run: ids and tokens read from a tokens file (one <c>id TAB token</c> a line, as
/// <c>register --out</c> writes it) and, per node, the last <c>X-Node-Ts</c> sent.
/// </summary>
internal sealed class NodeTable
{
    private readonly long[] lastTs;
    private long cursor = -1;

    private NodeTable(string[] ids, string[] tokens)
    {
        Ids = ids;
        Tokens = tokens;
        lastTs = new long[ids.Length];
    }

    public string[] Ids { get; }

    public string[] Tokens { get; }

    public int Count => Ids.Length;

    /// <summary>Reads a tokens file. Throws <see cref="InvalidDataException"/> for a malformed line or an empty file.</summary>
    public static NodeTable Load(string path)
    {
        var ids = new List<string>();
        var tokens = new List<string>();
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var tab = line.IndexOf('\t', StringComparison.Ordinal);
            if (tab <= 0 || tab == line.Length - 1)
            {
                throw new InvalidDataException($"{path}: expected 'id<TAB>token', got '{line}'");
            }

            ids.Add(line[..tab]);
            tokens.Add(line[(tab + 1)..]);
        }

        return ids.Count == 0 ? throw new InvalidDataException($"{path} holds no nodes") : new NodeTable([.. ids], [.. tokens]);
    }

    /// <summary>
    /// The next node in round-robin order and its replay-safe timestamp: ts = max(now, last + 1). A node whose ts would
    /// be more than 60 s ahead of now is skipped for the next one; after a whole round of skips, returns false.
    /// </summary>
    public bool TryNext(out int node, out long ts)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        for (var tries = 0; tries < Count; tries++)
        {
            node = (int)((ulong)Interlocked.Increment(ref cursor) % (ulong)Count);
            if (TryTimestamp(node, now, out ts))
            {
                return true;
            }
        }

        node = -1;
        ts = 0;
        return false;
    }

    /// <summary>Replay-safe timestamp for <paramref name="node"/>: max(now, last + 1), unless that exceeds now + 60.</summary>
    public bool TryTimestamp(int node, long now, out long ts)
    {
        while (true)
        {
            var last = Volatile.Read(ref lastTs[node]);
            ts = Math.Max(now, last + 1);
            if (ts > now + 60)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref lastTs[node], ts, last) == last)
            {
                return true;
            }
        }
    }
}

/// <summary>Which <c>X-Node-Auth</c> scheme the generator signs with (see <see cref="NodeAuth"/>).</summary>
internal enum SignScheme
{
    V1,
    V2,
}

/// <summary>
/// Sends one signed heartbeat: a fixed 66-byte body, signed at send time with <see cref="NodeAuth.Sign"/> (v1) or
/// <see cref="NodeAuth.SignV2"/> (v2). Returns the status code (0 for a transport error, reported through
/// <see cref="RunStats.Error"/>) and, when the response carries <c>heartbeat_interval_s</c>, that value.
/// </summary>
internal sealed class HeartbeatSender(HttpClient client, Uri baseUri, NodeTable nodes, SignScheme scheme)
{
    public const string Path = "/v1/nodes/heartbeat";

    private static readonly byte[] Body = Encoding.UTF8.GetBytes("""{"gpu_util":0.5,"mem_used_gb":11.25,"p95_ms":120.5,"ready":true}""");
    private static readonly byte[] IntervalKey = Encoding.UTF8.GetBytes("\"heartbeat_interval_s\":");
    private readonly Uri uri = new(baseUri, Path);

    public NodeTable Nodes => nodes;

    /// <summary>Signs and sends one heartbeat for <paramref name="node"/> with timestamp <paramref name="ts"/>.</summary>
    public async Task<(int Status, int IntervalS)> SendAsync(int node, long ts, RunStats stats, CancellationToken ct)
    {
        var tsText = ts.ToString(CultureInfo.InvariantCulture);
        var id = nodes.Ids[node];
        var token = nodes.Tokens[node];
        var signature = scheme == SignScheme.V2
            ? NodeAuth.SignV2(token, "POST", Path, id, Body, tsText)
            : NodeAuth.Sign(token, Body, tsText);
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Version = HttpVersion.Version11, Content = new ByteArrayContent(Body) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        request.Headers.TryAddWithoutValidation(NodeAuth.NodeIdHeader, id);
        request.Headers.TryAddWithoutValidation(NodeAuth.TimestampHeader, tsText);
        request.Headers.TryAddWithoutValidation(NodeAuth.SignatureHeader, signature);
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            return ((int)response.StatusCode, IntervalOf(bytes));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // a load generator counts every transport failure and goes on
        catch (Exception e)
#pragma warning restore CA1031
        {
            stats.Error(e);
            return (0, 0);
        }
    }

    /// <summary><c>heartbeat_interval_s</c> of a JSON response (a positive integer), else 0. A byte search, not a parser: the generator stays cheap.</summary>
    internal static int IntervalOf(ReadOnlySpan<byte> json)
    {
        var at = json.IndexOf(IntervalKey);
        if (at < 0)
        {
            return 0;
        }

        var rest = json[(at + IntervalKey.Length)..].TrimStart(" "u8);
        var value = 0;
        var digits = 0;
        while (digits < rest.Length && digits < 6 && rest[digits] is >= (byte)'0' and <= (byte)'9')
        {
            value = (value * 10) + (rest[digits] - '0');
            digits++;
        }

        return value;
    }

    /// <summary>An HttpClient over a SocketsHttpHandler with at most <paramref name="connections"/> keep-alive HTTP/1.1 connections.</summary>
    public static HttpClient CreateClient(int connections) =>
        new(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        })
        {
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
}
