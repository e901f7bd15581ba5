using System.Globalization;
using System.Text.Json;

namespace Dgon.Api.Inference;

/// <summary>
/// Errors of the gateway in OpenAI's shape (what the OpenAI SDKs parse): <c>{"error": {"message", "type", "param",
/// "code"}}</c> with <c>application/json</c>, not problem+json (issue 13). Types and codes follow OpenAI's:
/// 400 <c>invalid_request_error</c>; 401 <c>invalid_request_error</c>/<c>invalid_api_key</c>; 403
/// <c>invalid_request_error</c>/<c>insufficient_permissions</c>; 404 <c>invalid_request_error</c>/<c>model_not_found</c>;
/// 429 <c>rate_limit_exceeded</c> with <c>Retry-After</c> (seconds); 502/503/504 <c>api_error</c>.
/// </summary>
public static class OpenAiErrors
{
    /// <summary>Writes the error JSON object (also used inside an SSE <c>data:</c> line).</summary>
    public static void WriteObject(Utf8JsonWriter writer, string message, string type, string? param, string? code)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", message);
        writer.WriteString("type", type);
        if (param is null)
        {
            writer.WriteNull("param");
        }
        else
        {
            writer.WriteString("param", param);
        }

        if (code is null)
        {
            writer.WriteNull("code");
        }
        else
        {
            writer.WriteString("code", code);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>The error as UTF-8 JSON.</summary>
    public static byte[] Json(string message, string type, string? param, string? code)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteObject(writer, message, type, param, code);
        }

        return buffer.ToArray();
    }

    /// <summary>An error response.</summary>
    /// <param name="status">HTTP status.</param>
    /// <param name="message">What went wrong, for people.</param>
    /// <param name="type">OpenAI error type.</param>
    /// <param name="param">The request member at fault, or null.</param>
    /// <param name="code">OpenAI error code, or null.</param>
    /// <param name="retryAfter">Seconds for <c>Retry-After</c>, or null.</param>
    public static IResult Error(int status, string message, string type, string? param = null, string? code = null, int? retryAfter = null) =>
        new ErrorResult(status, Json(message, type, param, code), retryAfter);

    /// <summary>400 <c>invalid_request_error</c>.</summary>
    public static IResult InvalidRequest(string message, string? param = null, string? code = null) =>
        Error(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

    /// <summary>401 <c>invalid_api_key</c> (with <c>WWW-Authenticate: Bearer</c>).</summary>
    public static IResult Unauthorized(bool presented) =>
        Error(StatusCodes.Status401Unauthorized,
            presented ? "Incorrect API key provided: the key is unknown, expired or revoked." : "You didn't provide an API key. Send Authorization: Bearer <API key with the inference scope>.",
            "invalid_request_error", null, "invalid_api_key");

    /// <summary>403: the credential lacks the <c>inference</c> scope.</summary>
    public static IResult Forbidden() =>
        Error(StatusCodes.Status403Forbidden, "This credential may not run inference: it needs the 'inference' scope.", "invalid_request_error", null, "insufficient_permissions");

    /// <summary>404 <c>model_not_found</c>.</summary>
    public static IResult ModelNotFound(string model) =>
        Error(StatusCodes.Status404NotFound, $"The model '{model}' does not exist or no linked node serves it.", "invalid_request_error", "model", "model_not_found");

    /// <summary>429 with <c>Retry-After</c>.</summary>
    public static IResult RateLimited(string message, int retryAfterSeconds = 1) =>
        Error(StatusCodes.Status429TooManyRequests, message, "rate_limit_exceeded", null, "rate_limit_exceeded", retryAfterSeconds);

    private sealed class ErrorResult(int status, byte[] body, int? retryAfter) : IResult, IStatusCodeHttpResult
    {
        public int? StatusCode => status;

        public Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.StatusCode = status;
            response.ContentType = "application/json";
            response.ContentLength = body.Length;
            if (retryAfter is { } seconds)
            {
                response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            }

            if (status == StatusCodes.Status401Unauthorized)
            {
                response.Headers.WWWAuthenticate = "Bearer realm=\"dgon\"";
            }

            return response.Body.WriteAsync(body).AsTask();
        }
    }
}
