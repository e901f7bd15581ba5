using System.Globalization;

namespace Dgon.Persistence;

/// <summary>Parsing of the numeric settings the API and the operator share (environment variables).</summary>
public static class Settings
{
    /// <summary>Reads a positive number of seconds, at most one day (86400), or returns the default when unset.</summary>
    /// <param name="name">Variable name, for the error message.</param>
    /// <param name="text">Its value, or null/blank when unset.</param>
    /// <param name="defaultValue">Value when unset.</param>
    /// <exception cref="InvalidOperationException">The value is not a number in (0, 86400].</exception>
    public static TimeSpan Seconds(string name, string? text, TimeSpan defaultValue)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > 86_400)
        {
            throw new InvalidOperationException($"{name} must be a number of seconds in (0, 86400]; got '{text}'");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>Null for a blank value, else the trimmed value.</summary>
    public static string? Optional(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
