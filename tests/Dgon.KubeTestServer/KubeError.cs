using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>One field error of an Invalid (422) Status: <c>details.causes[]</c> entry (reason, message, field).</summary>
internal sealed record FieldError(string Reason, string Field, string Message)
{
    public static FieldError Required(string field, string? detail = null) =>
        new("FieldValueRequired", field, "Required value" + (detail is null ? "" : ": " + detail));

    public static FieldError Invalid(string field, JsonNode? value, string detail) =>
        new("FieldValueInvalid", field, $"Invalid value: {Json.FormatValue(value)}: {detail}");

    public static FieldError TypeInvalid(string field, JsonNode? value, string detail) =>
        new("FieldValueTypeInvalid", field, $"Invalid value: {Json.FormatValue(value)}: {detail}");

    public static FieldError NotSupported(string field, JsonNode? value, IEnumerable<string> supported) =>
        new("FieldValueNotSupported", field, $"Unsupported value: {Json.FormatValue(value)}: supported values: {string.Join(", ", supported)}");

    public static FieldError TooLong(string field, long max) =>
        new("FieldValueTooLong", field, $"Too long: may not be more than {max} bytes");

    public static FieldError TooMany(string field, int actual, long max) =>
        new("FieldValueTooMany", field, $"Too many: {actual}: must have at most {max} items");

    public static FieldError Duplicate(string field, JsonNode? value) =>
        new("FieldValueDuplicate", field, $"Duplicate value: {Json.FormatValue(value)}");

    public static FieldError Forbidden(string field, string detail) =>
        new("FieldValueForbidden", field, $"Forbidden: {detail}");

    /// <summary>The <c>field: message</c> form used in the Status message.</summary>
    public override string ToString() => Field.Length == 0 ? Message : $"{Field}: {Message}";
}

/// <summary>
/// An API error that becomes a <c>Status</c> response, as <c>k8s.io/apimachinery/pkg/api/errors</c> builds them:
/// status Failure, a reason, a message, details {name, group, kind, causes} and the HTTP code.
/// </summary>
internal sealed class KubeException(int code, string reason, string message) : Exception(message)
{
    public int Code { get; } = code;

    public string Reason { get; } = reason;

    public string? DetailName { get; init; }

    public string? DetailGroup { get; init; }

    public string? DetailKind { get; init; }

    public IReadOnlyList<FieldError> Causes { get; init; } = [];

    public int? RetryAfterSeconds { get; init; }

    /// <summary>The Status object.</summary>
    public JsonObject ToStatus()
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = Message,
            ["reason"] = Reason,
        };
        var details = new JsonObject();
        if (DetailName is not null)
        {
            details["name"] = DetailName;
        }

        if (!string.IsNullOrEmpty(DetailGroup))
        {
            details["group"] = DetailGroup;
        }

        if (DetailKind is not null)
        {
            details["kind"] = DetailKind;
        }

        if (Causes.Count > 0)
        {
            details["causes"] = new JsonArray([.. Causes.Select(c => (JsonNode)new JsonObject { ["reason"] = c.Reason, ["message"] = c.Message, ["field"] = c.Field })]);
        }

        if (RetryAfterSeconds is { } retry)
        {
            details["retryAfterSeconds"] = retry;
        }

        if (details.Count > 0)
        {
            status["details"] = details;
        }

        status["code"] = Code;
        return status;
    }

    /// <summary>The reason Kubernetes uses for a bare HTTP code (as <c>NewGenericServerResponse</c> does).</summary>
    public static string ReasonFor(int code) => code switch
    {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    };

    public static KubeException BadRequest(string message) => new(400, "BadRequest", message);

    public static KubeException NotFoundPath() => new(404, "NotFound", "the server could not find the requested resource");

    public static KubeException NotFound(ResourceType type, string name) =>
        new(404, "NotFound", $"{type.GroupResource} \"{name}\" not found") { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };

    public static KubeException AlreadyExists(ResourceType type, string name) =>
        new(409, "AlreadyExists", $"{type.GroupResource} \"{name}\" already exists") { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };

    public static KubeException Conflict(ResourceType type, string name, string detail) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {type.GroupResource} \"{name}\": {detail}") { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };

    public static KubeException StaleConflict(ResourceType type, string name) =>
        Conflict(type, name, "the object has been modified; please apply your changes to the latest version and try again");

    public static KubeException Invalid(ResourceType type, string name, IReadOnlyList<FieldError> errors)
    {
        var qualifiedKind = type.Group.Length == 0 ? type.Kind : $"{type.Kind}.{type.Group}";
        var list = errors.Count == 1 ? errors[0].ToString() : "[" + string.Join(", ", errors.Select(e => e.ToString())) + "]";
        return new KubeException(422, "Invalid", $"{qualifiedKind} \"{name}\" is invalid: {list}")
        {
            DetailName = name,
            DetailGroup = type.Group,
            DetailKind = type.Kind,
            Causes = errors,
        };
    }

    public static KubeException Expired(string message) => new(410, "Expired", message);

    public static KubeException MethodNotAllowed() =>
        new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");

    public static KubeException UnsupportedMediaType(IEnumerable<string> accepted) =>
        new(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: {string.Join(", ", accepted)}");

    /// <summary>A Status for an injected or generic failure of <paramref name="code"/>.</summary>
    public static KubeException Generic(int code, ResourceType? type, string? name)
    {
        var reason = ReasonFor(code);
        var message = code switch
        {
            409 when type is not null && name is not null => $"Operation cannot be fulfilled on {type.GroupResource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            429 => "Too many requests, please try again later.",
            500 => "an error on the server (\"injected fault\") has prevented the request from succeeding",
            503 => "the server is currently unable to handle the request",
            504 => "the server was unable to return a response in the time allotted, but may still be processing the request",
            404 when type is not null && name is not null => $"{type.GroupResource} \"{name}\" not found",
            _ => $"injected fault: {reason}",
        };
        return new KubeException(code, reason, message)
        {
            DetailName = name,
            DetailGroup = type?.Group,
            DetailKind = type?.Plural,
            RetryAfterSeconds = code is 429 or 504 ? 1 : null,
        };
    }
}
