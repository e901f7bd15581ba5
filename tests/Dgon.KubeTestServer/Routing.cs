namespace Dgon.KubeTestServer;

/// <summary>
/// What a request path addresses, following the apiserver's RequestInfoFactory: <c>/api/v1/...</c> (core) or
/// <c>/apis/{group}/{version}/...</c>, then optionally <c>watch/</c>, <c>namespaces/{ns}/</c>, the resource, a name and a
/// subresource. <c>/api/v1/namespaces/{name}/status</c> addresses the namespace's own status subresource.
/// </summary>
internal sealed record RequestTarget(
    bool IsResource,
    string? Group,
    string? Version,
    string? Namespace,
    string? Resource,
    string? Name,
    string? Subresource,
    bool WatchPath,
    string[] Segments)
{
    public static RequestTarget Parse(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        string? group;
        string? version;
        int rest;
        if (segments.Length >= 2 && segments[0] == "api")
        {
            group = "";
            version = segments[1];
            rest = 2;
        }
        else if (segments.Length >= 3 && segments[0] == "apis")
        {
            group = segments[1];
            version = segments[2];
            rest = 3;
        }
        else
        {
            return new RequestTarget(false, null, null, null, null, null, null, false, segments);
        }

        var parts = segments[rest..];
        if (parts.Length == 0)
        {
            return new RequestTarget(false, group, version, null, null, null, null, false, segments);
        }

        var watch = false;
        if (parts[0] == "watch")
        {
            watch = true;
            parts = parts[1..];
        }

        string? ns = null;
        if (parts.Length >= 2 && parts[0] == "namespaces")
        {
            if (parts.Length == 2 || (parts.Length == 3 && parts[2] is "status" or "finalize"))
            {
                // The namespace object itself (or its subresource).
            }
            else
            {
                ns = parts[1];
                parts = parts[2..];
            }
        }

        if (parts.Length is 0 or > 3)
        {
            return new RequestTarget(false, group, version, ns, null, null, null, watch, segments);
        }

        return new RequestTarget(
            true,
            group,
            version,
            ns,
            parts[0],
            parts.Length > 1 ? parts[1] : null,
            parts.Length > 2 ? parts[2] : null,
            watch,
            segments);
    }
}
