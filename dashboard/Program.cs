using Dgon.Dashboard;
using Dgon.Dashboard.Api;
using Dgon.Dashboard.Components;
using Microsoft.AspNetCore.DataProtection;

var builder = WebApplication.CreateBuilder(args);
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
{
    builder.WebHost.UseUrls(DashboardOptions.DefaultUrl);
}

var options = DashboardOptions.FromConfiguration(builder.Configuration);
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddHttpClient<DgonApiClient>(http =>
{
    http.BaseAddress = options.ApiBase;
    http.Timeout = DgonApiClient.RequestTimeout;
});
builder.Services.AddRazorComponents();
builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider(); // no forms or cookies: nothing to keep

var app = builder.Build();
app.UseStaticFiles();
app.UseAntiforgery();
app.MapGet("/healthz", () => Results.Text("ok"));
app.MapFragments();
app.MapRazorComponents<App>();
app.Run();
