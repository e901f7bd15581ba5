#!/usr/bin/env bash
# Kubernetes mode end to end with the product's default timings (grace 30 s, status refresh 10 s, a heartbeat every
# 10 s as seed 001's agent sends). Starts a throwaway PostgreSQL, the Kubernetes API test server
# (tests/Dgon.KubeTestServer), the API (DGON_REGISTRY=kubernetes) and the operator on free loopback ports, drives
# NODES nodes with bench/kubernetes_fleet.py and prints, never asserts:
#   (a) DgonNode status writes per node per minute (API and operator /metrics, by reason),
#   (b) how stale `kubectl get dgn` shows lastHeartbeatTime for healthy nodes,
#   (c) how long after its last heartbeat a silent node reads Offline, and the operator's Event.
# Stops and deletes everything it started. About 3 minutes (plus the build).
#
#   bench/kubernetes-mode.sh [--no-build]     env: NODES=20, STEADY=60 (seconds of sampling), TRACE=1 (per sample),
#                                             SCHEDULE=seed (sleep 10 s after each heartbeat, seed 001's agent) or
#                                             fixed (one every 10 s on the clock, agent/'s PeriodicTimer),
#                                             FOLLOW=1 (nodes keep a longer told heartbeat_interval_s, as agent/),
#                                             OFFLINE=0 (skip the offline probe); DGON_STATUS_WRITES_PER_SECOND,
#                                             DGON_HEARTBEAT_GRACE_SECONDS, DGON_STATUS_REFRESH_SECONDS reach the API
#                                             and the operator from the environment (export them or set them inline)
set -euo pipefail

NODES="${NODES:-20}"
STEADY="${STEADY:-60}"
SCHEDULE="${SCHEDULE:-seed}"
case "$SCHEDULE" in seed | fixed) ;; *) echo "SCHEDULE must be seed or fixed" >&2; exit 2 ;; esac
BUILD=1
case "${1:-}" in
  "") ;;
  --no-build) BUILD=0 ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
case "$NODES$STEADY" in '' | *[!0-9]*) echo "NODES and STEADY must be whole numbers" >&2; exit 2 ;; esac
[ "$NODES" -ge 1 ] || { echo "NODES must be at least 1" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API_DLL="$ROOT/api/bin/Release/net10.0/Dgon.Api.dll"
OP_DLL="$ROOT/operator/bin/Release/net10.0/Dgon.Operator.dll"
KS_DLL="$ROOT/tests/Dgon.KubeTestServer/bin/Release/net10.0/Dgon.KubeTestServer.dll"
NS=dgon
WORK="$(mktemp -d /tmp/dgon-bench-k8s.XXXXXX)"
PG_PID="" KS_PID="" API_PID="" OP_PID=""

say() { printf '[bench] %s\n' "$*"; }

source "$ROOT/bench/lib/process.sh" # stop_pid

cleanup() {
  set +e
  stop_pid "$OP_PID"
  stop_pid "$API_PID"
  stop_pid "$KS_PID"
  pg_stop "$WORK"
  if [ -n "${KEEP_LOGS:-}" ]; then say "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# as_pg, free_port, pg_find_bin, pg_start, pg_stop
source "$ROOT/bench/lib/postgres.sh"

# run_in_bin DLL: dotnet DLL with its build directory as the working directory, so that the content root holds the
# appsettings.json it ships with (its log levels); started from the repository root it would find none.
run_in_bin() { cd "$(dirname "$1")" && exec dotnet "$(basename "$1")"; }

# wait_ready NAME PID URL LOG: until URL answers 2xx (<= 90 s) or the process exits.
wait_ready() {
  local name=$1 pid=$2 url=$3 logf=$4
  for _ in $(seq 1 180); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { tail -50 "$logf"; echo "$name exited" >&2; exit 1; }
    sleep 0.5
  done
  tail -50 "$logf"; echo "$name not ready at $url after 90 s" >&2; exit 1
}

command -v python3 >/dev/null || { echo "python3 is needed (the fleet driver)" >&2; exit 1; }
python3 -c 'import requests' 2>/dev/null || { echo "python3 needs requests (Debian: apt-get install python3-requests)" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl is needed (the staleness and offline probes use it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
pg_find_bin

if [ "$BUILD" = 1 ]; then
  for p in api/Dgon.Api.csproj operator/Dgon.Operator.csproj tests/Dgon.KubeTestServer/Dgon.KubeTestServer.csproj; do
    say "dotnet build $p -c Release"
    dotnet build "$ROOT/$p" -c Release -v quiet -nologo >"$WORK/build.log" 2>&1 \
      || { cat "$WORK/build.log"; echo "build of $p failed" >&2; exit 1; }
  done
fi
for f in "$API_DLL" "$OP_DLL" "$KS_DLL"; do
  [ -f "$f" ] || { echo "$f is missing: run without --no-build" >&2; exit 1; }
done

# ---- PostgreSQL ----
pg_start "$WORK" fast
say "postgres 127.0.0.1:$PG_PORT"

# ---- Kubernetes API test server ----
KS_PORT="$(free_port)"
KUBECONFIG_FILE="$WORK/kubeconfig"
dotnet "$KS_DLL" --port "$KS_PORT" --kubeconfig "$KUBECONFIG_FILE" --namespace "$NS" \
  --crds "$ROOT/crds/dgonnodes.dgon.io.yaml" >"$WORK/kube.log" 2>&1 </dev/null &
KS_PID=$!
wait_ready "Kubernetes API test server" "$KS_PID" "http://127.0.0.1:$KS_PORT/version" "$WORK/kube.log"
for _ in $(seq 1 20); do [ -f "$KUBECONFIG_FILE" ] && break; sleep 0.25; done
kubectl --kubeconfig "$KUBECONFIG_FILE" create namespace "$NS" >/dev/null
say "Kubernetes API test server http://127.0.0.1:$KS_PORT (namespace $NS)"

# ---- API and operator: product default timings (nothing set but what Kubernetes mode needs) ----
ADMIN_TOKEN="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
API_PORT="$(free_port)"
API="http://127.0.0.1:$API_PORT"
# DGON_RATE_LIMITS=off: every node registers from 127.0.0.1 (20 registrations per address per minute).
DGON_REGISTRY=kubernetes KUBECONFIG="$KUBECONFIG_FILE" DGON_NAMESPACE="$NS" DATABASE_URL="$DATABASE_URL" \
  DGON_ADMIN_TOKEN="$ADMIN_TOKEN" DGON_RATE_LIMITS=off ASPNETCORE_URLS="$API" ASPNETCORE_ENVIRONMENT=Production \
  run_in_bin "$API_DLL" >"$WORK/api.log" 2>&1 </dev/null &
API_PID=$!
wait_ready "API" "$API_PID" "$API/readyz" "$WORK/api.log"
say "API $API (pid $API_PID)"

OP_PORT="$(free_port)"
OPERATOR="http://127.0.0.1:$OP_PORT"
KUBECONFIG="$KUBECONFIG_FILE" DGON_NAMESPACE="$NS" DATABASE_URL="$DATABASE_URL" POD_NAME=bench-operator \
  ASPNETCORE_URLS="$OPERATOR" ASPNETCORE_ENVIRONMENT=Production \
  run_in_bin "$OP_DLL" >"$WORK/operator.log" 2>&1 </dev/null &
OP_PID=$!
wait_ready "operator" "$OP_PID" "$OPERATOR/readyz" "$WORK/operator.log"
for _ in $(seq 1 60); do
  curl -fsS "$OPERATOR/metrics" 2>/dev/null | grep -q '^dgon_operator_leader 1' && break
  sleep 0.5
done
say "operator $OPERATOR (pid $OP_PID, $(curl -fsS "$OPERATOR/readyz" 2>/dev/null | head -c 200))"

python3 "$ROOT/bench/kubernetes_fleet.py" --api "$API" --operator "$OPERATOR" --admin-token "$ADMIN_TOKEN" \
  --kubeconfig "$KUBECONFIG_FILE" --namespace "$NS" --nodes "$NODES" --steady "$STEADY" --schedule "$SCHEDULE" \
  --grace "${DGON_HEARTBEAT_GRACE_SECONDS:-30}" --refresh "${DGON_STATUS_REFRESH_SECONDS:-10}" ${TRACE:+--trace} \
  --budget "${DGON_STATUS_WRITES_PER_SECOND:-500}" ${FOLLOW:+--follow-interval} \
  $([ "${OFFLINE:-1}" = 0 ] && echo --offline-timeout 0)
