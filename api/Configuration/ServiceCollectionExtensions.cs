using Dgon.Api.Accounts;
using Dgon.Api.Apis;
using Dgon.Api.Auth;
using Dgon.Api.Http;
using Dgon.Api.Inference;
using Dgon.Api.Lifecycle;
using Dgon.Api.Kubernetes;
using Dgon.Api.Observability;
using Dgon.Kubernetes;
using Dgon.Domain.Accounts;
using Dgon.Domain.Auth;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;
using Dgon.Domain.Ports;
using Dgon.Observability;
using Dgon.Persistence;
using Dgon.Persistence.Accounts;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Dgon.Api.Configuration;

/// <summary>Wiring of the API's services and middleware, so that Program.cs reads as a table of contents.</summary>
public static partial class ServiceCollectionExtensions
{
    private const string CorsPolicy = "dashboard";

    /// <summary>Rate-limiting policy of registrations and token rotations: a token bucket per client address (<see cref="RateLimitOptions.Register"/>).</summary>
    public const string RegisterRateLimit = "register";

    /// <summary>Rate-limiting policy of logins: a token bucket per client address (<see cref="RateLimitOptions.Login"/>).</summary>
    public const string LoginRateLimit = "login";

    /// <summary>Rate-limiting policy of self sign-ups: a token bucket per client address (<see cref="RateLimitOptions.Signup"/>).</summary>
    public const string SignupRateLimit = "signup";

    /// <summary>Rate-limiting policy of admin calls: a token bucket per client address (<see cref="RateLimitOptions.Admin"/>).</summary>
    public const string AdminRateLimit = "admin";

    /// <summary>
    /// Registers options, PostgreSQL persistence (receipts and node reads in both modes), the node registry of the
    /// configured mode (standalone: PostgreSQL with its lifecycle sweeper; kubernetes: DgonNode resources), CORS,
    /// problem details, OpenAPI and health checks.
    /// </summary>
    /// <exception cref="InvalidOperationException">Configuration is missing or invalid (see <see cref="DgonApiOptions.FromConfiguration"/>).</exception>
    public static WebApplicationBuilder AddDgonApi(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = DgonApiOptions.FromConfiguration(builder.Configuration);
        var services = builder.Services;

        var urls = builder.Configuration["urls"];
        if (string.IsNullOrEmpty(urls) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
        {
            urls = DgonApiOptions.DefaultUrls;
            builder.WebHost.UseUrls(urls);
        }

        if (options.Accounts.ManagementUrls.Count > 0)
        {
            // Issue 12: /metrics on a listener of its own, so the public ingress never exposes it.
            builder.WebHost.UseUrls([.. (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries), .. options.Accounts.ManagementUrls.Select(u => u.GetLeftPart(UriPartial.Authority))]);
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = DgonApiOptions.MaxRequestBodyBytes;
        });

        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(options.Lifecycle);
        services.AddSingleton<NodeLifecycle>();
        services.AddSingleton(new AuthFailureWindow(options.AuthFailures));
        services.AddSingleton(options.Trust);
        services.AddSingleton<NodeRequestLimits>();
        services.AddSingleton<AdminCredential>();
        services.AddAuthentication(BearerAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(AccessClaims.AdminPolicy, policy => policy.RequireAuthenticatedUser().RequireAssertion(c => c.User.HasScope(Scopes.Admin)))
            .AddPolicy(AccessClaims.NodesReadPolicy, policy => policy.RequireAuthenticatedUser().RequireAssertion(c => c.User.HasScope(Scopes.NodesRead)))
            .AddPolicy(AccessClaims.ReceiptsReadPolicy, policy => policy.RequireAuthenticatedUser().RequireAssertion(c => c.User.HasScope(Scopes.ReceiptsRead)))
            .AddPolicy(AccessClaims.PersonPolicy, policy => policy.RequireAuthenticatedUser().RequireAssertion(c => c.User.CredentialKind() is AccessClaims.SessionCredential or AccessClaims.AdminTokenCredential))
            .AddPolicy(AccessClaims.NodeManagementPolicy, policy => policy.RequireAuthenticatedUser().RequireAssertion(c =>
                c.User.HasScope(Scopes.Admin) || (c.User.RoleName() == Roles.Operator && c.User.CredentialKind() == AccessClaims.SessionCredential)));
        AddAccounts(services, options);
        services.AddRateLimiter(limiter =>
        {
            var limits = options.Trust.RateLimits;
            limiter.AddPolicy(RegisterRateLimit, http => AddressBucket(http, limits.Enabled, limits.Register));
            limiter.AddPolicy(AdminRateLimit, http => AddressBucket(http, limits.Enabled, limits.Admin));
            limiter.AddPolicy(LoginRateLimit, http => AddressBucket(http, limits.Enabled, limits.Login));
            limiter.AddPolicy(SignupRateLimit, http => AddressBucket(http, limits.Enabled, limits.Signup));
            limiter.OnRejected = (context, _) =>
            {
                var wait = context.Lease.TryGetMetadata(System.Threading.RateLimiting.MetadataName.RetryAfter, out var retry) ? retry : TimeSpan.FromSeconds(1);
                return new ValueTask(Problems.RateLimited(wait, "too many requests from this address").ExecuteAsync(context.HttpContext));
            };
        });
        services.Configure<Microsoft.AspNetCore.Builder.ForwardedHeadersOptions>(forwarded =>
        {
            forwarded.ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto;
            options.Trust.ApplyTo(forwarded);
        });
        services.AddHsts(hsts => hsts.MaxAge = TimeSpan.FromDays(365));

        // PostgreSQL in both modes: receipts, the request clock, and (standalone) nodes. One data source, one pool.
        // Statements that run on every request (credential lookups, heartbeat batches) are prepared after two uses
        // (Npgsql automatic preparation), so PostgreSQL plans them once per connection instead of once per call.
        services.AddSingleton(_ =>
        {
            var source = new Npgsql.NpgsqlDataSourceBuilder(options.ConnectionString);
            if (source.ConnectionStringBuilder.MaxAutoPrepare == 0)
            {
                source.ConnectionStringBuilder.MaxAutoPrepare = 64;
                source.ConnectionStringBuilder.AutoPrepareMinUsages = 2;
            }

            return source.Build();
        });
        services.AddSingleton(sp => new SqlMigrator(options.ConnectionString, sp.GetRequiredService<ILogger<SqlMigrator>>()));
        services.AddDbContextPool<DgonDbContext>((sp, db) => db.UseNpgsql(sp.GetRequiredService<Npgsql.NpgsqlDataSource>()));

        // Issue 11: signed requests are checked against memory; PostgreSQL is written behind and announces changes.
        services.AddSingleton(options.Fleet);
        services.AddSingleton(options.Fleet.HeartbeatInterval);
        services.AddSingleton<Fleet.HeartbeatIntervals>();
        services.AddSingleton<Fleet.ReplicaIdentity>();
        services.AddSingleton<IRequestClockStore, PostgresRequestClockStore>();
        services.AddSingleton<INodeChangeFeed, PostgresNodeChangeFeed>();
        services.AddSingleton<Fleet.NodeRequestClock>();
        services.AddSingleton<INodeRequestClock>(sp => sp.GetRequiredService<Fleet.NodeRequestClock>());
        services.AddHostedService<Fleet.NodeTableSync>();
        services.AddHostedService<Fleet.WriteBehindFlusher>();
        services.AddScoped<IReceiptStore, PostgresReceiptStore>();
        services.AddScoped<Receipts.ReceiptVerifier>();
        services.AddScoped<SignedRequestReader>();
        services.AddSingleton<ApiMetrics>();

        if (options.Registry == RegistryMode.Standalone)
        {
            services.AddSingleton(new NodeSecretProtector(options.SecretKeys));
            services.AddScoped<IJoinTokenStore, PostgresJoinTokenStore>();
            services.AddSingleton<Fleet.NodeTable>();
            services.AddSingleton<Fleet.IFleetSize>(sp => sp.GetRequiredService<Fleet.NodeTable>());
            services.AddSingleton<INodeStore, PostgresNodeStore>();
            services.AddSingleton<Fleet.HeartbeatGroupCommit>();
            services.AddScoped<PostgresNodeRegistry>();
            services.AddScoped<INodeRegistry, Fleet.CachedNodeRegistry>();
            services.AddScoped<PostgresNodeQueries>();
            services.AddScoped<INodeQueries, Fleet.NodeTableQueries>();
            services.AddScoped<INodeLifecycleSweep>(sp => sp.GetRequiredService<PostgresNodeRegistry>());
            services.AddScoped<INodeAdministration>(sp => sp.GetRequiredService<PostgresNodeRegistry>());
            services.AddHostedService<NodeLifecycleSweeper>();

            // Node state lives here in standalone mode, so the API exports the node gauges (in Kubernetes mode the
            // leading operator does, from its DgonNode cache).
            services.AddNodeGauges<StandaloneNodeSnapshot>();
        }
        else
        {
            services.AddKubernetesRegistry(options.Kubernetes);
        }

        services.AddPrometheusMetrics("api", typeof(ApiMetrics).Assembly, ApiMetrics.MeterName);
        services.AddInference(builder.Configuration, options); // issue 13: coordinator link and gateway (api/Inference)

        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.TypeInfoResolverChain.Insert(0, DgonJsonContext.Default));
        services.AddProblemDetails(o => o.CustomizeProblemDetails = Problems.Customize);
        services.AddOpenApi();
        // "database" marks the one check /readyz/without-database leaves out (the chart's readiness probe in Kubernetes mode).
        services.AddHealthChecks()
            .AddDbContextCheck<DgonDbContext>("database", tags: ["ready", "database"])
            .AddCheck<NodeTrustHealthCheck>("node-trust", tags: ["ready"]);
        services.AddCors(cors => cors.AddPolicy(CorsPolicy, policy =>
        {
            if (options.CorsOrigins.Contains("*"))
            {
                policy.AllowAnyOrigin();
            }
            else
            {
                policy.WithOrigins([.. options.CorsOrigins]);
            }

            policy.WithMethods("GET", "POST", "DELETE").AllowAnyHeader().WithExposedHeaders("Link", "Retry-After");
        }));
        return builder;
    }

    /// <summary>
    /// Accounts (issue 12): ASP.NET Core Identity on PostgreSQL (<see cref="AccountsDbContext"/>; PBKDF2 password
    /// hashes, lockout after 5 failures for 30 min, unique e-mail, passwords of at least 12 characters without
    /// composition rules), sessions and API keys (<see cref="CredentialStore"/>), the audit log and IP bans.
    /// </summary>
    private static void AddAccounts(IServiceCollection services, DgonApiOptions options)
    {
        services.AddSingleton(options.Accounts);
        services.AddSingleton(options.Accounts.AutoBan);
        services.AddDbContextPool<AccountsDbContext>((sp, db) => db.UseNpgsql(sp.GetRequiredService<Npgsql.NpgsqlDataSource>()).UseSnakeCaseNamingConvention());
        services.AddDataProtection(); // Identity's token providers (password resets by an admin); tokens never leave the request
        services.AddIdentityCore<DgonUser>(identity =>
            {
                identity.User.RequireUniqueEmail = true;
                identity.Password.RequiredLength = AccountValidator.MinPasswordLength;
                identity.Password.RequireDigit = false;
                identity.Password.RequireLowercase = false;
                identity.Password.RequireUppercase = false;
                identity.Password.RequireNonAlphanumeric = false;
                identity.Password.RequiredUniqueChars = 1;
                identity.Lockout.AllowedForNewUsers = true;
                identity.Lockout.MaxFailedAccessAttempts = 5; // seed 004: 5 failed attempts = 30 min lock
                identity.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(30);
            })
            .AddRoles<IdentityRole>()
            .AddEntityFrameworkStores<AccountsDbContext>()
            .AddDefaultTokenProviders(); // Microsoft.AspNetCore.Identity.IdentityBuilderExtensions
        services.AddScoped<CredentialStore>();
        if (options.Accounts.Oidc is { } oidc)
        {
            services.AddSingleton(oidc);
            services.AddSingleton(sp => new OidcIdTokenValidator(oidc, null, sp.GetRequiredService<TimeProvider>()));
        }

        services.AddSingleton<AuditLog>();
        services.AddSingleton<IpBanList>();
        services.AddHostedService(sp => sp.GetRequiredService<IpBanList>());
    }

    /// <summary>
    /// Applies pending database migrations (blocking start-up until the database answers, up to 60 s), then checks
    /// the connection pool against the server's <c>max_connections</c> (issue 9) and warns when this replica's pool
    /// alone could take more than the server allows besides its reserved connections.
    /// </summary>
    /// <exception cref="InvalidOperationException">The database stayed unreachable, or a migration failed.</exception>
    public static async Task MigrateDatabaseAsync(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        await app.Services.GetRequiredService<SqlMigrator>().MigrateWithRetryAsync(TimeSpan.FromSeconds(60), app.Lifetime.ApplicationStopping);
        var options = app.Services.GetRequiredService<DgonApiOptions>();
        var pool = new Npgsql.NpgsqlConnectionStringBuilder(options.ConnectionString).MaxPoolSize;
        await using var connection = new Npgsql.NpgsqlConnection(options.ConnectionString);
        await connection.OpenAsync(app.Lifetime.ApplicationStopping);
        await using var command = new Npgsql.NpgsqlCommand(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int", connection);
        var available = (int)(await command.ExecuteScalarAsync(app.Lifetime.ApplicationStopping))!;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Dgon.Api.Database");
        if (pool > available)
        {
            LogPoolTooLarge(logger, pool, available);
        }
        else
        {
            LogPool(logger, pool, available);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database pool of this replica ({Pool} connections, DGON_DB_POOL_SIZE) exceeds the {Available} connections PostgreSQL allows (max_connections less reserved); lower the pool or raise max_connections")]
    private static partial void LogPoolTooLarge(ILogger logger, int pool, int available);

    [LoggerMessage(Level = LogLevel.Information, Message = "Database pool: up to {Pool} connections per replica; PostgreSQL allows {Available}: keep replicas × pool below that")]
    private static partial void LogPool(ILogger logger, int pool, int available);

    /// <summary>
    /// Middleware and endpoints: errors as problem+json (503 when the database is down), CORS, health (<c>/healthz</c>
    /// alive; <c>/readyz</c> every check tagged "ready"; <c>/readyz/without-database</c> the same without the
    /// PostgreSQL check), <c>/metrics</c>, OpenAPI, v1 API.
    /// </summary>
    public static WebApplication MapDgonApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var trust = app.Services.GetRequiredService<NodeTrustOptions>();
        app.Use(CloseAfterUnreadBody);
        app.UseForwardedHeaders();
        var bans = app.Services.GetRequiredService<IpBanList>();
        app.Use(bans.RefuseBannedAsync);
        var audit = app.Services.GetRequiredService<AuditLog>();
        var clock = app.Services.GetRequiredService<TimeProvider>();
        bans.AutomaticBan += ban => _ = audit.WriteAsync(
            new AuditEntry(0, clock.GetUtcNow(), IpBanList.SystemActor, null, null, "ip_ban.auto", "ip_ban:" + ban.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), ban.Network.BaseAddress.ToString(), AuditLog.Success,
                new Dictionary<string, string?> { ["network"] = ban.Network.ToString(), ["reason"] = ban.Reason }),
            CancellationToken.None);
        app.UseExceptionHandler(new ExceptionHandlerOptions { StatusCodeSelector = StatusForException });
        if (trust.Hsts)
        {
            app.UseHsts();
        }

        app.UseStatusCodePages();
        app.UseCors(CorsPolicy);
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        WarnAboutOpenModes(app, trust);
        _ = app.Services.GetRequiredService<AdminCredential>(); // resolve (or generate) the admin token at start-up

        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false }).WithTags("Health");
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = NodeTrustHealthCheck.WriteJsonAsync }).WithTags("Health");
        // Kubernetes mode keeps nodes in the Kubernetes API: a PostgreSQL outage must not take every replica out of the
        // Service (database-backed requests answer 503 problem+json meanwhile), so the chart probes this path.
        app.MapHealthChecks("/readyz/without-database", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") && !c.Tags.Contains("database"), ResponseWriter = NodeTrustHealthCheck.WriteJsonAsync }).WithTags("Health");
        app.MapOpenApi();
        var metrics = app.MapPrometheusMetrics().WithTags("Health");
        var management = app.Services.GetRequiredService<DgonApiOptions>().Accounts.ManagementUrls;
        if (management.Count > 0)
        {
            metrics.RequireHost([.. management.Select(u => "*:" + u.Port.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        }
        _ = app.Services.GetRequiredService<ApiMetrics>(); // its series exist (at 0) from start-up

        app.MapNodesApi();
        app.MapReceiptsApi();
        app.MapSummaryApi();
        app.MapAdminApi();
        app.MapAuthApi();
        app.MapAccountsAdminApi();
        app.MapInference();
        return app;
    }

    /// <summary>
    /// An error answered before a request body over the 64 KiB limit (or of unknown length) was read — a 401, 415 or
    /// 429 decided from the headers — leaves bytes Kestrel will not drain, and it drops the connection after the
    /// response. Say so with <c>Connection: close</c> (RFC 9110 §9.6), as the 413 does, so a client never sends its
    /// next request on a connection that is about to go.
    /// </summary>
    private static Task CloseAfterUnreadBody(HttpContext context, RequestDelegate next)
    {
        context.Response.OnStarting(() =>
        {
            var request = context.Request;
            var large = request.ContentLength is { } length ? length > DgonApiOptions.MaxRequestBodyBytes : request.Headers.TransferEncoding.Count > 0;
            if (context.Response.StatusCode >= 400 && large)
            {
                context.Response.Headers.Connection = "close";
            }

            return Task.CompletedTask;
        });
        return next(context);
    }

    private static System.Threading.RateLimiting.RateLimitPartition<string> AddressBucket(HttpContext http, bool enabled, TokenBucket bucket)
    {
        var address = NodeRequestLimits.ClientAddress(http);
        return enabled
            ? System.Threading.RateLimiting.RateLimitPartition.GetTokenBucketLimiter(address, _ => NodeRequestLimits.BucketOptions(bucket))
            : System.Threading.RateLimiting.RateLimitPartition.GetNoLimiter(address);
    }

    private static void WarnAboutOpenModes(WebApplication app, NodeTrustOptions trust)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Dgon.Api.Security");
        foreach (var warning in NodeTrustHealthCheck.Warnings(trust))
        {
            LogOpenMode(logger, warning);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "SECURITY WARNING: {Warning}")]
    private static partial void LogOpenMode(ILogger logger, string warning);

    // Only an unreachable or overloaded database is the client's cue to retry (503); anything else is our bug (500).
    // The same holds for the Kubernetes API server (unreachable, 5xx, 429) and caches that are not synced yet.
    /// <summary>
    /// The status the exception handler answers for an unhandled exception: 503 for an unreachable or overloaded
    /// database or Kubernetes API server (and caches not synced yet), else 500.
    /// </summary>
    public static int StatusForException(Exception e) => e switch
    {
        Npgsql.NpgsqlException { IsTransient: true } or TimeoutException => StatusCodes.Status503ServiceUnavailable,
        // lock_timeout / statement_timeout (issue 9): a pile-up on one row fails fast; the client retries.
        Npgsql.PostgresException { SqlState: "55P03" or "57014" } => StatusCodes.Status503ServiceUnavailable,
        { InnerException: Npgsql.PostgresException { SqlState: "55P03" or "57014" } } => StatusCodes.Status503ServiceUnavailable,
        KubernetesNotReadyException or HttpRequestException or OidcAuthorityUnavailableException => StatusCodes.Status503ServiceUnavailable,
        k8s.Autorest.HttpOperationException k when ApiErrors.Code(k) is System.Net.HttpStatusCode.TooManyRequests || (int?)ApiErrors.Code(k) >= 500 => StatusCodes.Status503ServiceUnavailable,
        { InnerException: Npgsql.NpgsqlException { IsTransient: true } } => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };
}
