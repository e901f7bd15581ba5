using Dgon.Dashboard;
using Dgon.Dashboard.Api;
using Dgon.Dashboard.Auth;
using Dgon.Dashboard.Components;

var builder = WebApplication.CreateBuilder(args);
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
{
    builder.WebHost.UseUrls(DashboardOptions.DefaultUrl);
}

var options = DashboardOptions.FromConfiguration(builder.Configuration);
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddTransient<SessionBearerHandler>();
builder.Services.AddHttpClient<DgonApiClient>(http =>
{
    http.BaseAddress = options.ApiBase;
    http.Timeout = DgonApiClient.RequestTimeout;
}).AddHttpMessageHandler<SessionBearerHandler>();
builder.Services.AddRazorComponents();
var authentication = builder.Services.AddDashboardAuth(options);

// Single sign-on (issue 12): when DGON_OIDC_AUTHORITY is set the login page shows "Sign in with …", linking to
// /auth/oidc, the authorization-code flow with PKCE whose ID token the API trades for a session.
if (options.Oidc is { } oidc)
{
    authentication.AddDgonOidc(oidc);
}

var app = builder.Build();
if (options.DataDir is null)
{
    app.Logger.LogWarning("DGON_DASHBOARD_DATA_DIR is not set: the key ring protecting sign-in cookies is kept in memory only, so every restart signs everyone out and replicas do not accept each other's cookies.");
}

if (options.OpenReads)
{
    app.Logger.LogWarning("DGON_OPEN_READS=true: Overview and Nodes are readable without a login (the API must allow open reads too).");
}

app.UseSecurityHeaders();
app.UseStaticFiles();
app.UseAuthentication();
app.UseAuthorization();
app.UseAntiforgery();
app.MapGet("/healthz", () => Results.Text("ok")).AllowAnonymous();
app.MapFragments();
app.MapAuthEndpoints();
if (options.Oidc is not null)
{
    app.MapOidcSignIn();
}

app.MapRazorComponents<App>();
app.Run();
