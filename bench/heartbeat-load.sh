#!/usr/bin/env bash
# Load test of the API's hot paths on loopback: signed POST /v1/nodes/heartbeat and GET /v1/nodes.
# Starts a throwaway PostgreSQL and the API (Release build) on free ports, registers one node, pre-signs one
# heartbeat (a signature stays valid for +-120 s), drives it with `hey` for a bounded time, then GET /v1/nodes,
# prints requests/s and latency percentiles, and removes everything it started.
#
#   bench/heartbeat-load.sh [--no-build]     env: DURATION=20 (seconds, <= 100), CONCURRENCY=16
set -euo pipefail

DURATION="${DURATION:-20}"
CONCURRENCY="${CONCURRENCY:-16}"
BUILD=1
case "${1:-}" in
  "") ;;
  --no-build) BUILD=0 ;;
  -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
case "$DURATION" in '' | *[!0-9]*) echo "DURATION must be whole seconds" >&2; exit 2 ;; esac
# The heartbeat is signed once, before the run: keep the run well inside the 120 s clock-skew window.
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 100 ]; then
  echo "DURATION must be 1-100 s (one signature is valid for 120 s)" >&2; exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API_DLL="$ROOT/api/bin/Release/net10.0/Dgon.Api.dll"
WORK="$(mktemp -d /tmp/dgon-bench.XXXXXX)"
API_PID="" PG_PID=""

say() { printf '[bench] %s\n' "$*"; }

cleanup() {
  set +e
  [ -n "$API_PID" ] && kill -TERM "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
  pg_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# as_pg, free_port, pg_find_bin, pg_start, pg_stop
source "$ROOT/bench/lib/postgres.sh"

command -v python3 >/dev/null || { echo "python3 is needed (free ports, JSON, HMAC)" >&2; exit 1; }
if ! command -v hey >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing hey"; apt-get install -y -qq hey >/dev/null || { apt-get update -qq && apt-get install -y -qq hey >/dev/null; }
  else
    echo "hey is not installed (Debian: apt-get install hey; macOS: brew install hey)" >&2; exit 1
  fi
fi
pg_find_bin

if [ "$BUILD" = 1 ]; then
  say "dotnet build api/Dgon.Api.csproj -c Release"
  dotnet build "$ROOT/api/Dgon.Api.csproj" -c Release -v quiet -nologo >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; echo "API build failed" >&2; exit 1; }
fi
[ -f "$API_DLL" ] || { echo "$API_DLL is missing: build api/Dgon.Api.csproj -c Release" >&2; exit 1; }

# ---- PostgreSQL ----
pg_start "$WORK" fast
say "postgres 127.0.0.1:$PG_PORT (fsync=off, synchronous_commit=off: measures the API, not the disk)"

# ---- API ----
API_PORT="$(free_port)"
API="http://127.0.0.1:$API_PORT"
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/dgon" \
  DGON_SECRET_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '\n')" \
  ASPNETCORE_URLS="$API" Logging__LogLevel__Default=Warning \
  dotnet "$API_DLL" >"$WORK/api.log" 2>&1 </dev/null &
API_PID=$!
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "$API/readyz" 2>/dev/null && break
  kill -0 "$API_PID" 2>/dev/null || { cat "$WORK/api.log"; echo "API exited" >&2; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null "$API/readyz" || { cat "$WORK/api.log"; echo "API not ready" >&2; exit 1; }
say "API $API (Release, pid $API_PID)"

# ---- one node, one pre-signed heartbeat ----
TOKEN="$(curl -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"node_id":"bench-node-1","region":"local","runtime":"ollama"}' "$API/v1/nodes/register" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["node_token"])')"
BODY='{"gpu_util":0.5,"mem_used_gb":11.25,"p95_ms":120.5,"ready":true}'
TS="$(date +%s)"
SIG="$(python3 -c 'import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), (sys.argv[2] + sys.argv[3]).encode(), hashlib.sha256).hexdigest())' "$TOKEN" "$BODY" "$TS")"
HDR=(-H "X-Node-Id: bench-node-1" -H "X-Node-Ts: $TS" -H "X-Node-Auth: $SIG")
check="$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "${HDR[@]}" -d "$BODY" "$API/v1/nodes/heartbeat")"
[ "$check" = 200 ] || { echo "signed heartbeat answered $check, not 200" >&2; cat "$WORK/api.log"; exit 1; }

# run_hey TITLE hey-args... : prints requests/s, latency percentiles and status codes.
run_hey() {
  local title=$1
  shift
  echo
  say "$title: ${DURATION}s, concurrency $CONCURRENCY"
  hey -z "${DURATION}s" -c "$CONCURRENCY" "$@" >"$WORK/hey.out"
  sed -n -e '/Summary:/,/Requests\/sec/p' -e '/Latency distribution:/,/^$/p' -e '/Status code distribution:/,/^$/p' \
    "$WORK/hey.out" | sed '/^$/d'
  if grep -q '^Error distribution' "$WORK/hey.out"; then sed -n '/^Error distribution/,$p' "$WORK/hey.out"; fi
}

say "machine: $(nproc) cores; hey and the API share them"
run_hey "POST /v1/nodes/heartbeat (HMAC-signed, one node)" -m POST -T application/json "${HDR[@]}" -d "$BODY" \
  "$API/v1/nodes/heartbeat"
run_hey "GET /v1/nodes (1 node)" "$API/v1/nodes"
echo
