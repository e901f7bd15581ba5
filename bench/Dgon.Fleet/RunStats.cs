using System.Collections.Concurrent;
using System.Globalization;
using HdrHistogram;

namespace Dgon.Fleet;

/// <summary>
/// Counters of one run: latency histogram (microseconds, HdrHistogram, 3 significant digits, up to 60 s), responses by
/// status code and transport errors by exception type. Thread-safe; recording takes a short lock.
/// </summary>
internal sealed class RunStats
{
    private readonly LongHistogram histogram = new(60_000_000, 3);
    private readonly Lock gate = new();
    private readonly long[] byStatus = new long[600];
    private readonly ConcurrentDictionary<string, long> errors = new(StringComparer.Ordinal);

    /// <summary>Whether results are counted (false during warm-up).</summary>
    public volatile bool Counting = true;

    public long Skipped;

    public long Requests => histogram.TotalCount;

    public long Accepted => Interlocked.Read(ref byStatus[200]);

    public long Errors => errors.Values.Sum();

    /// <summary>Records one response (<paramref name="status"/> 0 = transport error, counted by <see cref="Error"/> only).</summary>
    public void Record(int status, long micros)
    {
        if (!Counting)
        {
            return;
        }

        if (status is > 0 and < 600)
        {
            Interlocked.Increment(ref byStatus[status]);
        }

        lock (gate)
        {
            histogram.RecordValue(Math.Clamp(micros, 0, 60_000_000));
        }
    }

    public void Error(Exception e)
    {
        if (Counting)
        {
            var name = e is HttpRequestException { InnerException: { } inner } ? $"{e.GetType().Name}({inner.GetType().Name}: {inner.Message})" : $"{e.GetType().Name}: {e.Message}";
            errors.AddOrUpdate(name, 1, (_, n) => n + 1);
        }
    }

    public double Percentile(double p)
    {
        lock (gate)
        {
            return histogram.TotalCount == 0 ? double.NaN : histogram.GetValueAtPercentile(p) / 1000.0;
        }
    }

    public double MaxMs()
    {
        lock (gate)
        {
            return histogram.TotalCount == 0 ? double.NaN : histogram.GetMaxValue() / 1000.0;
        }
    }

    public string StatusText()
    {
        var parts = new List<string>();
        for (var code = 0; code < byStatus.Length; code++)
        {
            var n = Interlocked.Read(ref byStatus[code]);
            if (n > 0)
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"{code}={n}"));
            }
        }

        return parts.Count == 0 ? "none" : string.Join(' ', parts);
    }

    public string ErrorText() =>
        errors.IsEmpty ? "none" : string.Join("; ", errors.OrderByDescending(kv => kv.Value).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Value} x {kv.Key}")));

    public string LatencyText() =>
        string.Create(CultureInfo.InvariantCulture, $"p50 {Percentile(50):F2} ms  p90 {Percentile(90):F2} ms  p99 {Percentile(99):F2} ms  max {MaxMs():F2} ms");
}
