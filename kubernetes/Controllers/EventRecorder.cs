using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Dgon.Kubernetes.Controllers;

/// <summary>
/// Records events.k8s.io/v1 Events about objects (client-go's events.EventRecorder; a small stand-in for KubeOps'
/// event publisher, which cannot be restored here, behind an interface the official client could implement).
/// Best effort: recording never throws.
/// </summary>
public interface IEventRecorder
{
    /// <summary>
    /// Creates an Event about <paramref name="regarding"/> in its namespace. Failures (API errors, timeouts,
    /// cancellation) are logged and swallowed.
    /// </summary>
    /// <param name="regarding">The object the event is about (its apiVersion, kind, namespace, name, uid and resourceVersion are referenced).</param>
    /// <param name="type"><c>Normal</c> or <c>Warning</c>.</param>
    /// <param name="reason">CamelCase reason, e.g. <c>Quarantined</c>.</param>
    /// <param name="action">What was done, e.g. <c>Quarantine</c>.</param>
    /// <param name="note">Human-readable text; truncated to 1 KiB (UTF-8).</param>
    /// <param name="ct">Cancellation.</param>
    Task RecordAsync(KubeObject regarding, string type, string reason, string action, string note, CancellationToken ct);
}

/// <summary>
/// <see cref="IEventRecorder"/> that POSTs one events.k8s.io/v1 Event per call: name <c>{regarding.name}.{16 hex}</c>,
/// namespace of the regarding object (<c>default</c> for cluster-scoped ones), eventTime now as MicroTime,
/// reportingController/reportingInstance as configured, note truncated to 1024 UTF-8 bytes (the API's limit).
/// No client-side aggregation into series (client-go's broadcaster would merge repeats).
/// </summary>
public sealed partial class EventRecorder : IEventRecorder
{
    /// <summary>The API's limit of <c>note</c>, in bytes.</summary>
    public const int NoteLimitBytes = 1024;

    private readonly IKubeClient _client;
    private readonly string _reportingController;
    private readonly string _reportingInstance;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    /// <summary>Creates a recorder.</summary>
    /// <param name="client">The API client.</param>
    /// <param name="reportingController">The controller name, e.g. <c>dgon.io/operator</c> (required by the API).</param>
    /// <param name="reportingInstance">The instance, e.g. the pod name (required by the API).</param>
    /// <param name="logger">Logger.</param>
    /// <param name="time">Clock; default system.</param>
    public EventRecorder(IKubeClient client, string reportingController, string reportingInstance, ILogger logger, TimeProvider? time = null)
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
    public async Task RecordAsync(KubeObject regarding, string type, string reason, string action, string note, CancellationToken ct)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(regarding);
            var ev = Build(regarding, type, reason, action, note);
            await _client.CreateAsync(KubeResources.Events, ev, ct);
        }
        catch (Exception e)
        {
            LogFailed(regarding?.Kind, regarding?.Metadata.Namespace, regarding?.Metadata.Name, reason, e);
        }
    }

    internal EventsV1Event Build(KubeObject regarding, string type, string reason, string action, string note)
    {
        var meta = regarding.Metadata;
        var name = meta.Name ?? "object";
        return new EventsV1Event
        {
            Metadata = new ObjectMeta
            {
                Name = $"{name}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}",
                Namespace = string.IsNullOrEmpty(meta.Namespace) ? "default" : meta.Namespace,
            },
            EventTime = _time.GetUtcNow(),
            ReportingController = _reportingController,
            ReportingInstance = _reportingInstance,
            Action = action,
            Reason = reason,
            Type = type,
            Note = Truncate(note ?? "", NoteLimitBytes),
            Regarding = new ObjectReference
            {
                ApiVersion = regarding.ApiVersion,
                Kind = regarding.Kind,
                Namespace = meta.Namespace,
                Name = meta.Name,
                Uid = meta.Uid,
                ResourceVersion = meta.ResourceVersion,
            },
        };
    }

    /// <summary>Cuts <paramref name="text"/> to at most <paramref name="maxBytes"/> UTF-8 bytes without splitting a character.</summary>
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "event recorder: could not record event {Reason} for {Kind} {Namespace}/{Name}")]
    private partial void LogFailed(string? kind, string? @namespace, string? name, string reason, Exception error);
}
