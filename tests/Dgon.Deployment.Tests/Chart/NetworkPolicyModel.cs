using System.Net;
using System.Text.Json.Nodes;
using static Dgon.Deployment.Tests.Chart.RenderedChart;

namespace Dgon.Deployment.Tests.Chart;

/// <summary>One end of a connection: a pod, or an address that is not a pod (the API server, an external database, a client).</summary>
public abstract record Endpoint;

/// <summary>A pod: its namespace with that namespace's labels, and its own labels.</summary>
public sealed record PodEndpoint(string Namespace, IReadOnlyDictionary<string, string> NamespaceLabels, IReadOnlyDictionary<string, string> Labels) : Endpoint
{
    /// <summary>A pod in <paramref name="ns"/> (namespace label kubernetes.io/metadata.name set, as the API server does) with <paramref name="labels"/> ("k=v").</summary>
    public static PodEndpoint In(string ns, params string[] labels) => new(
        ns,
        new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = ns },
        labels.Select(l => l.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]));

    public override string ToString() => $"pod {Namespace}/{{{string.Join(',', Labels.Select(kv => $"{kv.Key}={kv.Value}"))}}}";
}

/// <summary>An address outside the pod network.</summary>
public sealed record AddressEndpoint(IPAddress Address) : Endpoint
{
    public static AddressEndpoint Of(string address) => new(IPAddress.Parse(address));

    public override string ToString() => Address.ToString();
}

/// <summary>
/// The decision a NetworkPolicy-enforcing CNI makes (networking.k8s.io/v1 semantics, Kubernetes docs "Network
/// Policies"): a connection is allowed when the source pod's egress and the destination pod's ingress both allow it.
/// A pod no policy selects for a direction is open in that direction; a selected pod allows what the union of its
/// policies' rules allows. Peers: podSelector (policy namespace) and/or namespaceSelector, ipBlock (cidr minus except);
/// an empty or missing peer list or port list matches everything. Ports are matched by number (no named ports, no endPort).
/// </summary>
public static class NetworkPolicyModel
{
    /// <summary>Whether <paramref name="policies"/> allow a connection from <paramref name="from"/> to <paramref name="to"/> on <paramref name="protocol"/>/<paramref name="port"/>.</summary>
    public static bool Allows(IReadOnlyList<JsonObject> policies, Endpoint from, Endpoint to, string protocol, int port) =>
        Allowed(policies, from, to, protocol, port, "Egress") && Allowed(policies, to, from, protocol, port, "Ingress");

    /// <summary>The policies that select <paramref name="pod"/>.</summary>
    public static IEnumerable<JsonObject> Selecting(IEnumerable<JsonObject> policies, PodEndpoint pod) =>
        policies.Where(p => Str(p["metadata"]!["namespace"]) == pod.Namespace && Matches(p["spec"]!["podSelector"], pod.Labels));

    /// <summary>A LabelSelector against labels: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); empty selects all.</summary>
    public static bool Matches(JsonNode? selector, IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, value) in selector?["matchLabels"]?.AsObject() ?? [])
        {
            if (!labels.TryGetValue(key, out var actual) || actual != Str(value))
            {
                return false;
            }
        }

        foreach (var expression in selector?["matchExpressions"]?.AsArray() ?? [])
        {
            var key = Str(expression!["key"])!;
            var values = expression["values"]?.AsArray().Select(Str).ToHashSet() ?? [];
            var has = labels.TryGetValue(key, out var actual);
            var ok = Str(expression["operator"]) switch
            {
                "In" => has && values.Contains(actual),
                "NotIn" => !has || !values.Contains(actual),
                "Exists" => has,
                "DoesNotExist" => !has,
                var op => throw new InvalidOperationException($"unknown selector operator {op}"),
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static bool Allowed(IReadOnlyList<JsonObject> policies, Endpoint subject, Endpoint peer, string protocol, int port, string direction)
    {
        if (subject is not PodEndpoint pod)
        {
            return true; // not a pod: no NetworkPolicy governs it
        }

        var selecting = Selecting(policies, pod).Where(p => PolicyTypes(p).Contains(direction)).ToList();
        if (selecting.Count == 0)
        {
            return true;
        }

        var (rulesKey, peersKey) = direction == "Egress" ? ("egress", "to") : ("ingress", "from");
        return selecting.Any(p => (p["spec"]![rulesKey]?.AsArray() ?? []).Any(rule =>
            PortsMatch(rule!["ports"]?.AsArray(), protocol, port)
            && PeersMatch(rule[peersKey]?.AsArray(), peer, Str(p["metadata"]!["namespace"])!)));
    }

    private static HashSet<string> PolicyTypes(JsonObject policy)
    {
        var spec = policy["spec"]!;
        if (spec["policyTypes"] is JsonArray types)
        {
            return [.. types.Select(t => Str(t)!)];
        }

        return spec["egress"] is null ? ["Ingress"] : ["Ingress", "Egress"];
    }

    private static bool PortsMatch(JsonArray? ports, string protocol, int port) =>
        ports is null || ports.Count == 0 || ports.Any(p =>
            (Str(p!["protocol"]) ?? "TCP") == protocol && (p["port"] is null || Str(p["port"]) == port.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    private static bool PeersMatch(JsonArray? peers, Endpoint peer, string policyNamespace) =>
        peers is null || peers.Count == 0 || peers.Any(p => PeerMatches(p!, peer, policyNamespace));

    private static bool PeerMatches(JsonNode peer, Endpoint endpoint, string policyNamespace)
    {
        if (peer["ipBlock"] is { } block)
        {
            return endpoint is AddressEndpoint address
                && IPNetwork.Parse(Str(block["cidr"])!).Contains(address.Address)
                && !(block["except"]?.AsArray() ?? []).Any(e => IPNetwork.Parse(Str(e)!).Contains(address.Address));
        }

        if (endpoint is not PodEndpoint pod)
        {
            return false;
        }

        var namespaceOk = peer["namespaceSelector"] is { } ns ? Matches(ns, pod.NamespaceLabels) : pod.Namespace == policyNamespace;
        return namespaceOk && Matches(peer["podSelector"], pod.Labels);
    }
}
