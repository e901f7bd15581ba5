#!/usr/bin/env bash
# Real-cluster end-to-end run of DGON Console (see tests/e2e/README.md):
#   build the four images → k3d cluster → import images → helm install charts/dgon → helm test →
#   a join token from the admin API (admin token from the chart's Secret) →
#   an agent outside the cluster enrolls with it through the ingress → its DgonNode turns active →
#   the operator leader's /metrics shows it active and the API's /metrics (its management port) counts heartbeats →
#   clean up.
#
# Without a Docker engine (no docker CLI, or `docker info` fails) it prints "skipped: no Docker engine (…)" and
# exits 0 before creating anything (REQUIRE_DOCKER=1 turns that into a failure). With Docker present, a missing
# k3d, helm, kubectl, curl or python3 is an error.
#
# Environment (all optional):
#   CLUSTER_NAME   k3d cluster to create (default dgon-e2e-<pid>; an existing cluster of that name is refused)
#   HOST_PORT      host port of the k3d load balancer, i.e. of the ingress (default 8081)
#   INGRESS_HOST   API ingress host name (default dgon.localhost; must resolve to 127.0.0.1 for curl)
#   KEEP_CLUSTER   1: keep the cluster and its kubeconfig afterwards (default 0: delete the cluster)
#   WAIT_SECONDS   bound of each wait: ingress route, node active, metrics (default 180)
#   K3S_IMAGE      k3s node image for `k3d cluster create --image` (default: k3d's own)
#   REQUIRE_DOCKER 1: no Docker engine is a failure instead of a skip
#   DOCKER_HOST, DOCKER_CONTEXT, …  honoured as usual by the docker CLI
set -euo pipefail

# Only bash builtins until Docker is known to be usable, so the skip path runs on a bare PATH.
script_dir="${BASH_SOURCE[0]%/*}"
[ "$script_dir" = "${BASH_SOURCE[0]}" ] && script_dir=.
script_dir="$(cd "$script_dir" && pwd)"
repo="$(cd "$script_dir/../.." && pwd)"

CLUSTER_NAME="${CLUSTER_NAME:-dgon-e2e-$$}"
HOST_PORT="${HOST_PORT:-8081}"
INGRESS_HOST="${INGRESS_HOST:-dgon.localhost}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
WAIT_SECONDS="${WAIT_SECONDS:-180}"
K3S_IMAGE="${K3S_IMAGE:-}"
REQUIRE_DOCKER="${REQUIRE_DOCKER:-0}"

readonly NAMESPACE=dgon
readonly RELEASE=dgon
readonly FULLNAME=dgon # the release name contains the chart name, so the chart uses it as the object-name prefix
readonly REGISTRY=dgon.local
readonly TAG=e2e
readonly NODE_ID=e2e-node-1
readonly API_METRICS_PORT=9090 # the chart's api.managementPort: the API serves /metrics there only (404 on 8001)
readonly COMPONENTS=(api operator dashboard agent)
readonly IN_CLUSTER=(api operator dashboard) # the agent image runs on the host, outside the cluster
AGENT_CONTAINER="${CLUSTER_NAME}-agent"

step() { printf '\n==> %s\n' "$*"; }
info() {
  local line
  while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$*"
}
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  exit 1
}
first_line() {
  local text="${1#"${1%%[![:space:]]*}"}"
  printf '%s' "${text%%$'\n'*}"
}
# Runs a command with a time limit where coreutils' timeout exists (not on every macOS).
bounded() {
  local seconds="$1"
  shift
  if command -v timeout >/dev/null 2>&1; then
    timeout "$seconds" "$@"
  else
    "$@"
  fi
}

no_docker() {
  if [ "$REQUIRE_DOCKER" = 1 ]; then
    printf 'FAILED: no Docker engine (%s) and REQUIRE_DOCKER=1\n' "$1" >&2
    exit 1
  fi
  printf 'skipped: no Docker engine (%s)\n' "$1"
  exit 0
}

# ---------------------------------------------------------------------------------------------------------------
# Preconditions. Nothing is created before this section has passed.
# ---------------------------------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || no_docker "docker CLI not found on PATH"
if ! docker_out="$(bounded 30 docker info --format '{{.ServerVersion}}' 2>&1)"; then
  no_docker "docker info failed: $(first_line "$docker_out")"
fi
docker_version="$(first_line "$docker_out")"
[ -n "$docker_version" ] || no_docker "docker info reported no server version"

step "Docker engine ${docker_version}; checking the other tools"
missing=()
for tool in k3d helm kubectl curl python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] || fail "Docker is available but ${missing[*]} not found on PATH (see tests/e2e/README.md)"

k3d_version="$(k3d version 2>/dev/null | sed -n 's/^k3d version v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n 1)"
[ "${k3d_version%%.*}" -ge 5 ] 2>/dev/null || fail "k3d v5 or later is needed (found '${k3d_version:-unknown}')"
helm_version="$(helm version --template '{{.Version}}' 2>/dev/null || true)"
helm_major="$(printf '%s' "$helm_version" | sed -n 's/^v\([0-9]*\)\..*/\1/p')"
helm_minor="$(printf '%s' "$helm_version" | sed -n 's/^v[0-9]*\.\([0-9]*\).*/\1/p')"
if ! [ "${helm_major:-0}" -gt 3 ] && ! { [ "${helm_major:-0}" -eq 3 ] && [ "${helm_minor:-0}" -ge 8 ]; }; then
  fail "helm 3.8 or later is needed (found '${helm_version:-unknown}')"
fi
info "k3d ${k3d_version}, helm ${helm_version}, $(kubectl version --client 2>/dev/null | head -n 1)"
case "$HOST_PORT" in '' | *[!0-9]*) fail "HOST_PORT must be a port number (got '$HOST_PORT')" ;; esac
if k3d cluster get "$CLUSTER_NAME" >/dev/null 2>&1; then
  fail "a k3d cluster named $CLUSTER_NAME already exists; set CLUSTER_NAME to another name (it is never deleted by this script)"
fi

# ---------------------------------------------------------------------------------------------------------------
# Clean-up on every exit path: diagnostics on failure, then agent, stub Ollama, cluster, work directory.
# ---------------------------------------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/dgon-e2e.XXXXXX")"
cluster_created=0
agent_started=0
stub_pid=""

diagnostics() {
  step "Diagnostics"
  if [ "$agent_started" = 1 ]; then
    info "agent container logs (last 60 lines):"
    docker logs --tail 60 "$AGENT_CONTAINER" 2>&1 | sed 's/^/    | /'
  fi
  if [ "$cluster_created" = 1 ] && [ -s "$work/kubeconfig" ]; then
    kubectl get all,ingress,dgonnodes,pvc -n "$NAMESPACE" -o wide 2>&1 | sed 's/^/    | /'
    info "events (last 40):"
    kubectl get events -n "$NAMESPACE" --sort-by=.lastTimestamp 2>&1 | tail -n 40 | sed 's/^/    | /'
    for pod in $(kubectl get pods -n "$NAMESPACE" -o name 2>/dev/null); do
      info "logs of ${pod} (last 40 lines):"
      kubectl logs -n "$NAMESPACE" "$pod" --all-containers --tail=40 2>&1 | sed 's/^/    | /'
    done
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [ "$rc" -ne 0 ] && diagnostics
  step "Clean-up"
  if [ "$agent_started" = 1 ]; then
    docker rm -f -v "$AGENT_CONTAINER" >/dev/null 2>&1 && info "agent container removed"
  fi
  if [ -n "$stub_pid" ]; then
    kill "$stub_pid" 2>/dev/null
    wait "$stub_pid" 2>/dev/null
    info "stub Ollama stopped"
  fi
  if [ "$cluster_created" = 1 ]; then
    if [ "$KEEP_CLUSTER" = 1 ]; then
      info "KEEP_CLUSTER=1: cluster ${CLUSTER_NAME} kept; export KUBECONFIG=${work}/kubeconfig"
      info "delete it with: k3d cluster delete ${CLUSTER_NAME}"
    else
      if k3d cluster delete "$CLUSTER_NAME" >/dev/null 2>&1; then
        info "cluster ${CLUSTER_NAME} deleted"
      else
        info "could not delete cluster ${CLUSTER_NAME}: run k3d cluster delete ${CLUSTER_NAME}"
      fi
    fi
  fi
  if [ "$KEEP_CLUSTER" != 1 ] || [ "$cluster_created" != 1 ]; then
    rm -rf "$work"
  fi
  if [ "$rc" -eq 0 ]; then
    printf '\nPASSED: DGON Console end to end on k3d\n'
  else
    printf '\nFAILED (exit code %s)\n' "$rc" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls "$@" every 2 s until it succeeds; fails (wait_for) or returns 1 (wait_for_quietly) after WAIT_SECONDS.
wait_for_quietly() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 2
  done
}
wait_for() {
  local what="$1"
  shift
  wait_for_quietly "$@" || fail "timed out after ${WAIT_SECONDS} s waiting for ${what}"
}

# ---------------------------------------------------------------------------------------------------------------
# Images, cluster, chart
# ---------------------------------------------------------------------------------------------------------------
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
for component in "${COMPONENTS[@]}"; do
  step "Building ${REGISTRY}/dgon-${component}:${TAG} (${component}/Dockerfile)"
  docker build -f "$repo/$component/Dockerfile" -t "${REGISTRY}/dgon-${component}:${TAG}" \
    --build-arg "VERSION=${TAG}" --build-arg "REVISION=${revision}" "$repo"
done

step "Creating k3d cluster ${CLUSTER_NAME} (ingress on 127.0.0.1:${HOST_PORT})"
cluster_created=1 # set before create: a half-created cluster is deleted too
create_args=(--servers 1 --agents 0 -p "${HOST_PORT}:80@loadbalancer"
  --kubeconfig-update-default=false --kubeconfig-switch-context=false --wait --timeout 180s)
[ -z "$K3S_IMAGE" ] || create_args+=(--image "$K3S_IMAGE")
k3d cluster create "$CLUSTER_NAME" "${create_args[@]}"
# Our own kubeconfig file: the user's ~/.kube/config and current context are left alone.
k3d kubeconfig get "$CLUSTER_NAME" >"$work/kubeconfig"
export KUBECONFIG="$work/kubeconfig"
kubectl get nodes -o wide

in_cluster_images=()
for component in "${IN_CLUSTER[@]}"; do
  in_cluster_images+=("${REGISTRY}/dgon-${component}:${TAG}")
done
step "Importing ${in_cluster_images[*]}"
k3d image import -c "$CLUSTER_NAME" "${in_cluster_images[@]}"

# Plain HTTP on the API ingress: the chart refuses that unless allowInsecureHttp=true. Acceptable here only because
# this is a local test: the ingress listens on 127.0.0.1 of this machine and the cluster is thrown away afterwards,
# so nobody can observe the hop that carries the node's token and the admin token. Never copy this to a real install.
step "helm install ${RELEASE} charts/dgon (namespace ${NAMESPACE}, bundled PostgreSQL, ingress host ${INGRESS_HOST}, plain HTTP on 127.0.0.1)"
helm install "$RELEASE" "$repo/charts/dgon" --namespace "$NAMESPACE" --create-namespace \
  --set image.registry="$REGISTRY" --set-string image.tag="$TAG" --set image.pullPolicy=Never \
  --set postgresql.mode=bundled \
  --set ingress.api.host="$INGRESS_HOST" --set ingress.api.className=traefik \
  --set ingress.api.tls.enabled=false --set ingress.api.allowInsecureHttp=true \
  --wait --timeout 5m
kubectl get pods,svc,ingress -n "$NAMESPACE" -o wide

step "helm test ${RELEASE}"
helm test "$RELEASE" --namespace "$NAMESPACE" --timeout 3m --logs

# The admin token of the API's /v1/admin endpoints, from the Secret the chart generates ("<fullname>-admin", key
# "token"). It is kept in a shell variable only: never printed, never on a command line (curl reads it on stdin).
admin_secret="${FULLNAME}-admin"
step "Reading the admin token from Secret ${admin_secret} (not shown)"
admin_token="$(kubectl get secret "$admin_secret" -n "$NAMESPACE" -o jsonpath='{.data.token}' | base64 -d)" \
  || fail "could not read the admin token from Secret ${admin_secret} in namespace ${NAMESPACE} (key token)"
[ -n "$admin_token" ] || fail "Secret ${admin_secret} in namespace ${NAMESPACE} has no admin token under key token"
info "admin token read (${#admin_token} characters)"

# ---------------------------------------------------------------------------------------------------------------
# An agent outside the cluster, through the ingress
# ---------------------------------------------------------------------------------------------------------------
# curl sets the Host header itself, so this works whether or not INGRESS_HOST resolves on this machine.
ingress_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: ${INGRESS_HOST}" "http://127.0.0.1:${HOST_PORT}$1" || true
}
# The same with the admin token: reads need a credential since accounts (issue 12). As for the join token below, the
# Authorization header goes to curl as a config on stdin (printf is a builtin), so the token is on no command line.
ingress_status_as_admin() {
  printf 'header = "Authorization: Bearer %s"\n' "$admin_token" \
    | curl -s -o /dev/null -w '%{http_code}' --max-time 5 --config - -H "Host: ${INGRESS_HOST}" "http://127.0.0.1:${HOST_PORT}$1" || true
}
ingress_routes_api() { [ "$(ingress_status_as_admin /v1/summary)" = 200 ]; }
step "Waiting for the ingress to route http://${INGRESS_HOST}:${HOST_PORT}/v1 to the API (Traefik starts after the cluster)"
wait_for "GET /v1/summary with the admin token through the ingress to answer 200" ingress_routes_api
info "GET /v1/summary with the admin token through the ingress: 200"
anonymous_status="$(ingress_status /v1/summary)"
[ "$anonymous_status" = 401 ] || fail "GET /v1/summary without a credential through the ingress answered ${anonymous_status:-nothing} instead of 401"
info "GET /v1/summary without a credential through the ingress: 401 (reads need a credential)"
metrics_status="$(ingress_status /metrics)"
[ "$metrics_status" != 200 ] || fail "/metrics is reachable through the public ingress (only /v1 should be routed)"
info "GET /metrics through the ingress: ${metrics_status} (not exposed, as intended)"

# A join token for the agent's first registration (node trust): POST /v1/admin/join-tokens with the admin token, through
# the same ingress the agent uses. The Authorization header goes to curl as a config on stdin (printf is a builtin),
# so the admin token is on no command line; the answer is kept in a variable, not a file, and only the token's public
# id is printed.
step "Creating a join token (POST /v1/admin/join-tokens through the ingress)"
join_response="$(printf 'header = "Authorization: Bearer %s"\n' "$admin_token" \
  | curl -s --max-time 10 --config - -H "Host: ${INGRESS_HOST}" -H 'Content-Type: application/json' \
    --data '{}' -w '\n%{http_code}' "http://127.0.0.1:${HOST_PORT}/v1/admin/join-tokens" || true)"
unset admin_token
join_status="${join_response##*$'\n'}"
join_body="${join_response%$'\n'*}"
[ "$join_body" != "$join_response" ] || join_body=""
unset join_response
token_pattern='"token"[[:space:]]*:[[:space:]]*"([a-z0-9]{6})\.([a-z0-9]{16})"'
if [ "$join_status" != 201 ]; then
  # An error answer (problem JSON) holds no token; anything that looks like one is not shown all the same.
  [[ $join_body =~ $token_pattern ]] && join_body="(body not shown)"
  fail "POST /v1/admin/join-tokens through the ingress answered ${join_status:-nothing} instead of 201 with a join token: $(first_line "${join_body:-(empty body)}" | cut -c 1-300)"
fi
[[ $join_body =~ $token_pattern ]] \
  || fail "POST /v1/admin/join-tokens through the ingress answered 201 but with no join token (\"token\":\"<6 chars>.<16 chars>\") in its body"
join_token_id="${BASH_REMATCH[1]}"
join_token="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
unset join_body
[[ "" =~ ^$ ]] # clears BASH_REMATCH, which still holds the token (it cannot be assigned before bash 5.1)
info "join token ${join_token_id}.<secret not shown> created"

step "Starting the stub Ollama on 127.0.0.1 (GET /api/tags lists stub:latest)"
python3 "$script_dir/stub-ollama.py" "$work/ollama.port" &
stub_pid=$!
for _ in $(seq 1 100); do # up to 10 s
  [ -s "$work/ollama.port" ] && break
  kill -0 "$stub_pid" 2>/dev/null || fail "the stub Ollama exited (python3 ${script_dir}/stub-ollama.py)"
  sleep 0.1
done
[ -s "$work/ollama.port" ] || fail "the stub Ollama did not start listening within 10 s"
ollama_port="$(cat "$work/ollama.port")"
info "stub Ollama on 127.0.0.1:${ollama_port}"

# The agent image runs on the host network, the way a node operator's machine reaches the console: out through
# the ingress (the load-balancer port on 127.0.0.1), with the stub Ollama on its own loopback. The container
# cannot rely on the host's *.localhost resolution, so INGRESS_HOST is pinned to 127.0.0.1 in its /etc/hosts.
# DGON_JOIN_TOKEN enrolls the node on its first registration. The agent refuses plain http:// to a host it does not
# count as loopback (only 127.0.0.0/8, ::1 and "localhost"; INGRESS_HOST is not one), hence DGON_INSECURE_HTTP=true:
# the same local-test exception as allowInsecureHttp above.
step "Starting the agent (image ${REGISTRY}/dgon-agent:${TAG}, node ${NODE_ID}, API http://${INGRESS_HOST}:${HOST_PORT}, join token ${join_token_id})"
agent_started=1
docker run -d --name "$AGENT_CONTAINER" --network host --add-host "${INGRESS_HOST}:127.0.0.1" \
  --read-only --tmpfs /tmp \
  -e "DGON_API=http://${INGRESS_HOST}:${HOST_PORT}" -e "NODE_ID=${NODE_ID}" -e REGION=e2e \
  -e "OLLAMA_URL=http://127.0.0.1:${ollama_port}" -e HEARTBEAT_INTERVAL=2 \
  -e "DGON_JOIN_TOKEN=${join_token}" -e DGON_INSECURE_HTTP=true \
  "${REGISTRY}/dgon-agent:${TAG}" >/dev/null
unset join_token

node_active() {
  if [ "$(docker inspect -f '{{.State.Running}}' "$AGENT_CONTAINER" 2>/dev/null)" != true ]; then
    fail "the agent container stopped (see its logs below)"
  fi
  local phase
  phase="$(kubectl get dgonnode "$NODE_ID" -n "$NAMESPACE" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
  [ "$phase" = Active ]
}
step "Waiting for DgonNode ${NODE_ID} to be active"
wait_for "DgonNode ${NODE_ID} to reach phase Active" node_active
kubectl get dgonnodes -n "$NAMESPACE" -o wide

# ---------------------------------------------------------------------------------------------------------------
# Metrics, read per pod through the API server's pod proxy: a Service would pick a random replica, and only the
# operator leader exports the node series.
# ---------------------------------------------------------------------------------------------------------------
service_pods() {
  kubectl get endpointslices -n "$NAMESPACE" -l "kubernetes.io/service-name=$1" \
    -o jsonpath='{range .items[*].endpoints[*]}{.targetRef.name}{"\n"}{end}' 2>/dev/null | sort -u
}
pod_metrics() {
  kubectl get --raw "/api/v1/namespaces/${NAMESPACE}/pods/$1:$2/proxy/metrics" 2>/dev/null || true
}

# The sample of a series in Prometheus text format: `name{labels} value [timestamp]`. Labels may come in any order.
node_active_sample() {
  grep -E '^dgon_node_status\{' | grep -F "node=\"${NODE_ID}\"" | grep -F 'phase="active"' \
    | grep -E '\} 1(\.0*)?( [0-9]+)?$' || true
}
operator_reports_node() {
  local pod text sample leaders=0 nodes=0
  for pod in $(service_pods "${FULLNAME}-operator"); do
    text="$(pod_metrics "$pod" 8002)"
    if grep -Eq '^dgon_operator_leader(\{\})? 1(\.0*)?( [0-9]+)?$' <<<"$text"; then
      leaders=$((leaders + 1))
    fi
    sample="$(node_active_sample <<<"$text")"
    if [ -n "$sample" ]; then
      nodes=$((nodes + 1))
      operator_pod="$pod"
      operator_line="$sample"
    fi
  done
  # Exactly one leader, and it alone exports the node's series (a handover in between is waited out).
  operator_seen="${leaders} replica(s) with dgon_operator_leader 1, ${nodes} exporting the node as active"
  [ "$leaders" -eq 1 ] && [ "$nodes" -eq 1 ]
}
step "Checking the operator leader's /metrics for ${NODE_ID} active"
operator_pod=""
operator_line=""
operator_seen="no operator replica answered"
if ! wait_for_quietly operator_reports_node; then
  fail "timed out after ${WAIT_SECONDS} s waiting for one operator leader to export dgon_node_status{node=\"${NODE_ID}\",phase=\"active\"} 1 (last seen: ${operator_seen})"
fi
info "${operator_pod} (leader): ${operator_line}"

api_counts_heartbeats() {
  local pod
  for pod in $(service_pods "${FULLNAME}-api"); do
    api_line="$(pod_metrics "$pod" "$API_METRICS_PORT" | grep -E '^dgon_heartbeats_total(\{| )' || true)"
    if [ -n "$api_line" ]; then
      api_pod="$pod"
      return 0
    fi
  done
  return 1
}
step "Checking the API's /metrics (management port ${API_METRICS_PORT}) for dgon_heartbeats_total"
api_pod=""
api_line=""
wait_for "an API replica to export dgon_heartbeats_total" api_counts_heartbeats
info "${api_pod}: ${api_line}"
