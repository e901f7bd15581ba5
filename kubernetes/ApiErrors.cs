using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Dgon.Kubernetes;

/// <summary>
/// Classifies the official client's errors the way apimachinery's <c>k8s.io/apimachinery/pkg/api/errors</c> does
/// (<c>IsNotFound</c>, <c>IsConflict</c>, <c>IsAlreadyExists</c>, <c>IsGone</c>, <c>IsInvalid</c>). KubernetesClient
/// throws <see cref="HttpOperationException"/> for an error response (its body is a <c>Status</c>) and reports a watch
/// ERROR event as <see cref="KubernetesException"/> carrying the <see cref="V1Status"/>. Both 409 reasons share one
/// status code, so the <c>Status.reason</c> decides between Conflict and AlreadyExists.
/// </summary>
public static class ApiErrors
{
    /// <summary>404 NotFound.</summary>
    public static bool IsNotFound(this Exception error) => Code(error) == HttpStatusCode.NotFound;

    /// <summary>409 with reason <c>Conflict</c> (a stale resourceVersion or failed precondition), not AlreadyExists.</summary>
    public static bool IsConflict(this Exception error) => Code(error) == HttpStatusCode.Conflict && Reason(error) != "AlreadyExists";

    /// <summary>409 with reason <c>AlreadyExists</c> (a create of an existing name).</summary>
    public static bool IsAlreadyExists(this Exception error) => Code(error) == HttpStatusCode.Conflict && Reason(error) == "AlreadyExists";

    /// <summary>410 Gone / <c>Expired</c>: a resourceVersion or continue token too old; relist.</summary>
    public static bool IsGone(this Exception error) => Code(error) is HttpStatusCode.Gone || Reason(error) is "Expired" or "Gone";

    /// <summary>422 Invalid: the object failed validation.</summary>
    public static bool IsInvalid(this Exception error) => Code(error) == HttpStatusCode.UnprocessableEntity;

    /// <summary>The HTTP status of an API error, or null for anything else (transport failures, cancellation).</summary>
    public static HttpStatusCode? Code(Exception error) => error switch
    {
        HttpOperationException { Response: { } r } => r.StatusCode,
        KubernetesException { Status.Code: { } c } => (HttpStatusCode)c,
        _ => null,
    };

    /// <summary>The <c>Status.reason</c> of an API error (<c>NotFound</c>, <c>AlreadyExists</c>, <c>Conflict</c>, …), or null.</summary>
    public static string? Reason(Exception error)
    {
        switch (error)
        {
            case KubernetesException { Status: { } s }:
                return s.Reason;
            case HttpOperationException { Response.Content: { Length: > 0 } body }:
                try
                {
                    return KubernetesJson.Deserialize<V1Status>(body)?.Reason;
                }
                catch (System.Text.Json.JsonException)
                {
                    return null;
                }

            default:
                return null;
        }
    }

    /// <summary>The API server's message for an error (<c>Status.message</c>), else the exception's message.</summary>
    public static string Message(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (error is KubernetesException { Status.Message: { Length: > 0 } m })
        {
            return m;
        }

        if (error is HttpOperationException { Response.Content: { Length: > 0 } body })
        {
            try
            {
                if (KubernetesJson.Deserialize<V1Status>(body)?.Message is { Length: > 0 } message)
                {
                    return message;
                }
            }
            catch (System.Text.Json.JsonException)
            {
            }
        }

        return error.Message;
    }
}
