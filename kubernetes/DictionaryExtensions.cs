namespace Dgon.Kubernetes;

/// <summary>
/// Lookups on the <see cref="IDictionary{TKey, TValue}"/>s of KubernetesClient's models (labels, annotations, Secret
/// data), which <c>GetValueOrDefault</c> does not cover (it takes <see cref="IReadOnlyDictionary{TKey, TValue}"/>).
/// </summary>
public static class DictionaryExtensions
{
    /// <summary>The value at <paramref name="key"/>, or default when the dictionary is null or lacks the key.</summary>
    public static TValue? ValueOrDefault<TValue>(this IDictionary<string, TValue>? dictionary, string key) =>
        dictionary is not null && dictionary.TryGetValue(key, out var value) ? value : default;
}
