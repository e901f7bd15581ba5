using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Dgon.Api.Configuration;

/// <summary>
/// Part of <c>/readyz</c> (issue 9): Degraded (still 200, the API is usable) with a loud description while an open
/// development mode is on (<c>DGON_OPEN_REGISTRATION</c>, rate limits off, no HSTS behind TLS is not checked),
/// Healthy otherwise. <see cref="WriteJsonAsync"/> writes <c>/readyz</c> as JSON
/// <c>{"status", "checks": {name: {"status", "description"}}}</c> so the warning is visible to a prober.
/// </summary>
public sealed class NodeTrustHealthCheck(NodeTrustOptions trust) : IHealthCheck
{
    /// <summary>The warnings that apply to <paramref name="trust"/>, each one sentence.</summary>
    public static IReadOnlyList<string> Warnings(NodeTrustOptions trust)
    {
        ArgumentNullException.ThrowIfNull(trust);
        var warnings = new List<string>();
        if (trust.OpenRegistration)
        {
            warnings.Add("DGON_OPEN_REGISTRATION=true: anyone who reaches the API can register nodes without a join token and re-register (take over) any node without its key; for local development only");
        }

        if (!trust.RateLimits.Enabled)
        {
            warnings.Add("DGON_RATE_LIMITS=off: registrations, failed authentications and node requests are not rate-limited");
        }

        return warnings;
    }

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var warnings = Warnings(trust);
        return Task.FromResult(warnings.Count == 0
            ? HealthCheckResult.Healthy("join tokens and node keys required; rate limits on")
            : HealthCheckResult.Degraded("INSECURE: " + string.Join("; ", warnings)));
    }

    /// <summary>Writes a health report as <c>application/json</c>.</summary>
    public static async Task WriteJsonAsync(HttpContext context, HealthReport report)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("status", report.Status.ToString());
        json.WriteStartObject("checks");
        foreach (var (name, entry) in report.Entries)
        {
            json.WriteStartObject(name);
            json.WriteString("status", entry.Status.ToString());
            json.WriteString("description", entry.Description ?? entry.Exception?.Message);
            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }
}
