using static Dgon.KubeTestServer.Tests.HttpHelpers;

namespace Dgon.KubeTestServer.Tests;

/// <summary>A fresh test server (default options) and an HTTP client for it, per test.</summary>
public abstract class ServerPerTest : IAsyncLifetime
{
    protected KubeApiTestServer Server { get; private set; } = null!;

    protected HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await KubeApiTestServer.StartAsync();
        Http = Client(Server);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
