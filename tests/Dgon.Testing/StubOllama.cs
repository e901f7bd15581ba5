using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Dgon.Testing;

/// <summary>
/// A stand-in for Ollama (no model runtime in tests; see ../shared/PLATFORM.md): a real HTTP server on loopback answering <c>GET /api/tags</c> with
/// <c>{"models":[{name, model, modified_at, size, digest}, …]}</c> like Ollama does.
/// </summary>
public sealed class StubOllama : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile string[] _models = [];
    private int _requests;

    private StubOllama(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    /// <summary>The stub's base URL, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Number of <c>/api/tags</c> requests served.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Starts the stub on <paramref name="port"/> (a free one when null).</summary>
    public static async Task<StubOllama> StartAsync(int? port = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var p = port ?? FreePort.Next();
        builder.WebHost.UseUrls($"http://127.0.0.1:{p}");
        var app = builder.Build();
        var stub = new StubOllama(app, new Uri($"http://127.0.0.1:{p}"));
        app.MapGet("/api/tags", () =>
        {
            Interlocked.Increment(ref stub._requests);
            var models = stub._models.Select(name => new Dictionary<string, object>
            {
                ["name"] = name,
                ["model"] = name,
                ["modified_at"] = "2026-11-01T10:00:00Z",
                ["size"] = 4_661_224_676L,
                ["digest"] = "sha256:" + new string('a', 64),
            });
            return Results.Json(new Dictionary<string, object> { ["models"] = models.ToArray() });
        });
        await app.StartAsync();
        return stub;
    }

    /// <summary>Sets the models listed (none → not ready).</summary>
    public void SetModels(params string[] names) => _models = names;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
