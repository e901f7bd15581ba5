#!/usr/bin/env bash
# The inference gateway's added latency (issue 13): the runtime stub called directly vs the same request through the
# API (an API key with scope inference) -> the real agent's link -> the same stub, side by side in one run: plain
# p50/p99 and streamed time to first token on one connection, and plain requests/s at CONCURRENCY connections.
# Starts a throwaway PostgreSQL, the stub (bench/Dgon.GatewayBench `stub`), the API (Release, DGON_RATE_LIMITS=off)
# and the agent (Release) on free loopback ports, creates an API key and a join token with the admin token, prints
# the table and the goal (added p50 <= 2 ms, p99 <= 10 ms; >= 3,000 plain req/s), and stops everything it started.
# Prints, never asserts; exit 3 when only the direct half could be measured (e.g. no gateway in this build).
#
#   bench/gateway.sh [--no-build] [--direct-only]
#     env: CONCURRENCY=32 DURATION=10 (s, the requests/s phase) LATENCY_DURATION=10 (s, each 1-connection phase)
#          WARMUP=2 (s) CHUNKS=16 (chunks per reply) WAIT_LINK=90 (s for the agent to link) MAX_PARALLEL=64
#          KEEP_LOGS=1 keeps the processes' logs in /tmp/dgon-bench-gateway.*
set -euo pipefail

CONCURRENCY="${CONCURRENCY:-32}" DURATION="${DURATION:-10}" LATENCY_DURATION="${LATENCY_DURATION:-10}" WARMUP="${WARMUP:-2}"
CHUNKS="${CHUNKS:-16}" WAIT_LINK="${WAIT_LINK:-90}" MAX_PARALLEL="${MAX_PARALLEL:-64}"
BUILD=1 DIRECT_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --direct-only) DIRECT_ONLY=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
for v in CONCURRENCY DURATION LATENCY_DURATION WARMUP CHUNKS WAIT_LINK MAX_PARALLEL; do
  case "${!v}" in '' | *[!0-9]* | 0) echo "$v must be a positive whole number" >&2; exit 2 ;; esac
done
[ "$DURATION" -le 60 ] && [ "$LATENCY_DURATION" -le 60 ] || { echo "DURATION and LATENCY_DURATION are capped at 60 s (shared machine)" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API_DLL="$ROOT/api/bin/Release/net10.0/Dgon.Api.dll"
AGENT_DLL="$ROOT/agent/bin/Release/net10.0/Dgon.Agent.dll"
BENCH_DLL="$ROOT/bench/Dgon.GatewayBench/bin/Release/net10.0/Dgon.GatewayBench.dll"
WORK="$(mktemp -d /tmp/dgon-bench-gateway.XXXXXX)"
API_PID="" AGENT_PID="" STUB_PID="" PG_PID=""
ADMIN_TOKEN="gateway-bench-admin-token-0123456789abcdefghijklmnop"
MODEL="bench-echo"

say() { printf '[gateway] %s\n' "$*"; }
source "$ROOT/bench/lib/process.sh" # stop_pid
# as_pg, free_port, pg_find_bin, pg_start, pg_stop
source "$ROOT/bench/lib/postgres.sh"
cleanup() {
  set +e
  stop_pid "$AGENT_PID"
  stop_pid "$API_PID"
  stop_pid "$STUB_PID"
  pg_stop "$WORK"
  if [ -n "${KEEP_LOGS:-}" ]; then say "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v python3 >/dev/null || { echo "python3 is needed (free ports, JSON)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
[ "$DIRECT_ONLY" = 1 ] || pg_find_bin

if [ "$BUILD" = 1 ]; then
  projects=(bench/Dgon.GatewayBench/Dgon.GatewayBench.csproj)
  [ "$DIRECT_ONLY" = 1 ] || projects+=(api/Dgon.Api.csproj agent/Dgon.Agent.csproj)
  for p in "${projects[@]}"; do
    say "dotnet build $p -c Release"
    dotnet build "$ROOT/$p" -c Release -v quiet -nologo >"$WORK/build.log" 2>&1 \
      || { cat "$WORK/build.log"; echo "build of $p failed" >&2; exit 1; }
  done
fi
needed=("$BENCH_DLL")
[ "$DIRECT_ONLY" = 1 ] || needed+=("$API_DLL" "$AGENT_DLL")
for f in "${needed[@]}"; do [ -f "$f" ] || { echo "$f is missing: run without --no-build" >&2; exit 1; }; done

wait_ready() { # wait_ready URL PID LOG
  for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; echo "$1: process exited" >&2; exit 1; }
    sleep 0.5
  done
  cat "$3"; echo "$1 not ready" >&2; exit 1
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

STUB_PORT="$(free_port)"
STUB="http://127.0.0.1:$STUB_PORT"
dotnet "$BENCH_DLL" stub --port "$STUB_PORT" --model "$MODEL" --chunks "$CHUNKS" >"$WORK/stub.log" 2>&1 </dev/null &
STUB_PID=$!
wait_ready "$STUB/api/tags" "$STUB_PID" "$WORK/stub.log"
say "stub runtime $STUB (model $MODEL, $CHUNKS chunks, no delay, pid $STUB_PID)"

RUN_ARGS=(--direct "$STUB/" --model "$MODEL" --chunks "$CHUNKS" --concurrency "$CONCURRENCY" --duration "$DURATION"
  --latency-duration "$LATENCY_DURATION" --warmup "$WARMUP" --wait-link "$WAIT_LINK" --pid "stub=$STUB_PID")
if [ "$DIRECT_ONLY" = 1 ]; then
  RUN_ARGS+=(--direct-only)
else
  pg_start "$WORK" fast
  say "postgres 127.0.0.1:$PG_PORT ($PG_DURABILITY)"
  API_PORT="$(free_port)"
  API="http://127.0.0.1:$API_PORT"
  mkdir -p "$WORK/data"
  # Per-key concurrency above the bench's connections: one key drives all of them (the gateway's default is 16).
  env DATABASE_URL="$DATABASE_URL" DGON_SECRET_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '\n')" \
    DGON_ADMIN_TOKEN="$ADMIN_TOKEN" DGON_RATE_LIMITS=off DGON_DATA_DIR="$WORK/data" \
    DGON_GATEWAY_KEY_CONCURRENCY="$((CONCURRENCY * 2))" \
    ASPNETCORE_URLS="$API" Logging__LogLevel__Default=Warning \
    dotnet "$API_DLL" >"$WORK/api.log" 2>&1 </dev/null &
  API_PID=$!
  wait_ready "$API/readyz" "$API_PID" "$WORK/api.log"
  say "API $API (Release, standalone, DGON_RATE_LIMITS=off, DGON_GATEWAY_KEY_CONCURRENCY=$((CONCURRENCY * 2)), pid $API_PID)"

  admin() { curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d "$2" "$API$1"; }
  API_KEY="$(admin /v1/admin/api-keys '{"name":"bench","scopes":["inference"]}' | json_field key)" \
    || { echo "could not create an API key (POST /v1/admin/api-keys)" >&2; exit 1; }
  JOIN_TOKEN="$(admin /v1/admin/join-tokens '{"max_uses":1,"description":"gateway bench"}' | json_field token)" \
    || { echo "could not create a join token (POST /v1/admin/join-tokens)" >&2; exit 1; }
  say "API key ${API_KEY:0:16}… (scope inference), join token for one node"

  AGENT_ARGS=(--api "$API" --node-id bench-node --region bench --runtime ollama --ollama-url "$STUB" --interval 5
    --config-dir "$WORK/agent" --log-level Warning)
  if dotnet "$AGENT_DLL" --help 2>/dev/null | grep -q -- '--max-parallel'; then
    AGENT_ARGS+=(--max-parallel "$MAX_PARALLEL")
  else
    say "this agent has no --max-parallel yet: started without it"
  fi
  mkdir -m 700 "$WORK/agent"
  DGON_JOIN_TOKEN="$JOIN_TOKEN" dotnet "$AGENT_DLL" "${AGENT_ARGS[@]}" >"$WORK/agent.log" 2>&1 </dev/null &
  AGENT_PID=$!
  say "agent bench-node -> $API, runtime $STUB (pid $AGENT_PID): ${AGENT_ARGS[*]}"
  RUN_ARGS+=(--api "$API/" --key "$API_KEY" --pid "api=$API_PID" --pid "agent=$AGENT_PID")
fi
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

set +e
dotnet "$BENCH_DLL" run "${RUN_ARGS[@]}"
rc=$?
set -e
if [ -n "$AGENT_PID" ] && ! kill -0 "$AGENT_PID" 2>/dev/null; then
  say "the agent exited during the run; its log:"; tail -n 30 "$WORK/agent.log"
fi
exit "$rc"
