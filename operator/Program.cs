using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Kubernetes;
using Dgon.Kubernetes.Controllers;
using Dgon.Observability;
using Dgon.Operator.Configuration;
using Dgon.Operator.Observability;
using Dgon.Operator.Reconciliation;
using Dgon.Persistence;
using k8s;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

// appsettings.json (log levels) is read from the content root, the working directory by default: started from
// anywhere else (e.g. `dotnet run --project ...` from the repository root), fall back to the build output beside the dll.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = File.Exists("appsettings.json") ? null : AppContext.BaseDirectory });
var options = OperatorOptions.FromConfiguration(builder.Configuration);
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
{
    builder.WebHost.UseUrls(OperatorOptions.DefaultUrls);
}

var kube = KubernetesClients.LoadConfiguration(options.Kubeconfig);
var services = builder.Services;
services.AddSingleton(options);
services.AddSingleton(TimeProvider.System);
services.AddSingleton(options.Lifecycle);
services.AddSingleton<NodeLifecycle>();
services.AddSingleton(KubernetesClients.Namespace(options.Namespace, kube));
services.AddSingleton<IKubernetes>(_ => new k8s.Kubernetes(kube));
services.AddSingleton(sp => new SqlMigrator(options.ConnectionString, sp.GetRequiredService<ILogger<SqlMigrator>>()));
services.AddDbContextPool<DgonDbContext>(db => db.UseNpgsql(options.ConnectionString));
services.AddScoped<INodeMirror, PostgresNodeMirror>();
services.AddSingleton<OperatorState>();
services.AddSingleton<OperatorMetrics>();
services.AddNodeGauges<InformerNodeSnapshot>();
services.AddPrometheusMetrics("operator", typeof(OperatorMetrics).Assembly, OperatorMetrics.MeterName, ControllerMetrics.MeterName);
services.AddHostedService<OperatorHost>();
services.AddHealthChecks().Add(new HealthCheckRegistration(
    "operator",
    sp => new OperatorHealthCheck(sp.GetRequiredService<OperatorState>()),
    failureStatus: null,
    tags: ["ready"]));

var app = builder.Build();
app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = OperatorHealthCheck.WriteAsync });
app.MapPrometheusMetrics();
_ = app.Services.GetRequiredService<OperatorMetrics>(); // series exist from start-up (dgon_operator_leader 0 on standbys, error counters at 0)
await app.RunAsync();

/// <summary>Ready once migrations are applied; reports whether this replica leads (standbys are ready too).</summary>
internal sealed class OperatorHealthCheck(OperatorState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.Migrated
            ? HealthCheckResult.Healthy(state.Leading ? "leader" : "standby")
            : HealthCheckResult.Unhealthy("database migrations not applied yet"));

    /// <summary>
    /// <c>/readyz</c> body: <c>{"status":"Healthy","role":"leader"}</c> (or <c>"standby"</c>; <c>"starting"</c> with
    /// status Unhealthy before migrations), so <c>kubectl exec … curl /readyz</c> tells which replica leads.
    /// </summary>
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        var entry = report.Entries.TryGetValue("operator", out var e) ? e : default;
        var role = report.Status == HealthStatus.Healthy ? entry.Description ?? "standby" : "starting";
        context.Response.ContentType = "application/json";
        var body = new System.Text.Json.Nodes.JsonObject
        {
            ["status"] = report.Status.ToString(),
            ["role"] = role,
            ["detail"] = entry.Description,
        };
        return context.Response.WriteAsync(body.ToJsonString());
    }
}
