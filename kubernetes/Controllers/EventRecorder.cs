using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Controllers;

/// <summary>
/// Records events.k8s.io/v1 Events about objects (client-go's <c>events.EventRecorder</c>). Best effort: recording
/// never throws.
/// </summary>
public interface IEventRecorder
{
    /// <summary>
    /// Records an Event about <paramref name="regarding"/> in its namespace. Failures (API errors, timeouts,
    /// cancellation) are logged and swallowed.
    /// </summary>
    /// <param name="regarding">The object the event is about (its apiVersion, kind, namespace, name, uid and resourceVersion are referenced).</param>
    /// <param name="type"><c>Normal</c> or <c>Warning</c>.</param>
    /// <param name="reason">CamelCase reason, e.g. <c>Quarantined</c>.</param>
    /// <param name="action">What was done, e.g. <c>Quarantine</c>.</param>
    /// <param name="note">Human-readable text; truncated to 1 KiB (UTF-8).</param>
    /// <param name="ct">Cancellation.</param>
    Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string note, CancellationToken ct);
}

/// <summary>
/// <see cref="IEventRecorder"/> on KubernetesClient's events.k8s.io/v1 API, with the two protections of client-go's
/// event broadcaster so a flapping object cannot flood the namespace with Events:
/// <list type="bullet">
/// <item><b>Series</b> (events/v1 <c>EventSeries</c>, client-go's <c>isomorphic</c> events): a repeat of the same
/// regarding object, type, reason, action and note within <see cref="SeriesWindow"/> (6 min, client-go's
/// <c>finishTime</c>) does not create a new Event; the existing one's <c>series.count</c> and
/// <c>series.lastObservedTime</c> are patched instead.</item>
/// <item><b>Spam filter</b> (client-go's <c>EventSourceObjectSpamFilter</c>): a token bucket per regarding object,
/// <see cref="SpamBurst"/> writes (25) refilled one per <see cref="SpamRefill"/> (5 min). Occurrences beyond it are
/// counted, not written; the next write of that series carries the full count.</item>
/// </list>
/// A new Event is named <c>{regarding.name}.{16 hex}</c> in the regarding object's namespace (<c>default</c> for
/// cluster-scoped ones), eventTime now as MicroTime, note truncated to 1024 UTF-8 bytes (the API's limit). The
/// correlation state is in memory and per process (as client-go's); at most <see cref="MaxTrackedSeries"/> series are kept.
/// </summary>
public sealed partial class EventRecorder : IEventRecorder
{
    /// <summary>The API's limit of <c>note</c>, in bytes.</summary>
    public const int NoteLimitBytes = 1024;

    /// <summary>Writes a regarding object may burst before the spam filter holds them back (client-go: 25).</summary>
    public const int SpamBurst = 25;

    /// <summary>Most series tracked at once; beyond it, the stalest are forgotten.</summary>
    public const int MaxTrackedSeries = 4096;

    /// <summary>How long after its last occurrence a series is still extended (client-go events: 6 minutes).</summary>
    public static readonly TimeSpan SeriesWindow = TimeSpan.FromMinutes(6);

    /// <summary>Spam-filter refill: one write per regarding object per 5 minutes once the burst is spent (client-go's qps 1/300).</summary>
    public static readonly TimeSpan SpamRefill = TimeSpan.FromMinutes(5);

    private readonly IKubernetes _client;
    private readonly string _reportingController;
    private readonly string _reportingInstance;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Series> _series = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    /// <summary>Creates a recorder reporting as <paramref name="reportingController"/> / <paramref name="reportingInstance"/>.</summary>
    public EventRecorder(IKubernetes client, string reportingController, string reportingInstance, ILogger logger, TimeProvider? time = null)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        ArgumentException.ThrowIfNullOrEmpty(reportingController);
        ArgumentException.ThrowIfNullOrEmpty(reportingInstance);
        _reportingController = reportingController;
        _reportingInstance = reportingInstance;
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _time = time ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public async Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string note, CancellationToken ct)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(regarding);
            note = Truncate(note ?? "", NoteLimitBytes);
            var decision = Correlate(regarding, type, reason, action, note);
            switch (decision.Write)
            {
                case WriteKind.Create:
                    var ev = Build(regarding, type, reason, action, note);
                    if (decision.Count > 1)
                    {
                        // Occurrences the spam filter held back before this first write are not lost.
                        ev.Series = new Eventsv1EventSeries { Count = decision.Count, LastObservedTime = decision.Now.UtcDateTime };
                    }

                    var created = await _client.EventsV1.CreateNamespacedEventAsync(ev, ev.Metadata.NamespaceProperty, cancellationToken: ct);
                    Remember(decision.Key, created.Metadata.Name, created.Metadata.NamespaceProperty);
                    break;
                case WriteKind.UpdateSeries:
                    var patch = new JsonObject
                    {
                        ["series"] = new JsonObject
                        {
                            ["count"] = decision.Count,
                            ["lastObservedTime"] = decision.Now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture),
                        },
                    };
                    try
                    {
                        await _client.EventsV1.PatchNamespacedEventAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), decision.Name!, decision.Namespace!, cancellationToken: ct);
                    }
                    catch (Exception e) when (e.IsNotFound())
                    {
                        // The Event expired (the API server's event TTL): start a new one.
                        var fresh = Build(regarding, type, reason, action, note);
                        var recreated = await _client.EventsV1.CreateNamespacedEventAsync(fresh, fresh.Metadata.NamespaceProperty, cancellationToken: ct);
                        Remember(decision.Key, recreated.Metadata.Name, recreated.Metadata.NamespaceProperty);
                    }

                    break;
                default:
                    LogSuppressed(regarding.Kind, regarding.Metadata?.Name, reason, decision.Count);
                    break;
            }
        }
        catch (Exception e)
        {
            LogFailed(regarding?.Kind, regarding?.Metadata?.NamespaceProperty, regarding?.Metadata?.Name, reason, e);
        }
    }

    internal Eventsv1Event Build(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string note)
    {
        var meta = regarding.Metadata;
        var name = meta.Name ?? "object";
        return new Eventsv1Event
        {
            ApiVersion = "events.k8s.io/v1",
            Kind = "Event",
            Metadata = new V1ObjectMeta
            {
                Name = $"{name}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}",
                NamespaceProperty = string.IsNullOrEmpty(meta.NamespaceProperty) ? "default" : meta.NamespaceProperty,
            },
            EventTime = _time.GetUtcNow().UtcDateTime,
            ReportingController = _reportingController,
            ReportingInstance = _reportingInstance,
            Action = action,
            Reason = reason,
            Type = type,
            Note = note,
            Regarding = new V1ObjectReference
            {
                ApiVersion = regarding.ApiVersion,
                Kind = regarding.Kind,
                NamespaceProperty = meta.NamespaceProperty,
                Name = meta.Name,
                Uid = meta.Uid,
                ResourceVersion = meta.ResourceVersion,
            },
        };
    }

    internal Decision Correlate(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string note)
    {
        var now = _time.GetUtcNow();
        var objectKey = regarding.Metadata?.Uid ?? ObjectKey.Of(regarding);
        var key = string.Join('\u001f', objectKey, type, reason, action, note);
        lock (_gate)
        {
            var allowed = TakeToken(objectKey, now);
            if (_series.TryGetValue(key, out var series) && now - series.LastObserved <= SeriesWindow)
            {
                series.Count++;
                series.LastObserved = now;
                return allowed && series.Name is not null
                    ? new Decision(WriteKind.UpdateSeries, key, series.Count, now, series.Name, series.Namespace)
                    : new Decision(allowed ? WriteKind.Create : WriteKind.None, key, series.Count, now, null, null);
            }

            if (_series.Count >= MaxTrackedSeries)
            {
                foreach (var stale in _series.Where(p => now - p.Value.LastObserved > SeriesWindow).Select(p => p.Key).ToList())
                {
                    _series.Remove(stale);
                }

                if (_series.Count >= MaxTrackedSeries)
                {
                    _series.Clear();
                }
            }

            _series[key] = new Series { Count = 1, LastObserved = now };
            return new Decision(allowed ? WriteKind.Create : WriteKind.None, key, 1, now, null, null);
        }
    }

    internal static string Truncate(string text, int maxBytes)
    {
        if (Encoding.UTF8.GetByteCount(text) <= maxBytes)
        {
            return text;
        }

        var length = 0;
        var bytes = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > maxBytes)
            {
                break;
            }

            bytes += rune.Utf8SequenceLength;
            length += rune.Utf16SequenceLength;
        }

        return text[..length];
    }

    private bool TakeToken(string objectKey, DateTimeOffset now)
    {
        if (!_buckets.TryGetValue(objectKey, out var bucket))
        {
            if (_buckets.Count >= MaxTrackedSeries)
            {
                _buckets.Clear();
            }

            bucket = new Bucket { Tokens = SpamBurst, Updated = now };
            _buckets[objectKey] = bucket;
        }

        var refilled = (now - bucket.Updated) / SpamRefill;
        if (refilled > 0)
        {
            bucket.Tokens = Math.Min(SpamBurst, bucket.Tokens + refilled);
            bucket.Updated = now;
        }

        if (bucket.Tokens < 1)
        {
            return false;
        }

        bucket.Tokens--;
        return true;
    }

    private void Remember(string key, string? name, string? ns)
    {
        lock (_gate)
        {
            if (_series.TryGetValue(key, out var series))
            {
                series.Name = name;
                series.Namespace = ns;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "event recorder: could not record event {Reason} for {Kind} {Namespace}/{Name}")]
    private partial void LogFailed(string? kind, string? @namespace, string? name, string reason, Exception error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "event recorder: {Reason} for {Kind} {Name} held back by the spam filter (occurrence {Count})")]
    private partial void LogSuppressed(string? kind, string? name, string reason, int count);

    internal enum WriteKind
    {
        None,
        Create,
        UpdateSeries,
    }

    internal sealed record Decision(WriteKind Write, string Key, int Count, DateTimeOffset Now, string? Name, string? Namespace);

    private sealed class Series
    {
        public int Count { get; set; }

        public DateTimeOffset LastObserved { get; set; }

        public string? Name { get; set; }

        public string? Namespace { get; set; }
    }

    private sealed class Bucket
    {
        public double Tokens { get; set; }

        public DateTimeOffset Updated { get; set; }
    }
}
