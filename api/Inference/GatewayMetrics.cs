using System.Diagnostics.Metrics;
using Dgon.Api.Observability;

namespace Dgon.Api.Inference;

/// <summary>
/// The gateway's metrics on the API's meter (issue 13; Prometheus names as exported on <c>/metrics</c>):
/// <list type="bullet">
/// <item><c>dgon_gateway_request_duration_seconds{result}</c> (histogram): a chat completion from its arrival to its
/// last byte; result = ok | client_error | no_capacity | upstream_error | timeout | cancelled.</item>
/// <item><c>dgon_gateway_time_to_first_token_seconds</c> (histogram): arrival to the first chunk from the node.</item>
/// <item><c>dgon_gateway_tokens_total{direction}</c> (counter): direction = input | output, from the node's result
/// (tokens/s is its <c>rate()</c>).</item>
/// <item><c>dgon_gateway_in_flight{node}</c> (gauge): tasks in flight per node linked to this replica. Its cardinality is
/// the number of linked nodes, so each replica exports only its own links (a fleet of 10 000 nodes over 4 replicas is
/// about 2 500 series each).</item>
/// <item><c>dgon_gateway_routing_total{outcome}</c> (counter): outcome = routed | failover | no_capacity |
/// unknown_model | forwarded.</item>
/// <item><c>dgon_gateway_receipts_total{status}</c> (counter): receipts stored, status = valid | invalid.</item>
/// </list>
/// Every labelled series with a fixed label set exists from start-up at 0.
/// </summary>
public sealed class GatewayMetrics
{
    /// <summary>Every <c>result</c> of the duration histogram.</summary>
    public static readonly IReadOnlyList<string> Results = ["ok", "client_error", "no_capacity", "upstream_error", "timeout", "cancelled"];

    /// <summary>Every <c>outcome</c> of the routing counter.</summary>
    public static readonly IReadOnlyList<string> RoutingOutcomes = ["routed", "failover", "no_capacity", "unknown_model", "forwarded"];

    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _ttft;
    private readonly Counter<long> _tokens;
    private readonly Counter<long> _routing;
    private readonly Counter<long> _receipts;

    /// <summary>Creates the instruments.</summary>
    /// <param name="meters">The host's meter factory.</param>
    /// <param name="exporter">The host's exporter, taken so it listens before the zeros are added.</param>
    /// <param name="hub">The links whose in-flight counts the gauge reports.</param>
    public GatewayMetrics(IMeterFactory meters, Dgon.Observability.HostMetrics exporter, LinkHub hub)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(exporter);
        ArgumentNullException.ThrowIfNull(hub);
        var meter = meters.Create(ApiMetrics.MeterName);
        var advice = new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets };
        _duration = meter.CreateHistogram("dgon_gateway_request_duration_seconds", "s", "Gateway chat completions from arrival to last byte, by result.", null, advice);
        _ttft = meter.CreateHistogram("dgon_gateway_time_to_first_token_seconds", "s", "Gateway chat completions from arrival to the node's first chunk.", null, advice);
        _tokens = meter.CreateCounter<long>("dgon_gateway_tokens_total", description: "Tokens served through the gateway, by direction (input | output).");
        _routing = meter.CreateCounter<long>("dgon_gateway_routing_total", description: "Routing decisions of the gateway, by outcome.");
        _receipts = meter.CreateCounter<long>("dgon_gateway_receipts_total", description: "Receipts the gateway stored, by signature status.");
        meter.CreateObservableGauge("dgon_gateway_in_flight", () => hub.Links.Select(l => new Measurement<int>(l.InFlight, new KeyValuePair<string, object?>("node", l.NodeId))),
            description: "Tasks in flight per node linked to this replica.");
        foreach (var direction in new[] { "input", "output" })
        {
            _tokens.Add(0, new KeyValuePair<string, object?>("direction", direction));
        }

        foreach (var outcome in RoutingOutcomes)
        {
            _routing.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }

        foreach (var status in new[] { "valid", "invalid" })
        {
            _receipts.Add(0, new KeyValuePair<string, object?>("status", status));
        }
    }

    /// <summary>Records one finished request.</summary>
    public void Request(string result, TimeSpan elapsed) => _duration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("result", result));

    /// <summary>Records the time to the first chunk.</summary>
    public void FirstToken(TimeSpan elapsed) => _ttft.Record(elapsed.TotalSeconds);

    /// <summary>Counts tokens.</summary>
    public void Tokens(int input, int output)
    {
        _tokens.Add(Math.Max(0, input), new KeyValuePair<string, object?>("direction", "input"));
        _tokens.Add(Math.Max(0, output), new KeyValuePair<string, object?>("direction", "output"));
    }

    /// <summary>Counts one routing decision.</summary>
    public void Routing(string outcome) => _routing.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>Counts one stored receipt.</summary>
    public void Receipt(string status) => _receipts.Add(1, new KeyValuePair<string, object?>("status", status));
}
