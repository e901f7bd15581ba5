using System.Net;

namespace Dgon.Kubernetes;

/// <summary>
/// A failed Kubernetes API call: the HTTP status, and the meta/v1 <c>Status</c> body when the server sent one
/// (Kubernetes API conventions, "HTTP Status codes" / "Response Status Kind"); a non-Status body (e.g. from a proxy)
/// becomes the message. Part of DGON's small stand-in for KubernetesClient's <c>HttpOperationException</c>; use
/// <see cref="KubeApiErrors.FromStatus"/> to map a status to the most specific subclass.
/// </summary>
public class KubeApiException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="statusCode">HTTP status code of the response (or of the ERROR watch event's Status code).</param>
    /// <param name="status">The parsed Status body, if any.</param>
    /// <param name="message">Message; defaults to the Status message.</param>
    /// <param name="inner">Inner exception.</param>
    public KubeApiException(HttpStatusCode statusCode, KubeStatus? status, string? message = null, Exception? inner = null)
        : base(message ?? Describe(statusCode, status), inner)
    {
        StatusCode = statusCode;
        Status = status;
    }

    /// <summary>Creates an exception with a message only (status 0).</summary>
    public KubeApiException() : this(0, null, "Kubernetes API call failed")
    {
    }

    /// <summary>Creates an exception with a message only (status 0).</summary>
    public KubeApiException(string message) : this(0, null, message)
    {
    }

    /// <summary>Creates an exception with a message and inner exception (status 0).</summary>
    public KubeApiException(string message, Exception inner) : this(0, null, message, inner)
    {
    }

    /// <summary>HTTP status code.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The Status body, when the server sent one.</summary>
    public KubeStatus? Status { get; }

    /// <summary>The Status reason (e.g. <c>Conflict</c>, <c>AlreadyExists</c>, <c>NotFound</c>, <c>Invalid</c>, <c>Expired</c>), if any.</summary>
    public string? Reason => Status?.Reason;

    private static string Describe(HttpStatusCode code, KubeStatus? status) =>
        $"Kubernetes API error {(int)code} {status?.Reason ?? code.ToString()}: {status?.Message ?? "(no Status body)"}";
}

/// <summary>409 Conflict with reason <c>Conflict</c>: the object changed since it was read (stale resourceVersion) — re-read and retry, e.g. with <see cref="KubeRetry.OnConflictAsync{T}(Func{CancellationToken, Task{T}}, CancellationToken, int)"/>.</summary>
public sealed class KubeConflictException : KubeApiException
{
    /// <summary>Creates the exception from a 409 Status.</summary>
    public KubeConflictException(KubeStatus? status, string? message = null) : base(HttpStatusCode.Conflict, status, message)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeConflictException() : this((KubeStatus?)null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeConflictException(string message) : this((KubeStatus?)null, message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public KubeConflictException(string message, Exception inner) : base(HttpStatusCode.Conflict, null, message, inner)
    {
    }
}

/// <summary>409 Conflict with reason <c>AlreadyExists</c>: a create named an object that exists.</summary>
public sealed class KubeAlreadyExistsException : KubeApiException
{
    /// <summary>Creates the exception from a 409 AlreadyExists Status.</summary>
    public KubeAlreadyExistsException(KubeStatus? status, string? message = null) : base(HttpStatusCode.Conflict, status, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public KubeAlreadyExistsException() : this((KubeStatus?)null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeAlreadyExistsException(string message) : this((KubeStatus?)null, message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public KubeAlreadyExistsException(string message, Exception inner) : base(HttpStatusCode.Conflict, null, message, inner)
    {
    }
}

/// <summary>404 Not Found: the object (or namespace, or resource type) does not exist.</summary>
public sealed class KubeNotFoundException : KubeApiException
{
    /// <summary>Creates the exception from a 404 Status.</summary>
    public KubeNotFoundException(KubeStatus? status, string? message = null) : base(HttpStatusCode.NotFound, status, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public KubeNotFoundException() : this((KubeStatus?)null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeNotFoundException(string message) : this((KubeStatus?)null, message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public KubeNotFoundException(string message, Exception inner) : base(HttpStatusCode.NotFound, null, message, inner)
    {
    }
}

/// <summary>
/// 410 Gone (reason <c>Expired</c> or <c>Gone</c>): the requested resourceVersion or continue token is older than
/// the server's history. A watcher must relist; a pager must restart.
/// </summary>
public sealed class KubeGoneException : KubeApiException
{
    /// <summary>Creates the exception from a 410 Status.</summary>
    public KubeGoneException(KubeStatus? status, string? message = null) : base(HttpStatusCode.Gone, status, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public KubeGoneException() : this((KubeStatus?)null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeGoneException(string message) : this((KubeStatus?)null, message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public KubeGoneException(string message, Exception inner) : base(HttpStatusCode.Gone, null, message, inner)
    {
    }
}

/// <summary>422 Unprocessable Entity (reason <c>Invalid</c>): validation failed; <see cref="Causes"/> names the fields.</summary>
public sealed class KubeInvalidException : KubeApiException
{
    /// <summary>Creates the exception from a 422 Status.</summary>
    public KubeInvalidException(KubeStatus? status, string? message = null) : base(HttpStatusCode.UnprocessableEntity, status, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public KubeInvalidException() : this((KubeStatus?)null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KubeInvalidException(string message) : this((KubeStatus?)null, message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public KubeInvalidException(string message, Exception inner) : base(HttpStatusCode.UnprocessableEntity, null, message, inner)
    {
    }

    /// <summary>The field causes from <c>details.causes</c> (empty when none).</summary>
    public IReadOnlyList<KubeStatusCause> Causes => Status?.Details?.Causes ?? [];
}

/// <summary>Maps an HTTP status and Status body to the most specific <see cref="KubeApiException"/> subclass.</summary>
public static class KubeApiErrors
{
    /// <summary>
    /// 404 → <see cref="KubeNotFoundException"/>; 409 with reason AlreadyExists → <see cref="KubeAlreadyExistsException"/>,
    /// other 409 → <see cref="KubeConflictException"/>; 410 → <see cref="KubeGoneException"/>; 422 →
    /// <see cref="KubeInvalidException"/>; anything else → <see cref="KubeApiException"/>.
    /// </summary>
    public static KubeApiException FromStatus(HttpStatusCode code, KubeStatus? status, string? message = null) => (int)code switch
    {
        404 => new KubeNotFoundException(status, message),
        409 when status?.Reason == "AlreadyExists" => new KubeAlreadyExistsException(status, message),
        409 => new KubeConflictException(status, message),
        410 => new KubeGoneException(status, message),
        422 => new KubeInvalidException(status, message),
        _ => new KubeApiException(code, status, message),
    };
}
