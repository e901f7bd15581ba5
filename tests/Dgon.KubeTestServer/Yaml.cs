using System.Text.Json.Nodes;
using Dgon.Testing;
using YamlDotNet.Core;

namespace Dgon.KubeTestServer;

/// <summary>YAML request bodies and manifests to JSON (<see cref="YamlJson"/>), with the API server's error for bad YAML.</summary>
internal static class Yaml
{
    /// <summary>Every non-empty document of a (multi-document) YAML text.</summary>
    /// <exception cref="KubeException">400 when the text is not valid YAML.</exception>
    public static IReadOnlyList<JsonNode> ParseDocuments(string text)
    {
        try
        {
            return YamlJson.ParseDocuments(text);
        }
        catch (YamlException e)
        {
            throw KubeException.BadRequest($"error converting YAML to JSON: {e.Message}");
        }
    }
}
