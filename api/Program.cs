using Dgon.Api.Configuration;

// appsettings.json (log levels) is read from the content root, the working directory by default: started from
// anywhere else (e.g. `dotnet run --project ...` from the repository root), fall back to the build output beside the dll.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = File.Exists("appsettings.json") ? null : AppContext.BaseDirectory });
builder.AddDgonApi();

var app = builder.Build();
await app.MigrateDatabaseAsync();
app.MapDgonApi();
await app.RunAsync();
