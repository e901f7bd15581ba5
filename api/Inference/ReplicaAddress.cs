using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Dgon.Api.Inference;

/// <summary>
/// The base URL at which other replicas reach this one (forwarding, issue 13): <c>DGON_REPLICA_URL</c>, else the first
/// URL Kestrel listens on, with a wildcard host (<c>0.0.0.0</c>, <c>[::]</c>, <c>+</c>, <c>*</c>) replaced by the
/// machine's host name. Resolved at first use (the server's addresses are known once it started).
/// </summary>
public sealed class ReplicaAddress(InferenceOptions options, IServer server)
{
    private string? _value;

    /// <summary>The base URL without a trailing slash, e.g. <c>http://10.0.0.5:8001</c>.</summary>
    /// <exception cref="InvalidOperationException">No URL is configured and the server reports no address.</exception>
    public string Value => _value ??= Resolve();

    private string Resolve()
    {
        if (options.ReplicaUrl is { } configured)
        {
            return configured.GetLeftPart(UriPartial.Authority);
        }

        var first = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("the server reports no listening address; set DGON_REPLICA_URL");
        var wildcard = first.Replace("://+", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal)
            .Replace("://*", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal)
            .Replace("://0.0.0.0", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal)
            .Replace("://[::]", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal);
        return new Uri(wildcard).GetLeftPart(UriPartial.Authority);
    }
}
