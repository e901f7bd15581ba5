using System.Net;
using System.Net.Sockets;

namespace Dgon.Testing;

/// <summary>Free TCP ports on loopback.</summary>
public static class FreePort
{
    /// <summary>A port that was free on 127.0.0.1 a moment ago (the OS's ephemeral allocator picks it).</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
