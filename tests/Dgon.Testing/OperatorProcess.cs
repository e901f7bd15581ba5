using System.Globalization;

namespace Dgon.Testing;

/// <summary>Options of <see cref="OperatorProcess"/>.</summary>
public sealed record OperatorProcessOptions
{
    /// <summary>DATABASE_URL (the API's database).</summary>
    public required string DatabaseUrl { get; init; }

    /// <summary>KUBECONFIG file.</summary>
    public required string Kubeconfig { get; init; }

    /// <summary>Lease identity (POD_NAME).</summary>
    public required string Identity { get; init; }

    /// <summary>DGON_HEARTBEAT_GRACE_SECONDS.</summary>
    public double GraceSeconds { get; init; } = 3;

    /// <summary>DGON_STATUS_REFRESH_SECONDS (must match the API's).</summary>
    public double RefreshSeconds { get; init; } = 1;

    /// <summary>Leader election: lease, renew deadline and retry period in seconds.</summary>
    public (double Lease, double Renew, double Retry) Leader { get; init; } = (4, 3, 0.5);

    /// <summary>More environment variables.</summary>
    public IDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
}

/// <summary>The real operator (<c>operator/bin/{cfg}/net10.0/Dgon.Operator.dll</c>) as a child process; ready once <c>/readyz</c> answers 200.</summary>
public sealed class OperatorProcess : IAsyncDisposable
{
    private OperatorProcess(ManagedProcess process, string identity, Uri baseAddress)
    {
        Process = process;
        Identity = identity;
        BaseAddress = baseAddress;
    }

    /// <summary>The process.</summary>
    public ManagedProcess Process { get; }

    /// <summary>Its Lease identity.</summary>
    public string Identity { get; }

    /// <summary>Health endpoint base.</summary>
    public Uri BaseAddress { get; }

    /// <summary>Starts it and waits for readiness (migrations applied; it may be leader or standby).</summary>
    public static async Task<OperatorProcess> StartAsync(OperatorProcessOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var port = FreePort.Next();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var env = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = options.DatabaseUrl,
            ["KUBECONFIG"] = options.Kubeconfig,
            ["POD_NAME"] = options.Identity,
            ["DGON_HEARTBEAT_GRACE_SECONDS"] = S(options.GraceSeconds),
            ["DGON_STATUS_REFRESH_SECONDS"] = S(options.RefreshSeconds),
            ["DGON_LEADER_LEASE_SECONDS"] = S(options.Leader.Lease),
            ["DGON_LEADER_RENEW_SECONDS"] = S(options.Leader.Renew),
            ["DGON_LEADER_RETRY_SECONDS"] = S(options.Leader.Retry),
            ["ASPNETCORE_URLS"] = baseAddress.ToString().TrimEnd('/'),
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Logging__Console__FormatterName"] = "simple",
        };
        foreach (var (k, v) in options.Environment)
        {
            env[k] = v;
        }

        var dll = RepoPaths.BuiltAssembly("operator", "Dgon.Operator");
        var process = await ManagedProcess.StartServiceAsync(dll, [], env, new Uri(baseAddress, "/readyz"));
        return new OperatorProcess(process, options.Identity, baseAddress);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Process.DisposeAsync();

    private static string S(double seconds) => seconds.ToString(CultureInfo.InvariantCulture);
}
