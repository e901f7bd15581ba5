using System.Runtime.CompilerServices;
using k8s;
using k8s.Models;

namespace Dgon.Kubernetes.Controllers;

/// <summary>One page of a LIST: the items, the list's resourceVersion and the continue token (empty on the last page).</summary>
/// <typeparam name="T">The object type.</typeparam>
/// <param name="Items">The objects of this page.</param>
/// <param name="ResourceVersion">The list's <c>metadata.resourceVersion</c> (watch from here).</param>
/// <param name="Continue">The <c>metadata.continue</c> token for the next page; null or empty on the last one.</param>
public sealed record ListPage<T>(IList<T> Items, string? ResourceVersion, string? Continue);

/// <summary>LIST parameters (Kubernetes API conventions: label/field selectors, <c>limit</c> and <c>continue</c> for chunking).</summary>
/// <param name="LabelSelector">Label selector, or null.</param>
/// <param name="FieldSelector">Field selector, or null.</param>
/// <param name="Limit">Page size, or null for one unpaged list.</param>
/// <param name="Continue">Continue token of the previous page, or null.</param>
public sealed record ListRequest(string? LabelSelector, string? FieldSelector, int? Limit, string? Continue);

/// <summary>WATCH parameters: from <paramref name="ResourceVersion"/>, with bookmarks, closed by the server after <paramref name="TimeoutSeconds"/>.</summary>
/// <param name="ResourceVersion">Watch from after this resourceVersion (the last one seen).</param>
/// <param name="LabelSelector">Label selector, or null.</param>
/// <param name="FieldSelector">Field selector, or null.</param>
/// <param name="TimeoutSeconds">Server-side watch timeout, seconds.</param>
public sealed record WatchRequest(string? ResourceVersion, string? LabelSelector, string? FieldSelector, int TimeoutSeconds);

/// <summary>
/// client-go's <c>cache.ListerWatcher</c>: the two calls an <see cref="Informer{T}"/> needs, and the seam its unit
/// tests replace. <see cref="ListerWatchers"/> implements it on KubernetesClient for the resources DGON watches.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IListerWatcher<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    /// <summary>The resource, for logs (<c>dgonnodes.dgon.io</c>, <c>secrets</c>).</summary>
    string Resource { get; }

    /// <summary>LIST one page.</summary>
    /// <exception cref="k8s.Autorest.HttpOperationException">An error response; 410 (<see cref="ApiErrors.IsGone"/>) when the continue token expired.</exception>
    Task<ListPage<T>> ListAsync(ListRequest request, CancellationToken ct);

    /// <summary>
    /// WATCH over one streaming connection: ADDED, MODIFIED, DELETED and BOOKMARK events; ends normally when the
    /// server closes the stream (its timeout).
    /// </summary>
    /// <exception cref="KubernetesException">An ERROR event; <see cref="ApiErrors.IsGone"/> for 410 (the resourceVersion is too old: relist).</exception>
    /// <exception cref="k8s.Autorest.HttpOperationException">An error response to the watch request.</exception>
    IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(WatchRequest request, CancellationToken ct);
}

/// <summary>The <see cref="IListerWatcher{T}"/>s of the resources DGON watches, on KubernetesClient's <see cref="IKubernetes"/>.</summary>
public static class ListerWatchers
{
    /// <summary>DgonNodes of one namespace (custom objects API, typed as <see cref="DgonNode"/>).</summary>
    public static IListerWatcher<DgonNode> DgonNodes(IKubernetes client, string @namespace)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        return new Delegating<DgonNode>(
            DgonNode.Plural + "." + DgonNode.Group,
            async (r, ct) =>
            {
                var list = await client.CustomObjects.ListNamespacedCustomObjectAsync<DgonNodeList>(
                    DgonNode.Group, DgonNode.Version, @namespace, DgonNode.Plural,
                    continueParameter: r.Continue, fieldSelector: r.FieldSelector, labelSelector: r.LabelSelector, limit: r.Limit,
                    cancellationToken: ct).ConfigureAwait(false);
                return new ListPage<DgonNode>(list.Items, list.Metadata?.ResourceVersion, list.Metadata?.ContinueProperty);
            },
            (r, onError, ct) =>
            {
                var response = client.CustomObjects.ListNamespacedCustomObjectWithHttpMessagesAsync<DgonNodeList>(
                    DgonNode.Group, DgonNode.Version, @namespace, DgonNode.Plural,
                    allowWatchBookmarks: true, fieldSelector: r.FieldSelector, labelSelector: r.LabelSelector,
                    resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, watch: true, cancellationToken: ct);
#pragma warning disable CS0618 // The typed watch of a custom resource: the library's own GenericClient uses this same call.
                return response.WatchAsync<DgonNode, DgonNodeList>(onError, ct);
#pragma warning restore CS0618
            });
    }

    /// <summary>Secrets of one namespace (core/v1).</summary>
    public static IListerWatcher<V1Secret> Secrets(IKubernetes client, string @namespace)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        return new Delegating<V1Secret>(
            "secrets",
            async (r, ct) =>
            {
                var list = await client.CoreV1.ListNamespacedSecretAsync(
                    @namespace, continueParameter: r.Continue, fieldSelector: r.FieldSelector, labelSelector: r.LabelSelector,
                    limit: r.Limit, cancellationToken: ct).ConfigureAwait(false);
                return new ListPage<V1Secret>(list.Items, list.Metadata?.ResourceVersion, list.Metadata?.ContinueProperty);
            },
            (r, onError, ct) => client.CoreV1.WatchListNamespacedSecretAsync(
                @namespace, allowWatchBookmarks: true, fieldSelector: r.FieldSelector, labelSelector: r.LabelSelector,
                resourceVersion: r.ResourceVersion, timeoutSeconds: r.TimeoutSeconds, onError: onError, cancellationToken: ct));
    }

    private sealed class Delegating<T>(
        string resource,
        Func<ListRequest, CancellationToken, Task<ListPage<T>>> list,
        Func<WatchRequest, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType, T)>> watch) : IListerWatcher<T>
        where T : IKubernetesObject<V1ObjectMeta>
    {
        public string Resource => resource;

        public Task<ListPage<T>> ListAsync(ListRequest request, CancellationToken ct) => list(request, ct);

        public async IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(WatchRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            // The library hands ERROR events (a Status) and undecodable lines to onError and keeps reading; an
            // informer must stop and relist instead, so the first such error ends the watch by being thrown.
            Exception? failure = null;
            await foreach (var e in watch(request, error => failure ??= error, ct).ConfigureAwait(false))
            {
                if (failure is not null)
                {
                    break;
                }

                yield return e;
            }

            if (failure is not null)
            {
                throw failure;
            }
        }
    }
}
