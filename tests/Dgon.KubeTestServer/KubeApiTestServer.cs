using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;

namespace Dgon.KubeTestServer;

/// <summary>
/// A Kubernetes API server for tests: serves, over real HTTP(S) on 127.0.0.1, discovery, CRDs, custom resources
/// (validation, pruning, defaulting, status subresource), Secrets, Namespaces, core/v1 and events.k8s.io/v1 Events and
/// Leases with the documented semantics (global resourceVersion, optimistic concurrency, watch with bookmarks and 410
/// Gone, Table output, garbage collection). Checked against the real kubectl.
/// </summary>
public sealed class KubeApiTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ApiServer _api;
    private readonly KubeApiTestServerOptions _options;
    private readonly Lock _requestsLock = new();
    private readonly List<RecordedRequest> _requests = [];
    private readonly List<Fault> _faults = [];

    private KubeApiTestServer(WebApplication app, ApiServer api, KubeApiTestServerOptions options, Uri baseAddress)
    {
        _app = app;
        _api = api;
        _options = options;
        BaseAddress = baseAddress;
    }

    /// <summary>Base URL, e.g. <c>http://127.0.0.1:40123</c> (<c>https://</c> when a server certificate is set).</summary>
    public Uri BaseAddress { get; }

    /// <summary>Snapshot of every request served so far, in the order their responses started (watches when their stream starts).</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_requestsLock)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Starts Kestrel on 127.0.0.1 on a free port, creates the standard namespaces and loads the CRDs.</summary>
    public static Task<KubeApiTestServer> StartAsync(KubeApiTestServerOptions? options = null, CancellationToken cancellationToken = default) =>
        StartAsync(options ?? new KubeApiTestServerOptions(), 0, cancellationToken);

    /// <summary>Starts on a given port (0 = free port); used by the standalone host.</summary>
    internal static async Task<KubeApiTestServer> StartAsync(KubeApiTestServerOptions options, int port, CancellationToken cancellationToken)
    {
        var api = new ApiServer(options);
        api.Bootstrap(options.CrdFiles ?? DefaultCrdFiles());

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = 8 * 1024 * 1024;
            kestrel.Listen(IPAddress.Loopback, port, listen =>
            {
                if (options.ServerCertificate is { } certificate)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = certificate,
                        ServerCertificateChain = options.ServerCertificateAuthority is { } issuer ? [issuer] : null,
                        ClientCertificateMode = options.ClientCertificateAuthority is null ? ClientCertificateMode.NoCertificate : ClientCertificateMode.AllowCertificate,
                        ClientCertificateValidation = (_, _, _) => true,
                    });
                }
                else
                {
                    listen.Protocols = HttpProtocols.Http1;
                }
            });
        });
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        KubeApiTestServer? server = null;
        app.Run(ctx => server!.ServeAsync(ctx));
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var actualPort = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)).Port;
        var scheme = options.ServerCertificate is null ? "http" : "https";
        var baseAddress = new Uri($"{scheme}://127.0.0.1:{actualPort}");
        api.ServerAddress = $"127.0.0.1:{actualPort}";
        server = new KubeApiTestServer(app, api, options, baseAddress);
        return server;
    }

    private static IEnumerable<string> DefaultCrdFiles()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Dgon.sln")))
            {
                var crds = Path.Combine(dir.FullName, "crds");
                return Directory.Exists(crds) ? Directory.GetFiles(crds, "*.yaml").Order(StringComparer.Ordinal) : [];
            }
        }

        throw new InvalidOperationException($"Dgon.sln not found above {AppContext.BaseDirectory}; set KubeApiTestServerOptions.CrdFiles");
    }

    private async Task ServeAsync(HttpContext ctx)
    {
        var time = DateTimeOffset.UtcNow;
        var path = ctx.Request.Path.Value ?? "/";
        var query = ctx.Request.QueryString.Value ?? "";
        var target = RequestTarget.Parse(path);
        var q = ctx.Request.Query;
        var isWatch = target.IsResource && HttpMethods.IsGet(ctx.Request.Method) && (target.WatchPath || q["watch"] == "true" || q["watch"] == "1");
        var recorded = false;
        void Record(int code)
        {
            if (recorded)
            {
                return;
            }

            recorded = true;
            lock (_requestsLock)
            {
                _requests.Add(new RecordedRequest(ctx.Request.Method, path, query, code, time, target.Resource, target.Subresource, target.Namespace, target.Name, isWatch));
            }
        }

        // Recorded before the response headers go out, so a client that saw the response also sees it in Requests.
        ctx.Response.OnStarting(() =>
        {
            Record(ctx.Response.StatusCode);
            return Task.CompletedTask;
        });
        try
        {
            if (!Authenticated(ctx))
            {
                await ApiServer.WriteStatusAsync(ctx, new KubeException(401, "Unauthorized", "Unauthorized"));
                return;
            }

            var probe = new RecordedRequest(ctx.Request.Method, path, query, 0, time, target.Resource, target.Subresource, target.Namespace, target.Name, isWatch);
            if (TakeFault(probe) is { } code)
            {
                var type = target.IsResource ? _api.Registry.Find(target.Group!, target.Version!, target.Resource!) : null;
                await ApiServer.WriteStatusAsync(ctx, KubeException.Generic(code, type, target.Name));
                return;
            }

            await _api.HandleAsync(ctx, target, () => { });
        }
        catch (Exception e) when (e is not OperationCanceledException && !ctx.Response.HasStarted)
        {
            // A bug in the test server: answer like an apiserver panic would (500 InternalError) and say why.
            await ApiServer.WriteStatusAsync(ctx, new KubeException(500, "InternalError", $"an error on the server (\"{e.GetType().Name}: {e.Message}\") has prevented the request from succeeding"));
            await Console.Error.WriteLineAsync($"kube test server: {ctx.Request.Method} {path}{query} failed: {e}");
        }
        finally
        {
            Record(ctx.Response.StatusCode);
        }
    }

    /// <summary>
    /// Authentication as the apiserver does it: a client certificate chained to the configured CA, else a bearer token;
    /// when neither is configured every request is allowed.
    /// </summary>
    private bool Authenticated(HttpContext ctx)
    {
        if (_options.ClientCertificateAuthority is null && _options.BearerToken is null)
        {
            return true;
        }

        if (_options.ClientCertificateAuthority is { } ca && ctx.Connection.ClientCertificate is { } cert && ChainsTo(cert, ca))
        {
            return true;
        }

        if (_options.BearerToken is { } token)
        {
            var header = ctx.Request.Headers.Authorization.ToString();
            return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header[7..].Trim() == token;
        }

        return false;
    }

    private static bool ChainsTo(X509Certificate2 cert, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert) && chain.ChainElements[^1].Certificate.Thumbprint == ca.Thumbprint;
    }

    private int? TakeFault(RecordedRequest probe)
    {
        lock (_faults)
        {
            foreach (var fault in _faults)
            {
                if (fault.Remaining > 0 && fault.Match(probe))
                {
                    fault.Remaining--;
                    return fault.StatusCode;
                }
            }

            _faults.RemoveAll(f => f.Remaining <= 0);
        }

        return null;
    }

    /// <summary>
    /// Writes a kubeconfig (cluster, user and context named <c>dgon-test</c>) for kubectl and our client; returns <paramref name="path"/>.
    /// Over HTTPS without <paramref name="certificateAuthorityPemPath"/>, <see cref="KubeApiTestServerOptions.ServerCertificateAuthority"/>
    /// (else the server certificate itself, which kubectl accepts but the official C# client does not) is embedded as the trusted CA.
    /// <paramref name="token"/> defaults to <see cref="KubeApiTestServerOptions.BearerToken"/>; with neither a token nor a client
    /// certificate the user gets the token <c>anonymous</c>, which a server without authentication ignores (the official
    /// client needs some credential in the kubeconfig user).
    /// </summary>
    public string WriteKubeconfig(string path, string? @namespace = null, string? token = null, string? clientCertificatePemPath = null, string? clientKeyPemPath = null, string? certificateAuthorityPemPath = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine("apiVersion: v1");
        sb.AppendLine("kind: Config");
        sb.AppendLine("clusters:");
        sb.AppendLine("- name: dgon-test");
        sb.AppendLine("  cluster:");
        sb.AppendLine($"    server: {BaseAddress.ToString().TrimEnd('/')}");
        if (certificateAuthorityPemPath is not null)
        {
            sb.AppendLine($"    certificate-authority: {Quote(Path.GetFullPath(certificateAuthorityPemPath))}");
        }
        else if ((_options.ServerCertificateAuthority ?? _options.ServerCertificate) is { } trusted)
        {
            sb.AppendLine($"    certificate-authority-data: {Convert.ToBase64String(Encoding.ASCII.GetBytes(trusted.ExportCertificatePem()))}");
        }

        sb.AppendLine("users:");
        sb.AppendLine("- name: dgon-test");
        sb.AppendLine("  user:");
        var userLines = 0;
        if ((token ?? _options.BearerToken) is { } t)
        {
            sb.AppendLine($"    token: {Quote(t)}");
            userLines++;
        }

        if (clientCertificatePemPath is not null)
        {
            sb.AppendLine($"    client-certificate: {Quote(Path.GetFullPath(clientCertificatePemPath))}");
            userLines++;
        }

        if (clientKeyPemPath is not null)
        {
            sb.AppendLine($"    client-key: {Quote(Path.GetFullPath(clientKeyPemPath))}");
            userLines++;
        }

        if (userLines == 0)
        {
            // A server without authentication accepts any request, but KubernetesClient refuses a kubeconfig user
            // without credentials ("does not have appropriate auth credentials"): give it a token the server ignores.
            sb.AppendLine("    token: \"anonymous\"");
        }

        sb.AppendLine("contexts:");
        sb.AppendLine("- name: dgon-test");
        sb.AppendLine("  context:");
        sb.AppendLine("    cluster: dgon-test");
        sb.AppendLine("    user: dgon-test");
        sb.AppendLine($"    namespace: {Quote(@namespace ?? _options.DefaultNamespace)}");
        sb.AppendLine("current-context: dgon-test");
        sb.AppendLine("preferences: {}");
        var full = Path.GetFullPath(path);
        if (Path.GetDirectoryName(full) is { } dir)
        {
            Directory.CreateDirectory(dir);
        }

        File.WriteAllText(full, sb.ToString());
        return path;
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// Compacts the watch history: every resourceVersion older than the current one becomes "too old". New watches from
    /// an older resourceVersion get an ERROR event (Status 410, reason Expired); open watches are sent that event and
    /// closed; continue tokens issued before expire with 410.
    /// </summary>
    public void ExpireWatchHistory()
    {
        lock (_api.Store.Lock)
        {
            _api.Store.Expire();
        }
    }

    /// <summary>Ends every open watch stream cleanly (as a real apiserver does when a watch times out).</summary>
    public void CloseWatches()
    {
        lock (_api.Store.Lock)
        {
            _api.Store.CloseWatches();
        }
    }

    /// <summary>
    /// The next <paramref name="times"/> requests matching <paramref name="match"/> fail with a Kubernetes Status of
    /// <paramref name="statusCode"/> (409 Conflict, 429 TooManyRequests with Retry-After, 500 InternalError,
    /// 503 ServiceUnavailable, …) without side effects. <paramref name="match"/> sees the request with StatusCode 0.
    /// </summary>
    public void InjectFault(Func<RecordedRequest, bool> match, int times, int statusCode)
    {
        ArgumentNullException.ThrowIfNull(match);
        lock (_faults)
        {
            _faults.Add(new Fault(match, statusCode) { Remaining = times });
        }
    }

    /// <summary>Stops the server (open watches are ended).</summary>
    public async ValueTask DisposeAsync()
    {
        CloseWatches();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // forced shutdown
        }

        await _app.DisposeAsync();
    }

    private sealed class Fault(Func<RecordedRequest, bool> match, int statusCode)
    {
        public Func<RecordedRequest, bool> Match { get; } = match;

        public int StatusCode { get; } = statusCode;

        public int Remaining { get; set; }
    }
}
