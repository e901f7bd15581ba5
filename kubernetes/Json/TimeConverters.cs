using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dgon.Kubernetes.Json;

/// <summary>
/// metav1.Time: writes RFC 3339 in UTC with whole seconds (<c>2026-11-21T10:00:00Z</c>; sub-second parts are
/// truncated, as the API server does); reads any RFC 3339 / ISO 8601 date-time and normalizes it to UTC.
/// Part of DGON's small stand-in for KubernetesClient's serializer.
/// </summary>
public sealed class KubeTimeConverter : JsonConverter<DateTimeOffset>
{
    /// <summary>The write format, <c>yyyy-MM-ddTHH:mm:ssZ</c>.</summary>
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    /// <inheritdoc />
    /// <exception cref="JsonException">The token is not a string holding an RFC 3339 date-time.</exception>
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => ReadTime(ref reader);

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(value.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture));
    }

    internal static DateTimeOffset ReadTime(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"expected an RFC 3339 date-time string, got {reader.TokenType}");
        }

        var text = reader.GetString();
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value.ToUniversalTime()
            : throw new JsonException($"'{text}' is not an RFC 3339 date-time");
    }
}

/// <summary>
/// metav1.MicroTime: writes RFC 3339 in UTC with microseconds (<c>2026-11-21T10:00:00.123456Z</c>); reads any
/// RFC 3339 date-time. Used for Lease acquire/renew times and Event eventTime. Part of DGON's small stand-in for
/// KubernetesClient's serializer.
/// </summary>
public sealed class MicroTimeConverter : JsonConverter<DateTimeOffset>
{
    /// <summary>The write format, <c>yyyy-MM-ddTHH:mm:ss.ffffffZ</c>.</summary>
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'";

    /// <inheritdoc />
    /// <exception cref="JsonException">The token is not a string holding an RFC 3339 date-time.</exception>
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => KubeTimeConverter.ReadTime(ref reader);

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(value.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture));
    }
}
