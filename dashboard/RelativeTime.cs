using System.Globalization;

namespace Dgon.Dashboard;

/// <summary>Formats heartbeat times for people: "8s ago", "3m ago", "never". Pure: the caller passes "now".</summary>
public static class RelativeTime
{
    /// <summary>Text shown for a node that never sent a heartbeat.</summary>
    public const string Never = "never";

    /// <summary>
    /// How long before <paramref name="now"/> the instant <paramref name="then"/> was, in its largest whole unit:
    /// <c>Ns ago</c> under a minute, <c>Nm ago</c> under an hour, <c>Nh ago</c> under a day, else <c>Nd ago</c>.
    /// Units are truncated, never rounded up. An instant in the future (clock skew) reads <c>0s ago</c>; null reads <c>never</c>.
    /// </summary>
    public static string Format(DateTimeOffset? then, DateTimeOffset now)
    {
        if (then is not { } instant)
        {
            return Never;
        }

        var elapsed = now - instant;
        if (elapsed < TimeSpan.Zero)
        {
            elapsed = TimeSpan.Zero;
        }

        return elapsed switch
        {
            { TotalMinutes: < 1 } => Ago((long)elapsed.TotalSeconds, 's'),
            { TotalHours: < 1 } => Ago((long)elapsed.TotalMinutes, 'm'),
            { TotalDays: < 1 } => Ago((long)elapsed.TotalHours, 'h'),
            _ => Ago((long)elapsed.TotalDays, 'd'),
        };
    }

    /// <summary>The exact instant in UTC for a tooltip, e.g. <c>2025-09-30 10:00:00 UTC</c>; null reads "no heartbeat received yet".</summary>
    public static string FormatExact(DateTimeOffset? then) =>
        then is { } instant
            ? instant.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture)
            : "no heartbeat received yet";

    /// <summary>The instant as an RFC 3339 UTC timestamp for a <c>&lt;time datetime&gt;</c> attribute.</summary>
    public static string FormatMachine(DateTimeOffset then) =>
        then.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Ago(long amount, char unit) => string.Create(CultureInfo.InvariantCulture, $"{amount}{unit} ago");
}
