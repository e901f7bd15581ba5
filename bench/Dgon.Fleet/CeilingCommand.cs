using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Text;

namespace Dgon.Fleet;

/// <summary>
/// <c>ceiling</c>: a bare Kestrel minimal API on 127.0.0.1 answering <c>POST /v1/nodes/heartbeat</c> with
/// <c>{"status":"active","heartbeat_interval_s":10}</c> — no authentication, no state, no logging: what the machine's
/// HTTP stack can do, the ceiling the API's heartbeat rate is compared with.
/// </summary>
internal static class CeilingCommand
{
    private static readonly byte[] Response = Encoding.UTF8.GetBytes("""{"status":"active","heartbeat_interval_s":10}""");

    public static async Task<int> RunAsync(int port, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        await using var app = builder.Build();
        app.MapPost(HeartbeatSender.Path, async (HttpContext context) =>
        {
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = Response.Length;
            await context.Response.Body.WriteAsync(Response, context.RequestAborted);
        });
        app.MapGet("/readyz", () => "ok");
        Console.WriteLine($"ceiling: http://127.0.0.1:{port}{HeartbeatSender.Path}");
        await app.RunAsync(ct);
        return 0;
    }
}
