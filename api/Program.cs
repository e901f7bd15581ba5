using Dgon.Api.Configuration;

var builder = WebApplication.CreateBuilder(args);
builder.AddDgonApi();

var app = builder.Build();
await app.MigrateDatabaseAsync();
app.MapDgonApi();
await app.RunAsync();
