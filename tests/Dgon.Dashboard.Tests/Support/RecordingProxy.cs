using System.Collections.Concurrent;
using Dgon.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Dgon.Dashboard.Tests.Support;

/// <summary>
/// A real HTTP server on loopback in front of the real API: forwards every GET unchanged (status, body,
/// <c>Content-Type</c>, <c>Link</c>) and records its path and query, so a test can count what the dashboard asks.
/// </summary>
public sealed class RecordingProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _upstream;
    private readonly ConcurrentQueue<string> _requests = new();

    private RecordingProxy(WebApplication app, HttpClient upstream, Uri baseAddress)
    {
        _app = app;
        _upstream = upstream;
        BaseAddress = baseAddress;
    }

    /// <summary>The proxy's base URL, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Path and query of every request so far, in arrival order, e.g. <c>/v1/nodes?limit=50</c>.</summary>
    public IReadOnlyList<string> Requests => [.. _requests];

    /// <summary>Starts a proxy to <paramref name="upstream"/> on a free port.</summary>
    public static async Task<RecordingProxy> StartAsync(Uri upstream)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var port = FreePort.Next();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var proxy = new RecordingProxy(app, new HttpClient { BaseAddress = upstream, Timeout = TimeSpan.FromSeconds(30) }, new Uri($"http://127.0.0.1:{port}"));
        app.MapGet("/{**path}", async (HttpContext context) =>
        {
            var target = context.Request.Path + context.Request.QueryString;
            proxy._requests.Enqueue(target.ToString());
            using var answer = await proxy._upstream.GetAsync(new Uri(target.ToString(), UriKind.Relative), context.RequestAborted);
            context.Response.StatusCode = (int)answer.StatusCode;
            context.Response.ContentType = answer.Content.Headers.ContentType?.ToString();
            if (answer.Headers.TryGetValues("Link", out var link))
            {
                context.Response.Headers.Link = link.ToArray();
            }

            await answer.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
        });
        await app.StartAsync();
        return proxy;
    }

    /// <summary>Forgets the requests recorded so far.</summary>
    public void Clear() => _requests.Clear();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}
