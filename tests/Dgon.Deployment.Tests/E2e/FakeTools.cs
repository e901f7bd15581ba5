namespace Dgon.Deployment.Tests.E2e;

/// <summary>
/// Stand-ins for docker, k3d, helm, kubectl and curl, so that the whole of k3d.sh runs without a Docker engine or
/// a cluster. Each call is appended to a log ("tool arg arg …"); answers follow the real tools' output formats.
/// FAKE_FAIL (space-separated) switches on failures: docker-info, helm-install, node-pending, two-leaders,
/// agent-exited, cluster-exists, admin-secret-missing, join-token-denied (the POST answers 401), join-token-empty
/// (201 without a token), open-reads (GET /v1/summary answers 200 without a credential too), summary-denied (it
/// answers 401 even with the admin token). The fake `docker run` fetches OLLAMA_URL/api/tags the way the agent would and logs
/// the answer, so a test sees that the stub Ollama the script started is reachable at the URL the agent gets.
/// The fake kubectl serves <see cref="AdminToken"/> from the Secret dgon-admin, and the API's /metrics on the
/// management port 9090 only (the 8001 pod proxy answers a 404 error, as the API does); the fake curl answers
/// GET /v1/summary with 200 and POST /v1/admin/join-tokens with 201 and <see cref="JoinToken"/> only when its config
/// on stdin (curl --config -) carries "Authorization: Bearer <see cref="AdminToken"/>" (else 401), and logs whether
/// it did ("curl config: …") without the token itself.
/// </summary>
public sealed class FakeTools
{
    public static readonly string[] AllTools = ["docker", "k3d", "helm", "kubectl", "curl"];

    /// <summary>The admin token in the fake Secret dgon-admin (48 alphanumerics, like the chart generates).</summary>
    public const string AdminToken = "FakeAdminQx7Lm2Pz9Rt4Vw8Yb3Nc5Hd6Jk1Sg0Ua2WeFo4T";

    /// <summary>Public id of the join token the fake API creates.</summary>
    public const string JoinTokenId = "e2ejt1";

    /// <summary>Secret part of the join token the fake API creates.</summary>
    public const string JoinTokenSecret = "s3cr3tjo1nt0k3n5";

    /// <summary>The whole join token, id.secret.</summary>
    public const string JoinToken = JoinTokenId + "." + JoinTokenSecret;

    private const string Script = """
        tool="${0##*/}"
        printf '%s\n' "$tool $*" >>"$FAKE_LOG"
        failing() { case " ${FAKE_FAIL:-} " in *" $1 "*) return 0 ;; esac; return 1; }
        case "$tool" in
        docker)
          case "$1" in
          info)
            if failing docker-info; then
              echo "Cannot connect to the Docker daemon at unix:///fake.sock. Is the docker daemon running?" >&2
              exit 1
            fi
            echo 27.3.1 ;;
          run)
            url=""
            for a in "$@"; do case "$a" in OLLAMA_URL=*) url="${a#OLLAMA_URL=}" ;; esac; done
            tags="$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + "/api/tags", timeout=5).read().decode())' "$url" 2>&1)"
            printf 'agent fetched %s/api/tags: %s\n' "$url" "$tags" >>"$FAKE_LOG"
            echo 0123456789ab ;;
          inspect) if failing agent-exited; then echo false; else echo true; fi ;;
          logs) echo "fake agent log line" ;;
          esac ;;
        k3d)
          case "$1 ${2:-}" in
          "version "*) printf 'k3d version v5.7.4\nk3s version v1.30.4-k3s1 (default)\n' ;;
          "cluster get") failing cluster-exists || exit 1 ;;
          "kubeconfig get") printf 'apiVersion: v1\nkind: Config\n' ;;
          esac ;;
        helm)
          case "$1" in
          version) echo v3.15.2 ;;
          install) if failing helm-install; then echo "Error: INSTALLATION FAILED: fake failure" >&2; exit 1; fi ;;
          esac ;;
        kubectl)
          case "$*" in
          "version --client") echo "Client Version: v1.32.0" ;;
          "get secret dgon-admin -n dgon -o jsonpath={.data.token}")
            if failing admin-secret-missing; then
              echo 'Error from server (NotFound): secrets "dgon-admin" not found' >&2
              exit 1
            fi
            printf '%s' '@ADMIN_TOKEN_BASE64@' ;;
          *"get dgonnode e2e-node-1 "*) if failing node-pending; then printf Pending; else printf Active; fi ;;
          *"get endpointslices"*"service-name=dgon-operator "*) printf 'dgon-operator-5d8f-aaaaa\ndgon-operator-5d8f-bbbbb\n' ;;
          *"get endpointslices"*"service-name=dgon-api "*) printf 'dgon-api-7c9b-ccccc\ndgon-api-7c9b-ddddd\n' ;;
          *"pods/dgon-operator-5d8f-aaaaa:8002/proxy/metrics")
            printf '%s\n' '# TYPE dgon_operator_leader gauge'
            if failing two-leaders; then echo 'dgon_operator_leader 1'; else echo 'dgon_operator_leader 0'; fi ;;
          *"pods/dgon-operator-5d8f-bbbbb:8002/proxy/metrics")
            printf '%s\n' '# TYPE dgon_operator_leader gauge' 'dgon_operator_leader 1' \
              '# TYPE dgon_node_status gauge' \
              'dgon_node_status{node="e2e-node-1",phase="active",region="e2e",runtime="ollama"} 1' \
              'dgon_node_status{node="e2e-node-1",phase="offline",region="e2e",runtime="ollama"} 0' \
              'dgon_node_status{node="e2e-node-1",phase="pending",region="e2e",runtime="ollama"} 0' ;;
          *"pods/dgon-api-7c9b-ccccc:9090/proxy/metrics") echo 'dgon_nodes{phase="active"} 1' ;;
          *"pods/dgon-api-7c9b-ddddd:9090/proxy/metrics") echo 'dgon_heartbeats_total{result="accepted"} 7' ;;
          *"pods/dgon-api-"*":8001/proxy/metrics") echo 'Error from server (NotFound): the server could not find the requested resource' >&2; exit 1 ;;
          esac ;;
        curl)
          url="${*: -1}"
          config=""
          case " $* " in *" --config - "*) config="$(cat)" ;; esac
          admin=0
          [ "$config" = 'header = "Authorization: Bearer @ADMIN_TOKEN@"' ] && admin=1
          case "$url" in
          */v1/summary)
            [ "$admin" = 1 ] && echo "curl config: Authorization header with the admin token (summary)" >>"$FAKE_LOG"
            if { [ "$admin" = 1 ] && ! failing summary-denied; } || failing open-reads; then
              printf 200
            else
              printf 401
            fi ;;
          */v1/admin/join-tokens)
            if [ "$admin" = 1 ]; then
              echo "curl config: Authorization header with the admin token" >>"$FAKE_LOG"
              authorized=1
            else
              echo "curl config: no Authorization header with the admin token" >>"$FAKE_LOG"
              authorized=0
            fi
            if [ "$authorized" = 0 ] || failing join-token-denied; then
              printf '%s\n%s' '{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.2","title":"Unauthorized","status":401}' 401
            elif failing join-token-empty; then
              printf '%s\n%s' '{"id":"@JOIN_TOKEN_ID@","description":null,"expires_at":"2030-01-01T00:00:00Z","max_uses":null,"uses":0,"region":null,"revoked_at":null}' 201
            else
              printf '%s\n%s' '{"id":"@JOIN_TOKEN_ID@","token":"@JOIN_TOKEN@","description":null,"expires_at":"2030-01-01T00:00:00Z","max_uses":null,"uses":0,"region":null,"revoked_at":null}' 201
            fi ;;
          *) printf 404 ;;
          esac ;;
        esac
        exit 0
        """;

    private static readonly string ScriptText = Script
        .Replace("@ADMIN_TOKEN_BASE64@", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(AdminToken)), StringComparison.Ordinal)
        .Replace("@ADMIN_TOKEN@", AdminToken, StringComparison.Ordinal)
        .Replace("@JOIN_TOKEN_ID@", JoinTokenId, StringComparison.Ordinal)
        .Replace("@JOIN_TOKEN@", JoinToken, StringComparison.Ordinal);

    public FakeTools(string directory, string log, IEnumerable<string>? tools = null)
    {
        Directory = directory;
        Log = log;
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("k3d.sh and its fakes are bash scripts");
        }

        var bash = ResolveOnPath("bash") ?? "/bin/bash";
        foreach (var tool in tools ?? AllTools)
        {
            var path = System.IO.Path.Combine(directory, tool);
            File.WriteAllText(path, $"#!{bash}\n{ScriptText}\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        File.WriteAllText(log, "");
    }

    /// <summary>Where the fakes are (put it first on PATH).</summary>
    public string Directory { get; }

    /// <summary>The call log.</summary>
    public string Log { get; }

    /// <summary>The logged calls, one per line.</summary>
    public IReadOnlyList<string> Calls => File.ReadAllLines(Log);

    /// <summary>Index of the first logged call that starts with <paramref name="prefix"/>, or -1.</summary>
    public int IndexOf(string prefix) => Calls.ToList().FindIndex(c => c.StartsWith(prefix, StringComparison.Ordinal));

    private static string? ResolveOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => System.IO.Path.Combine(d, name))
            .FirstOrDefault(File.Exists);
}
