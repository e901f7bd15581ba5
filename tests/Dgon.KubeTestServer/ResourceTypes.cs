using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Dgon.KubeTestServer;

/// <summary>Which built-in behaviour (strategy, in apiserver terms) a resource follows.</summary>
internal enum Strategy
{
    Custom,
    Crd,
    Namespace,
    Secret,
    CoreEvent,
    EventsV1Event,
    Lease,
}

/// <summary>An additionalPrinterColumns entry (or a built-in printer column).</summary>
internal sealed record PrinterColumn(string Name, string Type, string Format, string Description, int Priority, string JsonPath);

/// <summary>One served resource of one group/version, as it appears in discovery.</summary>
internal sealed class ResourceType
{
    public required string Group { get; init; }

    public required string Version { get; init; }

    public required string Plural { get; init; }

    public required string Singular { get; init; }

    public required string Kind { get; init; }

    public string ListKind => Kind + "List";

    public required bool Namespaced { get; init; }

    public required Strategy Strategy { get; init; }

    /// <summary>Objects of every version (and of events.k8s.io/core events) that share storage share this key.</summary>
    public required string StorageKey { get; init; }

    public IReadOnlyList<string> ShortNames { get; init; } = [];

    public IReadOnlyList<string> Categories { get; init; } = [];

    public IReadOnlyList<string> Verbs { get; init; } = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    /// <summary>Has a <c>/status</c> subresource: main-resource writes keep the stored status, status writes change only status.</summary>
    public bool HasStatus { get; init; }

    /// <summary>Sets metadata.generation=1 on create and bumps it when the spec (all but metadata/status) changes.</summary>
    public bool TracksGeneration { get; init; }

    /// <summary>PUT without metadata.resourceVersion is allowed (false for custom resources and CRDs).</summary>
    public bool AllowUnconditionalUpdate { get; init; } = true;

    /// <summary>openAPIV3Schema of this version (custom resources).</summary>
    public JsonObject? Schema { get; init; }

    public IReadOnlyList<PrinterColumn> Columns { get; init; } = [];

    /// <summary>Extra field-selector labels (CRD selectableFields), label → JSON path.</summary>
    public IReadOnlyDictionary<string, string> SelectableFields { get; init; } = new Dictionary<string, string>();

    /// <summary>Name of the CRD that defines this type (custom resources).</summary>
    public string? CrdName { get; init; }

    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary><c>plural.group</c> (or just plural for the core group), as used in error messages.</summary>
    public string GroupResource => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    public bool IsCustom => Strategy == Strategy.Custom;
}

/// <summary>The served groups, versions and resources: built-ins plus those of every established CRD. Thread-safe (copy on write).</summary>
internal sealed partial class ResourceRegistry
{
    private static readonly ResourceType[] Builtins =
    [
        new()
        {
            Group = "", Version = "v1", Plural = "namespaces", Singular = "namespace", Kind = "Namespace", Namespaced = false,
            Strategy = Strategy.Namespace, StorageKey = "namespaces", ShortNames = ["ns"], HasStatus = true,
            Verbs = ["create", "delete", "get", "list", "patch", "update", "watch"],
        },
        new()
        {
            Group = "", Version = "v1", Plural = "secrets", Singular = "secret", Kind = "Secret", Namespaced = true,
            Strategy = Strategy.Secret, StorageKey = "secrets",
        },
        new()
        {
            Group = "", Version = "v1", Plural = "events", Singular = "event", Kind = "Event", Namespaced = true,
            Strategy = Strategy.CoreEvent, StorageKey = "events", ShortNames = ["ev"],
        },
        new()
        {
            Group = "apiextensions.k8s.io", Version = "v1", Plural = "customresourcedefinitions", Singular = "customresourcedefinition",
            Kind = "CustomResourceDefinition", Namespaced = false, Strategy = Strategy.Crd,
            StorageKey = "apiextensions.k8s.io/customresourcedefinitions", ShortNames = ["crd", "crds"], Categories = ["api-extensions"],
            HasStatus = true, TracksGeneration = true, AllowUnconditionalUpdate = false,
        },
        new()
        {
            Group = "coordination.k8s.io", Version = "v1", Plural = "leases", Singular = "lease", Kind = "Lease", Namespaced = true,
            Strategy = Strategy.Lease, StorageKey = "coordination.k8s.io/leases",
        },
        new()
        {
            Group = "events.k8s.io", Version = "v1", Plural = "events", Singular = "event", Kind = "Event", Namespaced = true,
            Strategy = Strategy.EventsV1Event, StorageKey = "events", ShortNames = ["ev"],
        },
    ];

    private volatile IReadOnlyDictionary<string, IReadOnlyList<ResourceType>> _byCrd = new Dictionary<string, IReadOnlyList<ResourceType>>();

    public ResourceType? Find(string group, string version, string plural) =>
        All().FirstOrDefault(t => t.Group == group && t.Version == version && t.Plural == plural);

    /// <summary>The type used to serve objects of <paramref name="storageKey"/> in <paramref name="apiVersion"/>, if served.</summary>
    public ResourceType? ForStorage(string storageKey, string? apiVersion = null) =>
        All().Where(t => t.StorageKey == storageKey).OrderBy(t => t.ApiVersion == apiVersion ? 0 : t.Strategy == Strategy.CoreEvent ? 1 : 2).FirstOrDefault();

    public IEnumerable<ResourceType> All() => Builtins.Concat(_byCrd.Values.SelectMany(v => v));

    public IReadOnlyList<ResourceType> OfCrd(string crdName) => _byCrd.TryGetValue(crdName, out var list) ? list : [];

    public void SetCrd(string crdName, IReadOnlyList<ResourceType> types)
    {
        var copy = new Dictionary<string, IReadOnlyList<ResourceType>>(_byCrd) { [crdName] = types };
        _byCrd = copy;
    }

    public void RemoveCrd(string crdName)
    {
        var copy = new Dictionary<string, IReadOnlyList<ResourceType>>(_byCrd);
        copy.Remove(crdName);
        _byCrd = copy;
    }

    /// <summary>Groups (core excluded) with their versions in Kubernetes priority order (GA &gt; beta &gt; alpha, higher first).</summary>
    public IReadOnlyList<(string Group, IReadOnlyList<string> Versions)> Groups()
    {
        var order = new List<string> { "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io" };
        var result = new List<(string, IReadOnlyList<string>)>();
        var groups = All().Where(t => t.Group.Length > 0).GroupBy(t => t.Group)
            .OrderBy(g => order.IndexOf(g.Key) is var i && i >= 0 ? i : int.MaxValue).ThenBy(g => g.Key, StringComparer.Ordinal);
        foreach (var g in groups)
        {
            result.Add((g.Key, [.. g.Select(t => t.Version).Distinct().OrderBy(v => v, VersionComparer.Instance)]));
        }

        return result;
    }

    /// <summary>Orders versions as Kubernetes does: v2 &gt; v1 &gt; v1beta2 &gt; v1beta1 &gt; v1alpha1 &gt; other (alphabetical).</summary>
    internal sealed partial class VersionComparer : IComparer<string>
    {
        public static readonly VersionComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            var a = Key(x ?? "");
            var b = Key(y ?? "");
            var c = a.Rank.CompareTo(b.Rank);
            if (c != 0)
            {
                return c;
            }

            c = b.Major.CompareTo(a.Major);
            if (c != 0)
            {
                return c;
            }

            c = b.Minor.CompareTo(a.Minor);
            return c != 0 ? c : string.CompareOrdinal(x, y);
        }

        private static (int Rank, int Major, int Minor) Key(string v)
        {
            var m = KubeVersion().Match(v);
            if (!m.Success)
            {
                return (3, 0, 0);
            }

            var major = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var minor = m.Groups[3].Success ? int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) : 0;
            return m.Groups[2].Value switch
            {
                "" => (0, major, 0),
                "beta" => (1, major, minor),
                _ => (2, major, minor),
            };
        }

        [GeneratedRegex("^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")]
        private static partial Regex KubeVersion();
    }
}
