using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dgon.Api.Configuration;
using Microsoft.Net.Http.Headers;

namespace Dgon.Api.Http;

/// <summary>Outcome of reading or parsing a request body: a value, or the problem response to send.</summary>
/// <typeparam name="T">Value type.</typeparam>
/// <param name="Value">The value when <see cref="Error"/> is null.</param>
/// <param name="Error">The problem+json result to return, or null on success.</param>
public readonly record struct BodyResult<T>(T? Value, IResult? Error)
{
    /// <summary>Success.</summary>
    public static BodyResult<T> Ok(T value) => new(value, null);

    /// <summary>Failure.</summary>
    public static BodyResult<T> Fail(IResult error) => new(default, error);
}

/// <summary>
/// Raw body reading and JSON parsing with errors that name the field. The raw bytes are kept because the HMAC of
/// seed 000 is computed over them exactly as sent.
/// </summary>
public static class JsonBody
{
    /// <summary>
    /// Checks Content-Type (JSON required, else 415: a missing Content-Type makes a "simple" cross-site request that
    /// needs no CORS preflight, issue 9) and reads the whole body, at most
    /// <see cref="DgonApiOptions.MaxRequestBodyBytes"/> (else 413).
    /// </summary>
    public static async Task<BodyResult<byte[]>> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (CheckContentType(request) is { } refused)
        {
            return BodyResult<byte[]>.Fail(refused);
        }

        const long limit = DgonApiOptions.MaxRequestBodyBytes;
        if (request.ContentLength > limit)
        {
            return BodyResult<byte[]>.Fail(Problems.PayloadTooLarge(limit));
        }

        try
        {
            using var buffer = new MemoryStream(request.ContentLength is { } n ? (int)n : 1024);
            var chunk = new byte[8192];
            int read;
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    return BodyResult<byte[]>.Fail(Problems.PayloadTooLarge(limit));
                }

                buffer.Write(chunk, 0, read);
            }

            return BodyResult<byte[]>.Ok(buffer.ToArray());
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return BodyResult<byte[]>.Fail(Problems.PayloadTooLarge(limit));
        }
    }

    /// <summary>The 415 problem for a request whose Content-Type is missing or not JSON, else null.</summary>
    public static IResult? CheckContentType(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.ContentType is { Length: > 0 } contentType && IsJson(contentType) ? null : Problems.UnsupportedMediaType(request.ContentType);
    }

    /// <summary>
    /// Parses <paramref name="body"/>: empty or not JSON → 400 (with line and byte position); not an object, or a
    /// field of the wrong JSON type → 422 naming the field and the expected type.
    /// </summary>
    public static BodyResult<T> Parse<T>(ReadOnlyMemory<byte> body, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        if (body.IsEmpty)
        {
            return BodyResult<T>.Fail(Problems.MalformedJson("the request body is empty; send a JSON object"));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            return BodyResult<T>.Fail(Problems.MalformedJson($"the request body is not valid JSON{where}"));
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return BodyResult<T>.Fail(Problems.Validation(new Dictionary<string, string[]> { ["$"] = ["the body must be a JSON object"] }));
            }

            // PostgreSQL text and jsonb cannot hold U+0000 or lone surrogates: name the field instead of failing at the write (a 500).
            if (Domain.Validation.ContractValidator.FindUnstorableText(document.RootElement, "$") is { } bad)
            {
                var field = bad.StartsWith("$.", StringComparison.Ordinal) ? bad[2..] : bad;
                return BodyResult<T>.Fail(Problems.Validation(new Dictionary<string, string[]> { [field] = [Domain.Validation.ContractValidator.UnstorableTextMessage] }));
            }

            try
            {
                var value = document.RootElement.Deserialize(typeInfo);
                return value is null
                    ? BodyResult<T>.Fail(Problems.Validation(new Dictionary<string, string[]> { ["$"] = ["the body must be a JSON object"] }))
                    : BodyResult<T>.Ok(value);
            }
            catch (JsonException e)
            {
                var field = FieldName(e.Path);
                return BodyResult<T>.Fail(Problems.Validation(new Dictionary<string, string[]> { [field] = [$"must be {ExpectedType(typeInfo, field)}"] }));
            }
        }
    }

    /// <summary>
    /// Reads (<see cref="ReadAsync"/>), parses (<see cref="Parse{T}"/>) and validates a body in one step; a validator
    /// error map that is not empty becomes a 422 problem.
    /// </summary>
    public static async Task<BodyResult<T>> ReadValidAsync<T>(
        HttpRequest request, JsonTypeInfo<T> typeInfo, Func<T, Dictionary<string, string[]>> validate, CancellationToken cancellationToken)
    {
        var raw = await ReadAsync(request, cancellationToken);
        return raw.Error is not null ? BodyResult<T>.Fail(raw.Error) : ParseValid(raw.Value, typeInfo, validate);
    }

    /// <summary>Parses (<see cref="Parse{T}"/>) and validates; a non-empty error map becomes a 422 problem.</summary>
    public static BodyResult<T> ParseValid<T>(ReadOnlyMemory<byte> body, JsonTypeInfo<T> typeInfo, Func<T, Dictionary<string, string[]>> validate)
    {
        ArgumentNullException.ThrowIfNull(validate);
        var parsed = Parse(body, typeInfo);
        if (parsed.Error is not null)
        {
            return parsed;
        }

        var errors = validate(parsed.Value!);
        return errors.Count > 0 ? BodyResult<T>.Fail(Problems.Validation(errors)) : parsed;
    }

    private static bool IsJson(string contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || media.MediaType.Value?.EndsWith("+json", StringComparison.OrdinalIgnoreCase) == true);

    private static string FieldName(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return "$";
        }

        var name = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;
        return name.StartsWith("['", StringComparison.Ordinal) && name.EndsWith("']", StringComparison.Ordinal) ? name[2..^2] : name;
    }

    private static string ExpectedType(JsonTypeInfo typeInfo, string field)
    {
        var property = typeInfo.Properties.FirstOrDefault(p => p.Name == field);
        var type = property is null ? null : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        return type switch
        {
            null => "of the right JSON type",
            _ when type == typeof(bool) => "a boolean (true or false)",
            _ when type == typeof(string) => "a string",
            _ when type == typeof(double) || type == typeof(int) || type == typeof(long) => "a number",
            _ when type == typeof(JsonElement) => "a JSON object",
            _ => "of the right JSON type",
        };
    }
}
