using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Kubernetes.Enrollment;
using Dgon.Operator.Configuration;
using k8s;
using k8s.Models;

namespace Dgon.Operator.Reconciliation;

/// <summary>
/// Deletes join-token Secrets that can never enroll a node again (issue 9; kube-controller-manager's tokencleaner for
/// bootstrap tokens): those whose <c>expiration</c> has passed, and those revoked (<c>dgon.io/revoked-at</c>) more
/// than <see cref="JoinTokenSecrets.RevokedRetention"/> (1 hour) ago. Runs on the leader only, at the start of each
/// leadership and every <see cref="OperatorOptions.JoinTokenCleanupPeriod"/> (default 60 s): one LIST of Secrets with
/// the field selector <c>type=dgon.io/join-token</c>, then a DELETE per Secret with its uid and resourceVersion as
/// preconditions (a Secret changed since the list is left for the next round). Malformed Secrets are never deleted.
/// Each deletion is logged and recorded as a Normal Event about the Secret (reason <c>JoinTokenExpired</c> or
/// <c>JoinTokenRevoked</c>). Needs <c>list</c> and <c>delete</c> on Secrets.
/// </summary>
public sealed partial class JoinTokenCleaner(
    IKubernetes client,
    KubeNamespace ns,
    OperatorOptions options,
    TimeProvider clock,
    ILogger<JoinTokenCleaner> logger)
{
    /// <summary>Runs rounds until <paramref name="ct"/> is cancelled (leadership lost or shutdown); a failed round is logged and retried next period.</summary>
    public async Task RunAsync(IEventRecorder events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await CleanOnceAsync(events, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    LogRoundFailed(e);
                }

                await Task.Delay(options.JoinTokenCleanupPeriod, clock, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>One round: lists the join-token Secrets and deletes the expired and long-revoked ones.</summary>
    /// <returns>Names of the Secrets deleted.</returns>
    /// <exception cref="k8s.Autorest.HttpOperationException">The LIST failed.</exception>
    public async Task<IReadOnlyList<string>> CleanOnceAsync(IEventRecorder events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        var deleted = new List<string>();
        var now = clock.GetUtcNow();
        string? continueToken = null;
        do
        {
            var page = await client.CoreV1.ListNamespacedSecretAsync(
                ns.Name, continueParameter: continueToken, fieldSelector: JoinTokenSecrets.FieldSelector, limit: 500, cancellationToken: ct);
            foreach (var secret in page.Items)
            {
                if (JoinTokenSecrets.CleanupReason(secret, now) is { } why && await DeleteAsync(secret, why, events, ct))
                {
                    deleted.Add(secret.Metadata.Name!);
                }
            }

            continueToken = page.Metadata?.ContinueProperty;
        }
        while (!string.IsNullOrEmpty(continueToken));

        return deleted;
    }

    private async Task<bool> DeleteAsync(V1Secret secret, string why, IEventRecorder events, CancellationToken ct)
    {
        var name = secret.Metadata.Name!;
        try
        {
            await client.CoreV1.DeleteNamespacedSecretAsync(
                name,
                ns.Name,
                new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = secret.Metadata.Uid, ResourceVersion = secret.Metadata.ResourceVersion } },
                cancellationToken: ct);
        }
        catch (Exception e) when (e.IsNotFound() || e.IsConflict())
        {
            return false; // gone already, or changed since the list: the next round decides again
        }

        var detail = why == "Expired"
            ? $"expired at {Text(secret, JoinTokenSecrets.ExpirationKey)}"
            : $"revoked at {secret.Metadata.Annotations?.ValueOrDefault(JoinTokenSecrets.RevokedAtAnnotation)}, more than {JoinTokenSecrets.RevokedRetention.TotalHours:0} h ago";
        LogDeleted(name, detail);
        secret.ApiVersion ??= "v1";
        secret.Kind ??= "Secret";
        await events.RecordAsync(secret, "Normal", "JoinToken" + why, "Delete", $"Join token {detail}: Secret deleted.", ct);
        return true;
    }

    private static string Text(V1Secret secret, string key) =>
        secret.Data?.ValueOrDefault(key) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : "?";

    [LoggerMessage(Level = LogLevel.Information, Message = "Join-token Secret {Name} {Detail}: deleted")]
    private partial void LogDeleted(string name, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Join-token cleanup failed; retrying next period")]
    private partial void LogRoundFailed(Exception error);
}
