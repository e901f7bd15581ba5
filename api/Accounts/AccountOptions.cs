using System.Globalization;
using Dgon.Api.Configuration;
using Dgon.Domain.Accounts;
using Dgon.Persistence;

namespace Dgon.Api.Accounts;

/// <summary>Settings of accounts and access (issue 12). Every default is the secure one.</summary>
public sealed record AccountOptions
{
    /// <summary>Default session lifetime: 12 h.</summary>
    public static readonly TimeSpan DefaultSessionLifetime = TimeSpan.FromHours(12);

    /// <summary>
    /// <c>DGON_OPEN_READS=true</c>: seed 000's dev-open reads (<c>GET /v1/nodes</c>, <c>/v1/summary</c> without a
    /// credential, owner-only fields hidden). Default false: reads need scope <c>nodes:read</c>.
    /// </summary>
    public bool OpenReads { get; init; }

    /// <summary><c>DGON_SIGNUP=true</c>: anyone may create an account (<c>POST /v1/auth/signup</c>). Default false.</summary>
    public bool Signup { get; init; }

    /// <summary><c>DGON_SIGNUP_ROLE</c>: role of self-created accounts, <c>viewer</c> (default) or <c>operator</c> (never admin).</summary>
    public string SignupRole { get; init; } = Roles.Viewer;

    /// <summary><c>DGON_SESSION_HOURS</c>: lifetime of a session (default 12 h, at most 720).</summary>
    public TimeSpan SessionLifetime { get; init; } = DefaultSessionLifetime;

    /// <summary>Automatic IP bans (<c>DGON_AUTO_BAN_FAILURES</c>, <c>DGON_AUTO_BAN_WINDOW_SECONDS</c>, <c>DGON_AUTO_BAN_SECONDS</c>).</summary>
    public AutoBanOptions AutoBan { get; init; } = AutoBanOptions.Default;

    /// <summary>
    /// <c>DGON_MANAGEMENT_URLS</c>: addresses (semicolon-separated Kestrel URLs) of a management listener; when set,
    /// <c>/metrics</c> answers only there, so the public ingress never exposes it. Empty: <c>/metrics</c> on the main port.
    /// </summary>
    public IReadOnlyList<Uri> ManagementUrls { get; init; } = [];

    /// <summary>Single sign-on (<c>DGON_OIDC_*</c>), or null when <c>DGON_OIDC_AUTHORITY</c> is unset.</summary>
    public OidcOptions? Oidc { get; init; }

    /// <summary>Name of the identity provider as shown to people (<c>DGON_OIDC_DISPLAY_NAME</c>).</summary>
    public string OidcDisplayName => Oidc?.DisplayName ?? OidcOptions.DefaultDisplayName;

    /// <summary>Reads the settings.</summary>
    /// <exception cref="InvalidOperationException">A value is malformed; the message names the variable.</exception>
    public static AccountOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var role = Settings.Optional(configuration["DGON_SIGNUP_ROLE"]) ?? Roles.Viewer;
        if (role is not (Roles.Viewer or Roles.Operator))
        {
            throw new InvalidOperationException($"DGON_SIGNUP_ROLE must be viewer or operator; got '{role}'");
        }

        var hours = Settings.Optional(configuration["DGON_SESSION_HOURS"]);
        var lifetime = DefaultSessionLifetime;
        if (hours is not null)
        {
            if (!double.TryParse(hours, NumberStyles.Float, CultureInfo.InvariantCulture, out var h) || !(h > 0) || h > 720)
            {
                throw new InvalidOperationException($"DGON_SESSION_HOURS must be a number of hours in (0, 720]; got '{hours}'");
            }

            lifetime = TimeSpan.FromHours(h);
        }

        var failuresText = Settings.Optional(configuration["DGON_AUTO_BAN_FAILURES"]);
        var failures = AutoBanOptions.Default.Failures;
        if (failuresText is not null && !(int.TryParse(failuresText, NumberStyles.None, CultureInfo.InvariantCulture, out failures) && failures <= 100_000))
        {
            throw new InvalidOperationException($"DGON_AUTO_BAN_FAILURES must be an integer from 0 (off) to 100000; got '{failuresText}'");
        }

        var urls = new List<Uri>();
        foreach (var text in (configuration["DGON_MANAGEMENT_URLS"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.Port <= 0)
            {
                throw new InvalidOperationException($"DGON_MANAGEMENT_URLS: '{text}' is not an http(s) URL with a port (e.g. http://0.0.0.0:9090)");
            }

            urls.Add(url);
        }

        return new AccountOptions
        {
            OpenReads = NodeTrustOptions.Flag(configuration, "DGON_OPEN_READS", false),
            Signup = NodeTrustOptions.Flag(configuration, "DGON_SIGNUP", false),
            SignupRole = role,
            SessionLifetime = lifetime,
            AutoBan = new AutoBanOptions(
                failures,
                Settings.Seconds("DGON_AUTO_BAN_WINDOW_SECONDS", configuration["DGON_AUTO_BAN_WINDOW_SECONDS"], AutoBanOptions.Default.Window),
                Settings.Seconds("DGON_AUTO_BAN_SECONDS", configuration["DGON_AUTO_BAN_SECONDS"], AutoBanOptions.Default.Duration)),
            ManagementUrls = urls,
            Oidc = OidcOptions.FromConfiguration(configuration),
        };
    }
}
