using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Dgon.Deployment.Tests.E2e;

/// <summary>
/// tests/e2e/k3d.sh. Without a Docker engine the real script must take its skip path: exit 0, say so, create
/// nothing. The rest of the script runs against fake docker/k3d/helm/kubectl/curl (the stub Ollama is real), which
/// checks the order of the steps, the arguments, the metric checks and the clean-up on each failure path.
/// </summary>
public sealed partial class K3dScriptTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const string Cluster = "dgon-e2e-test";

    /// <summary>The ingress check with the admin token: its Authorization header is in curl's config on stdin.</summary>
    private const string SummaryAsAdmin = "curl -s -o /dev/null -w %{http_code} --max-time 5 --config - -H Host: dgon.localhost http://127.0.0.1:18081/v1/summary";

    /// <summary>The same read without a credential (it must answer 401).</summary>
    private const string SummaryAnonymous = "curl -s -o /dev/null -w %{http_code} --max-time 5 -H Host: dgon.localhost http://127.0.0.1:18081/v1/summary";

    private readonly ScriptRun _run = new();

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task Script_is_valid_bash()
    {
        var result = await RunBashAsync("-n", ScriptRun.Script);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Without_a_docker_cli_it_skips_with_exit_code_0_and_creates_nothing()
    {
        var emptyBin = _run.Scratch("empty-bin");

        var result = await _run.RunAsync(new Dictionary<string, string?> { ["PATH"] = emptyBin }, Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("skipped: no Docker engine (docker CLI not found on PATH)\n", result.Stdout);
        Assert.Equal("", result.Stderr);
        AssertNothingCreated();
    }

    [Fact]
    public async Task With_docker_host_pointing_nowhere_it_skips_with_exit_code_0()
    {
        var socket = Path.Combine(_run.Scratch("no-daemon"), "nonexistent.sock");

        var result = await _run.RunAsync(new Dictionary<string, string?> { ["DOCKER_HOST"] = "unix://" + socket }, Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("skipped: no Docker engine (", result.Stdout, StringComparison.Ordinal);
        Assert.Single(result.Stdout.TrimEnd('\n').Split('\n'));
        Assert.True(result.Elapsed < Deadline);
        AssertNothingCreated();
    }

    [Fact]
    public async Task When_docker_info_fails_nothing_but_docker_info_is_called()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "docker-info"), Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(
            "skipped: no Docker engine (docker info failed: Cannot connect to the Docker daemon at unix:///fake.sock. Is the docker daemon running?)\n",
            result.Stdout);
        Assert.Equal(["docker info --format {{.ServerVersion}}"], fakes.Calls);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Require_docker_turns_the_skip_into_a_failure()
    {
        var result = await _run.RunAsync(new Dictionary<string, string?> { ["PATH"] = _run.Scratch("empty-bin"), ["REQUIRE_DOCKER"] = "1" }, Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FAILED: no Docker engine (docker CLI not found on PATH) and REQUIRE_DOCKER=1", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("skipped", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_docker_but_without_k3d_helm_kubectl_it_fails_before_creating_anything()
    {
        var fakes = Fakes(["docker"]);

        var result = await _run.RunAsync(new Dictionary<string, string?> { ["PATH"] = fakes.Directory, ["FAKE_LOG"] = fakes.Log }, Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FAILED: Docker is available but k3d helm kubectl curl python3 not found on PATH", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("skipped", result.Output, StringComparison.Ordinal);
        Assert.Equal(["docker info --format {{.ServerVersion}}"], fakes.Calls);
        AssertNothingCreated();
    }

    [Fact]
    public async Task An_existing_cluster_of_the_same_name_is_refused_and_left_alone()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "cluster-exists"), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"a k3d cluster named {Cluster} already exists", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(fakes.Calls, c => c.StartsWith("k3d cluster delete", StringComparison.Ordinal) || c.StartsWith("docker build", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Full_run_builds_installs_runs_the_agent_through_the_ingress_checks_metrics_and_cleans_up()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes), Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        var calls = fakes.Calls;

        // Images: the four Dockerfiles, context = repository root, tagged for the chart's image values.
        foreach (var component in new[] { "api", "operator", "dashboard", "agent" })
        {
            Assert.Contains(calls, c => c.StartsWith($"docker build -f {Dgon.Testing.RepoPaths.Root}/{component}/Dockerfile -t dgon.local/dgon-{component}:e2e ", StringComparison.Ordinal)
                && c.EndsWith(" " + Dgon.Testing.RepoPaths.Root, StringComparison.Ordinal));
        }

        Assert.Contains($"k3d cluster create {Cluster} --servers 1 --agents 0 -p 18081:80@loadbalancer --kubeconfig-update-default=false --kubeconfig-switch-context=false --wait --timeout 180s", calls);
        Assert.Contains($"k3d image import -c {Cluster} dgon.local/dgon-api:e2e dgon.local/dgon-operator:e2e dgon.local/dgon-dashboard:e2e", calls);
        var install = Assert.Single(calls, c => c.StartsWith("helm install ", StringComparison.Ordinal));
        Assert.Equal(
            $"helm install dgon {Dgon.Testing.RepoPaths.Root}/charts/dgon --namespace dgon --create-namespace --set image.registry=dgon.local --set-string image.tag=e2e --set image.pullPolicy=Never --set postgresql.mode=bundled --set ingress.api.host=dgon.localhost --set ingress.api.className=traefik --set ingress.api.tls.enabled=false --set ingress.api.allowInsecureHttp=true --wait --timeout 5m",
            install);
        Assert.Contains("helm test dgon --namespace dgon --timeout 3m --logs", calls);

        // Node trust: the admin token from the chart's Secret, a join token created with it through the ingress.
        Assert.Contains("kubectl get secret dgon-admin -n dgon -o jsonpath={.data.token}", calls);
        var post = Assert.Single(calls, c => c.StartsWith("curl ", StringComparison.Ordinal) && c.EndsWith("/v1/admin/join-tokens", StringComparison.Ordinal));
        Assert.Equal(
            "curl -s --max-time 10 --config - -H Host: dgon.localhost -H Content-Type: application/json --data {} -w \\n%{http_code} http://127.0.0.1:18081/v1/admin/join-tokens",
            post);
        Assert.Contains("curl config: Authorization header with the admin token", calls);
        Assert.Contains($"join token {FakeTools.JoinTokenId}.<secret not shown> created", result.Stdout, StringComparison.Ordinal);

        // The agent: outside the cluster, through the ingress host, with the stub Ollama the script started.
        var run = Assert.Single(calls, c => c.StartsWith("docker run ", StringComparison.Ordinal));
        Assert.Contains("--network host --add-host dgon.localhost:127.0.0.1 --read-only", run, StringComparison.Ordinal);
        Assert.Contains("-e DGON_API=http://dgon.localhost:18081 -e NODE_ID=e2e-node-1", run, StringComparison.Ordinal);
        Assert.Contains("-e HEARTBEAT_INTERVAL=2", run, StringComparison.Ordinal);
        Assert.Contains($" -e DGON_JOIN_TOKEN={FakeTools.JoinToken} -e DGON_INSECURE_HTTP=true ", run, StringComparison.Ordinal);
        Assert.EndsWith(" dgon.local/dgon-agent:e2e", run, StringComparison.Ordinal);
        var fetched = Assert.Single(calls, c => c.StartsWith("agent fetched ", StringComparison.Ordinal));
        Assert.Matches(@"^agent fetched http://127\.0\.0\.1:\d+/api/tags: \{""models"": \[\{""name"": ""stub:latest""", fetched);

        // Order: build, cluster, import, install, test, admin token, ingress, join token, agent, node active, metrics,
        // clean-up.
        var order = new[]
        {
            "docker build", "k3d cluster create", "k3d image import", "helm install", "helm test",
            "kubectl get secret dgon-admin ", SummaryAsAdmin, "curl config: Authorization header with the admin token (summary)",
            SummaryAnonymous, "curl -s --max-time 10 --config - ", "docker run", "kubectl get dgonnode e2e-node-1 -n dgon -o jsonpath={.status.phase}",
            "kubectl get dgonnodes -n dgon -o wide",
            "kubectl get --raw /api/v1/namespaces/dgon/pods/dgon-operator-5d8f-aaaaa:8002/proxy/metrics",
            "kubectl get --raw /api/v1/namespaces/dgon/pods/dgon-api-7c9b-ccccc:9090/proxy/metrics",
            $"docker rm -f -v {Cluster}-agent", $"k3d cluster delete {Cluster}",
        }.Select(fakes.IndexOf).ToList();
        Assert.DoesNotContain(-1, order);
        Assert.Equal(order.Order(), order);

        // The public ingress answers /v1 (with the admin token; 401 without a credential) and hides /metrics.
        Assert.Contains(SummaryAsAdmin, calls);
        Assert.Contains(SummaryAnonymous, calls);
        Assert.Contains("GET /v1/summary with the admin token through the ingress: 200", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("GET /v1/summary without a credential through the ingress: 401 (reads need a credential)", result.Stdout, StringComparison.Ordinal);
        // The API's /metrics is read on its management port only (the chart's api.managementPort).
        Assert.DoesNotContain(calls, c => c.StartsWith("kubectl get --raw /api/v1/namespaces/dgon/pods/dgon-api-", StringComparison.Ordinal) && !c.EndsWith(":9090/proxy/metrics", StringComparison.Ordinal));
        Assert.Contains("GET /metrics through the ingress: 404 (not exposed, as intended)", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("dgon-operator-5d8f-bbbbb (leader): dgon_node_status{node=\"e2e-node-1\",phase=\"active\",region=\"e2e\",runtime=\"ollama\"} 1", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("dgon-api-7c9b-ddddd: dgon_heartbeats_total{result=\"accepted\"} 7", result.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("PASSED: DGON Console end to end on k3d\n", result.Stdout, StringComparison.Ordinal);

        AssertStubStopped(fetched);
        AssertNothingCreated();
    }

    [Fact]
    public async Task The_join_token_reaches_the_agent_and_no_token_is_printed_or_put_on_a_command_line()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes), Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        var run = Assert.Single(fakes.Calls, c => c.StartsWith("docker run ", StringComparison.Ordinal));
        Assert.Contains($"-e DGON_JOIN_TOKEN={FakeTools.JoinToken} ", run, StringComparison.Ordinal);
        AssertNoSecretPrinted(result);

        // The admin token travels to curl on stdin, never as an argument of any tool.
        Assert.DoesNotContain(fakes.Calls, c => c.Contains(FakeTools.AdminToken, StringComparison.Ordinal));
        // The join token's secret is an argument of the agent's docker run only.
        Assert.Equal([run], fakes.Calls.Where(c => c.Contains(FakeTools.JoinTokenSecret, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("admin-secret-missing", "FAILED: could not read the admin token from Secret dgon-admin in namespace dgon (key token)")]
    [InlineData("join-token-denied", "FAILED: POST /v1/admin/join-tokens through the ingress answered 401 instead of 201 with a join token: {\"type\":")]
    [InlineData("join-token-empty", "FAILED: POST /v1/admin/join-tokens through the ingress answered 201 but with no join token")]
    public async Task Without_a_join_token_the_run_fails_clearly_before_the_agent_starts_and_cleans_up(string failure, string message)
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: failure), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.Contains("==> Diagnostics", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(fakes.Calls, c => c.StartsWith("docker run", StringComparison.Ordinal));
        Assert.Contains($"k3d cluster delete {Cluster}", fakes.Calls);
        Assert.Contains("FAILED (exit code 1)", result.Stderr, StringComparison.Ordinal);
        AssertNoSecretPrinted(result);
        AssertNothingCreated();
    }

    [Fact]
    public async Task Each_step_is_announced()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes), Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        var steps = StepLine().Matches(result.Stdout).Select(m => m.Groups[1].Value).ToList();
        Assert.True(steps.Count >= 12, string.Join('\n', steps));
        Assert.StartsWith("Docker engine 27.3.1", steps[0], StringComparison.Ordinal);
        Assert.Equal("Clean-up", steps[^1]);
    }

    [Fact]
    public async Task A_failed_helm_install_still_deletes_the_cluster_and_prints_diagnostics()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "helm-install"), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("==> Diagnostics", result.Stdout, StringComparison.Ordinal);
        Assert.Contains($"k3d cluster delete {Cluster}", fakes.Calls);
        Assert.DoesNotContain(fakes.Calls, c => c.StartsWith("docker run", StringComparison.Ordinal));
        Assert.Contains("FAILED (exit code 1)", result.Stderr, StringComparison.Ordinal);
        AssertNothingCreated();
    }

    [Fact]
    public async Task A_node_that_never_turns_active_times_out_and_everything_is_cleaned_up()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "node-pending", waitSeconds: 3), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FAILED: timed out after 3 s waiting for DgonNode e2e-node-1 to reach phase Active", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("| fake agent log line", result.Stdout, StringComparison.Ordinal); // the agent's logs are shown
        var calls = fakes.Calls;
        Assert.True(fakes.IndexOf($"docker rm -f -v {Cluster}-agent") < fakes.IndexOf($"k3d cluster delete {Cluster}"));
        Assert.DoesNotContain(calls, c => c.Contains("proxy/metrics", StringComparison.Ordinal));
        AssertStubStopped(Assert.Single(calls, c => c.StartsWith("agent fetched ", StringComparison.Ordinal)));
        AssertNothingCreated();
    }

    [Fact]
    public async Task An_agent_container_that_exits_fails_the_run_at_once()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "agent-exited"), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FAILED: the agent container stopped", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"k3d cluster delete {Cluster}", fakes.Calls);
    }

    [Fact]
    public async Task Two_operator_leaders_fail_the_metrics_check()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "two-leaders", waitSeconds: 3), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("last seen: 2 replica(s) with dgon_operator_leader 1, 1 exporting the node as active", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"k3d cluster delete {Cluster}", fakes.Calls);
    }

    [Fact]
    public async Task Keep_cluster_keeps_the_cluster_and_its_kubeconfig()
    {
        var fakes = Fakes();
        var env = Env(fakes);
        env["KEEP_CLUSTER"] = "1";

        var result = await _run.RunAsync(env, Deadline);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain(fakes.Calls, c => c.StartsWith("k3d cluster delete", StringComparison.Ordinal));
        Assert.Contains($"docker rm -f -v {Cluster}-agent", fakes.Calls); // the agent and the stub still go
        var kubeconfig = Assert.Single(Directory.GetFiles(_run.TempDir, "kubeconfig", SearchOption.AllDirectories));
        Assert.Contains($"export KUBECONFIG={kubeconfig}", result.Stdout, StringComparison.Ordinal);
        Assert.Contains($"k3d cluster delete {Cluster}", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Anonymous_reads_answering_200_through_the_ingress_fail_the_run()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "open-reads"), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FAILED: GET /v1/summary without a credential through the ingress answered 200 instead of 401", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(fakes.Calls, c => c.StartsWith("docker run", StringComparison.Ordinal));
        Assert.Contains($"k3d cluster delete {Cluster}", fakes.Calls);
        AssertNoSecretPrinted(result);
    }

    [Fact]
    public async Task An_ingress_that_never_accepts_the_admin_token_times_out_without_printing_it()
    {
        var fakes = Fakes();

        var result = await _run.RunAsync(Env(fakes, fail: "summary-denied", waitSeconds: 3), Deadline);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FAILED: timed out after 3 s waiting for GET /v1/summary with the admin token through the ingress to answer 200", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(SummaryAsAdmin, fakes.Calls);
        Assert.DoesNotContain(fakes.Calls, c => c.Contains(FakeTools.AdminToken, StringComparison.Ordinal));
        Assert.Contains($"k3d cluster delete {Cluster}", fakes.Calls);
        AssertNoSecretPrinted(result);
    }

    private FakeTools Fakes(IEnumerable<string>? tools = null)
    {
        var directory = _run.Scratch("fake-bin");
        return new FakeTools(directory, Path.Combine(_run.Scratch("fake-log"), "calls.log"), tools);
    }

    private static Dictionary<string, string?> Env(FakeTools fakes, string? fail = null, int? waitSeconds = null) => new()
    {
        ["PATH"] = fakes.Directory + ":" + Environment.GetEnvironmentVariable("PATH"),
        ["FAKE_LOG"] = fakes.Log,
        ["FAKE_FAIL"] = fail,
        ["CLUSTER_NAME"] = Cluster,
        ["HOST_PORT"] = "18081",
        ["WAIT_SECONDS"] = waitSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Neither the admin token (plain or base64) nor the join token's secret part is on stdout or stderr.</summary>
    private static void AssertNoSecretPrinted(ScriptResult result)
    {
        var adminBase64 = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(FakeTools.AdminToken));
        foreach (var secret in new[] { FakeTools.AdminToken, adminBase64, FakeTools.JoinTokenSecret })
        {
            Assert.DoesNotContain(secret, result.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, result.Stderr, StringComparison.Ordinal);
        }
    }

    private void AssertNothingCreated()
    {
        Assert.Empty(Directory.EnumerateFileSystemEntries(_run.Home));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_run.TempDir));
    }

    /// <summary>The stub Ollama the agent was pointed at no longer listens once the script has exited.</summary>
    private static void AssertStubStopped(string fetchedLine)
    {
        var port = int.Parse(StubPort().Match(fetchedLine).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        using var client = new TcpClient();
        Assert.ThrowsAny<SocketException>(() => client.Connect("127.0.0.1", port));
    }

    private static async Task<ScriptResult> RunBashAsync(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new ScriptResult(process.ExitCode, await stdout, await stderr, TimeSpan.Zero);
    }

    [GeneratedRegex(@"^==> (.*)$", RegexOptions.Multiline)]
    private static partial Regex StepLine();

    [GeneratedRegex(@"http://127\.0\.0\.1:(\d+)/api/tags")]
    private static partial Regex StubPort();
}
