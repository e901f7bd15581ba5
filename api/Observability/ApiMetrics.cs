using System.Diagnostics.Metrics;
using Dgon.Domain.Auth;

namespace Dgon.Api.Observability;

/// <summary>
/// The API's counters on the meter <see cref="MeterName"/> (exported on <c>/metrics</c>; issue 4). All label values
/// are from small fixed sets:
/// <c>dgon_heartbeats_total{result}</c> and <c>dgon_receipts_total{result}</c> with result = accepted | duplicate
/// (receipts only: same id and content again) | unauthorized | forbidden | conflict | rate_limited | invalid | unavailable | error;
/// <c>dgon_hmac_failures_total{reason}</c> with reason = missing_headers | invalid_timestamp | stale_timestamp |
/// unknown_node | bad_signature (seed 000's authentication steps) | replayed | secret_unreadable (issue 9). <c>dgon_kubernetes_status_writes_total{reason}</c>
/// is counted by the Kubernetes-mode registry on the same meter. Every series of these three counters exists from
/// start-up with value 0 (<see cref="Results"/> × <see cref="HmacReasons"/>), so <c>rate()</c> and <c>increase()</c>
/// in alert rules see a first failure instead of a series that appears with it.
/// </summary>
public sealed class ApiMetrics
{
    /// <summary>Name of the API's meter.</summary>
    public const string MeterName = "Dgon.Api";

    /// <summary>Outcome of a request whose response was 200 for an already stored receipt.</summary>
    public const string Duplicate = "duplicate";

    /// <summary>Every <c>result</c> of <c>dgon_receipts_total</c> (<c>dgon_heartbeats_total</c>: all but <see cref="Duplicate"/>).</summary>
    public static readonly IReadOnlyList<string> Results = ["accepted", Duplicate, "unauthorized", "forbidden", "conflict", "rate_limited", "invalid", "unavailable", "error"];

    /// <summary>Every <c>reason</c> of <c>dgon_hmac_failures_total</c>, in the order of <see cref="NodeAuthResult"/>.</summary>
    public static readonly IReadOnlyList<NodeAuthResult> HmacReasons =
    [
        NodeAuthResult.MissingHeaders, NodeAuthResult.InvalidTimestamp, NodeAuthResult.StaleTimestamp, NodeAuthResult.UnknownNode,
        NodeAuthResult.BadSignature, NodeAuthResult.Replayed, NodeAuthResult.SecretUnreadable,
    ];

    private const string OutcomeItem = "dgon.outcome";

    private readonly Counter<long> _heartbeats;
    private readonly Counter<long> _receipts;
    private readonly Counter<long> _hmacFailures;

    /// <summary>Creates the counters on the API's meter, each known series at 0.</summary>
    /// <param name="meters">The host's meter factory.</param>
    /// <param name="exporter">The host's exporter: taken so that it listens before the zeros below are added.</param>
    public ApiMetrics(IMeterFactory meters, Dgon.Observability.HostMetrics exporter)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(exporter);
        var meter = meters.Create(MeterName);
        _heartbeats = meter.CreateCounter<long>("dgon_heartbeats_total", description: "Heartbeat requests by result.");
        _receipts = meter.CreateCounter<long>("dgon_receipts_total", description: "Receipt submissions by result.");
        _hmacFailures = meter.CreateCounter<long>("dgon_hmac_failures_total", description: "Node requests refused by HMAC authentication, by reason.");
        foreach (var result in Results)
        {
            _receipts.Add(0, new KeyValuePair<string, object?>("result", result));
            if (result != Duplicate)
            {
                _heartbeats.Add(0, new KeyValuePair<string, object?>("result", result));
            }
        }

        foreach (var reason in HmacReasons)
        {
            _hmacFailures.Add(0, new KeyValuePair<string, object?>("reason", ReasonLabel(reason)));
        }
    }

    /// <summary>Counts one heartbeat request.</summary>
    public void Heartbeat(string result) => _heartbeats.Add(1, new KeyValuePair<string, object?>("result", result));

    /// <summary>Counts one receipt submission.</summary>
    public void Receipt(string result) => _receipts.Add(1, new KeyValuePair<string, object?>("result", result));

    /// <summary>Counts one authentication failure.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reason"/> is <see cref="NodeAuthResult.Ok"/>.</exception>
    public void HmacFailure(NodeAuthResult reason) => _hmacFailures.Add(1, new KeyValuePair<string, object?>("reason", ReasonLabel(reason)));

    private static string ReasonLabel(NodeAuthResult reason) => reason switch
    {
        NodeAuthResult.MissingHeaders => "missing_headers",
        NodeAuthResult.InvalidTimestamp => "invalid_timestamp",
        NodeAuthResult.StaleTimestamp => "stale_timestamp",
        NodeAuthResult.UnknownNode => "unknown_node",
        NodeAuthResult.BadSignature => "bad_signature",
        NodeAuthResult.Replayed => "replayed",
        NodeAuthResult.SecretUnreadable => "secret_unreadable",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "not a failure"),
    };

    /// <summary>Overrides the status-derived outcome of the current request (e.g. <see cref="Duplicate"/>).</summary>
    public static void SetOutcome(HttpContext context, string outcome)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Items[OutcomeItem] = outcome;
    }

    /// <summary>The outcome label for a response status (RFC 9110 classes as the API uses them).</summary>
    public static string OutcomeOf(int status) => status switch
    {
        >= 200 and < 300 => "accepted",
        StatusCodes.Status401Unauthorized => "unauthorized",
        StatusCodes.Status403Forbidden => "forbidden",
        StatusCodes.Status409Conflict => "conflict",
        StatusCodes.Status429TooManyRequests => "rate_limited",
        StatusCodes.Status503ServiceUnavailable => "unavailable",
        >= 400 and < 500 => "invalid",
        _ => "error",
    };

    /// <summary>
    /// An endpoint filter that counts each request once with its outcome: from the result's status code, the override
    /// set by <see cref="SetOutcome"/>, or, when the handler throws, <paramref name="statusForException"/> (the status
    /// the exception handler will answer with).
    /// </summary>
    public static RouteHandlerBuilder CountOutcomes(RouteHandlerBuilder endpoint, Action<ApiMetrics, string> count, Func<Exception, int> statusForException)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var metrics = http.RequestServices.GetRequiredService<ApiMetrics>();
            object? result;
            try
            {
                result = await next(context);
            }
            catch (Exception e) when (!http.RequestAborted.IsCancellationRequested)
            {
                count(metrics, OutcomeOf(statusForException(e)));
                throw;
            }

            var status = result is IStatusCodeHttpResult { StatusCode: { } code } ? code : StatusCodes.Status200OK;
            count(metrics, http.Items[OutcomeItem] as string ?? OutcomeOf(status));
            return result;
        });
    }
}
