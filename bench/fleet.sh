#!/usr/bin/env bash
# Fleet-scale figures of issue 11: N registered nodes, real HMAC signing per request, the API against a bare Kestrel
# ceiling in the same run. Starts a throwaway PostgreSQL, the API (Release, standalone mode, DGON_RATE_LIMITS=off)
# and the ceiling (bench/Dgon.Fleet), all on free 127.0.0.1 ports in a mktemp -d directory; then prints
#   1. API memory before registering, 2. register NODES nodes (registrations/s, p50/p99), 3. API memory after and
#   per node, 4. reads (/v1/summary, /v1/nodes?limit=1000 first and middle page, /metrics time and bytes),
#   5. heartbeat load, API then ceiling, same generator and connections, and the ratio, 6. optionally simulate.
# Prints everything, asserts nothing; stops and deletes only what it started.
#
#   bench/fleet.sh [--no-build] [--fast-pg]
#   env: NODES=100000 DURATION=20 CONNECTIONS=64 REG_CONCURRENCY=32 SIGN=v2 RATE= (empty: max rate)
#        SIMULATE=0 (1: also simulate) INTERVAL=10 SIM_DURATION=30
#        SEED=sql|api (default sql when NODES > 20000): sql = `Dgon.Fleet seed` (binary COPY into nodes and node_secrets,
#          then the API is restarted and loads them), api = register them all through POST /v1/nodes/register
#        REG_SAMPLE=5000 (0 with SEED=api): more nodes registered through the API after the set-up, for registrations/s
#        HOT=0 (e.g. 3000): also load the first HOT nodes after a first pass of HOT_CLAIM=20 s (their first,
#          written-through heartbeats), i.e. the in-memory steady state, API then ceiling, then at a constant 25 % of that ceiling rate
#        IDLE=20: seconds idle before each memory reading; REGISTER_CONCURRENCY_API: the API's DGON_REGISTER_CONCURRENCY
#   --fast-pg: PostgreSQL with fsync=off, synchronous_commit=off (default: the server's durable defaults)
set -euo pipefail

NODES="${NODES:-100000}" DURATION="${DURATION:-20}" CONNECTIONS="${CONNECTIONS:-64}" REG_CONCURRENCY="${REG_CONCURRENCY:-32}"
SEED="${SEED:-$([ "$NODES" -gt 20000 ] 2>/dev/null && echo sql || echo api)}" REG_SAMPLE="${REG_SAMPLE:-$([ "${SEED:-}" = api ] && echo 0 || echo 5000)}" IDLE="${IDLE:-20}" HOT="${HOT:-0}" HOT_CLAIM="${HOT_CLAIM:-20}"
SIGN="${SIGN:-v2}" RATE="${RATE:-}" SIMULATE="${SIMULATE:-0}" INTERVAL="${INTERVAL:-10}" SIM_DURATION="${SIM_DURATION:-30}"
BUILD=1 PG_MODE=durable
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --fast-pg) PG_MODE=fast ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
case "$SEED" in sql | api) ;; *) echo "SEED must be sql or api" >&2; exit 2 ;; esac
for v in HOT HOT_CLAIM REG_SAMPLE IDLE NODES DURATION CONNECTIONS REG_CONCURRENCY SIM_DURATION; do
  case "${!v}" in '' | *[!0-9]*) echo "$v must be a whole number" >&2; exit 2 ;; esac
done
[ "$DURATION" -le 60 ] && [ "$SIM_DURATION" -le 60 ] || { echo "DURATION and SIM_DURATION are capped at 60 s (shared machine)" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API_DLL="$ROOT/api/bin/Release/net10.0/Dgon.Api.dll"
FLEET_DLL="$ROOT/bench/Dgon.Fleet/bin/Release/net10.0/Dgon.Fleet.dll"
WORK="$(mktemp -d /tmp/dgon-bench-fleet.XXXXXX)"
API_PID="" CEIL_PID="" PG_PID=""
ADMIN_TOKEN="fleet-bench-admin-token-0123456789abcdefghijklmnop"

say() { printf '[fleet] %s\n' "$*"; }
source "$ROOT/bench/lib/process.sh" # stop_pid
cleanup() {
  set +e
  stop_pid "$CEIL_PID"
  stop_pid "$API_PID"
  pg_stop "$WORK"
  if [ -n "${KEEP_LOGS:-}" ]; then say "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# as_pg, free_port, pg_find_bin, pg_start, pg_stop
source "$ROOT/bench/lib/postgres.sh"
command -v python3 >/dev/null || { echo "python3 is needed (free ports)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
pg_find_bin

if [ "$BUILD" = 1 ]; then
  for p in api/Dgon.Api.csproj bench/Dgon.Fleet/Dgon.Fleet.csproj; do
    say "dotnet build $p -c Release"
    dotnet build "$ROOT/$p" -c Release -v quiet -nologo >"$WORK/build.log" 2>&1 \
      || { cat "$WORK/build.log"; echo "build of $p failed" >&2; exit 1; }
  done
fi
for f in "$API_DLL" "$FLEET_DLL"; do [ -f "$f" ] || { echo "$f is missing: run without --no-build" >&2; exit 1; }; done
fleet() { dotnet "$FLEET_DLL" "$@"; }

wait_ready() { # wait_ready URL PID LOG
  for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; echo "$1: process exited" >&2; exit 1; }
    sleep 0.5
  done
  cat "$3"; echo "$1 not ready" >&2; exit 1
}

pg_start "$WORK" "$PG_MODE"
say "postgres 127.0.0.1:$PG_PORT ($PG_DURABILITY)"

API_PORT="$(free_port)"
API="http://127.0.0.1:$API_PORT"
SECRET_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
mkdir -p "$WORK/data"
start_api() { # start_api LOG: the API (same settings every time; NodeTableSync logs at Information for its load line)
  env DATABASE_URL="$DATABASE_URL" DGON_SECRET_KEY="$SECRET_KEY" \
    DGON_ADMIN_TOKEN="$ADMIN_TOKEN" DGON_RATE_LIMITS=off DGON_DATA_DIR="$WORK/data" \
    ${REGISTER_CONCURRENCY_API:+DGON_REGISTER_CONCURRENCY="$REGISTER_CONCURRENCY_API"} \
    ASPNETCORE_URLS="$API" Logging__LogLevel__Default=Warning Logging__LogLevel__Dgon.Api.Fleet.NodeTableSync=Information \
    dotnet "$API_DLL" >"$1" 2>&1 </dev/null &
  API_PID=$!
  wait_ready "$API/readyz" "$API_PID" "$1"
  say "API $API (Release, standalone, DGON_RATE_LIMITS=off${REGISTER_CONCURRENCY_API:+, DGON_REGISTER_CONCURRENCY=$REGISTER_CONCURRENCY_API}, pid $API_PID)"
}
start_api "$WORK/api-empty.log"

CEIL_PORT="$(free_port)"
CEILING="http://127.0.0.1:$CEIL_PORT"
dotnet "$FLEET_DLL" ceiling --port "$CEIL_PORT" >"$WORK/ceiling.log" 2>&1 </dev/null &
CEIL_PID=$!
wait_ready "$CEILING/readyz" "$CEIL_PID" "$WORK/ceiling.log"
say "ceiling $CEILING (bare Kestrel, pid $CEIL_PID)"
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
say "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); generator, API, PostgreSQL and ceiling share them"

# memory LABEL: the API's RSS (/proc) and its GC heap from /metrics; sets RSS_<LABEL> and HEAP_<LABEL> (bytes).
memory() {
  local rss heap
  rss=$(( $(awk '/^VmRSS:/ {print $2}' "/proc/$API_PID/status") * 1024 ))
  curl -fsS "$API/metrics" >"$WORK/metrics.txt"
  # GC heap: dotnet_gc_last_collection_heap_size_bytes (System.Runtime meter: the heap after the last GC, summed over
  # gen0-2, LOH, POH), else dotnet_total_memory_bytes (prometheus-net's default collector) where that is exported.
  heap=$(awk '/^dotnet_gc_last_collection_heap_size_bytes[{ ]/ {s += $NF; n++} END {if (n) printf "%.0f", s}' "$WORK/metrics.txt")
  [ -n "$heap" ] || heap=$(awk '/^dotnet_total_memory_bytes[{ ]/ {printf "%.0f", $NF}' "$WORK/metrics.txt")
  printf -v "RSS_$1" '%s' "$rss"
  printf -v "HEAP_$1" '%s' "${heap:-0}"
  say "memory $1: RSS $(awk -v b="$rss" 'BEGIN {printf "%.1f MiB", b/1048576}'), GC heap after the last GC $(awk -v b="${heap:-0}" 'BEGIN {printf "%.1f MiB", b/1048576}'), GC count $(awk '/^dotnet_gc_collections_total/ {s += $NF} END {print s + 0}' "$WORK/metrics.txt")"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of one process, clock ticks
pg_ticks() { # utime + stime of the postmaster and its children (backends, walwriter, checkpointer …)
  local t=0 pid todo="$PG_PID"
  while [ -n "$todo" ]; do # the postmaster may be a child of runuser: walk all descendants
    set -- $todo; pid=$1; shift; todo="$* $(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ')"; todo="${todo# }"; todo="${todo%% }"
    t=$((t + $(cpu_ticks "$pid" 2>/dev/null || echo 0)))
    [ -n "${todo// /}" ] || todo=""
  done
  echo "$t"
}
echo; say "== 1. memory with an empty fleet (after ${IDLE}s idle)"
sleep "$IDLE"
memory before
if [ "$SEED" = sql ]; then
  echo; say "== 2a. seed $NODES nodes by binary COPY (bench set-up, not the API), then restart the API"
  stop_pid "$API_PID"; API_PID=""
  fleet seed --database-url "$DATABASE_URL" --secret-key "$SECRET_KEY" --nodes "$NODES" --out "$WORK/tokens.tsv"
  start_api "$WORK/api.log"
  for _ in $(seq 1 60); do grep -q "Node table loaded" "$WORK/api.log" && break; sleep 0.5; done
  grep -h -A1 "Node table loaded" "$WORK/api.log" | sed 's/^ */[fleet] api: /' || say "api: no 'Node table loaded' line in its log"
  echo; say "== 3. memory after seeding (${IDLE}s idle after start)"
  sleep "$IDLE"
  memory after
  MEM_N=$NODES
else
  echo; say "== 2a. register $NODES nodes through the API, concurrency $REG_CONCURRENCY"
  fleet register --api "$API" --admin-token "$ADMIN_TOKEN" --nodes "$NODES" --concurrency "$REG_CONCURRENCY" --out "$WORK/tokens.tsv" || true
  echo; say "== 3. memory after registering (${IDLE}s idle)"
  sleep "$IDLE"
  memory after
  MEM_N=$(wc -l <"$WORK/tokens.tsv")
fi
awk -v r0="$RSS_before" -v r1="$RSS_after" -v h0="$HEAP_before" -v h1="$HEAP_after" -v n="$MEM_N" 'BEGIN {
  printf "[fleet] per node (%d): RSS %+.2f KiB, GC heap %+.2f KiB (delta / N; heap as of the API last GC, not forced)\n", n, (r1-r0)/n/1024, (h1-h0)/n/1024 }'
if [ "$REG_SAMPLE" -gt 0 ]; then
  echo; say "== 2b. registration rate through the API: $REG_SAMPLE more nodes (ids regs-…), concurrency $REG_CONCURRENCY, $(uptime | sed 's/.*load/load/')"
  c0=$(cpu_ticks "$API_PID"); p0=$(pg_ticks); t0=$(date +%s.%N)
  fleet register --api "$API" --admin-token "$ADMIN_TOKEN" --nodes "$REG_SAMPLE" --concurrency "$REG_CONCURRENCY" --prefix regs --out "$WORK/reg-sample.tsv" || true
  c1=$(cpu_ticks "$API_PID"); p1=$(pg_ticks); t1=$(date +%s.%N)
  awk -v a="$((c1 - c0))" -v p="$((p1 - p0))" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "[fleet] during registration: API CPU %.0f %% of one core, PostgreSQL (all its processes) %.0f %%\n", 100*a/hz/(t1-t0), 100*p/hz/(t1-t0) }'
  cat "$WORK/reg-sample.tsv" >>"$WORK/tokens.tsv"
fi
REGISTERED=$(wc -l <"$WORK/tokens.tsv")
echo; say "== 4. reads with $REGISTERED nodes"
fleet reads --api "$API" --admin-token "$ADMIN_TOKEN"
echo; say "== 5. heartbeat load: API, then ceiling"
fleet load --api "$API" --tokens "$WORK/tokens.tsv" --connections "$CONNECTIONS" --duration "$DURATION" --sign "$SIGN" \
  ${RATE:+--rate "$RATE"} --ceiling-url "$CEILING" --api-pid "$API_PID"
if [ "$HOT" -gt 0 ]; then
  # A node's first heartbeat (pending -> active) and one after a long silence are written through to PostgreSQL
  # (and its first request at a replica claims its request clock); at N = 100k and ~300/s no node comes round twice,
  # so the run above measured that path. Here: the first HOT nodes after a first pass, then the in-memory path.
  head -n "$HOT" "$WORK/tokens.tsv" >"$WORK/hot.tsv"
  echo; say "== 5b. first pass over $HOT nodes (first heartbeats: the write-through path), $(cut -d' ' -f1-3 /proc/loadavg)"
  fleet load --api "$API" --tokens "$WORK/hot.tsv" --connections "$CONNECTIONS" --duration "$HOT_CLAIM" --warmup 0 --sign "$SIGN" --api-pid "$API_PID" | grep -E 'accepted|latency|api CPU'
  echo; say "== 5c. heartbeat load over the $HOT claimed nodes: API, then ceiling, $(cut -d' ' -f1-3 /proc/loadavg)"
  fleet load --api "$API" --tokens "$WORK/hot.tsv" --connections "$CONNECTIONS" --duration "$DURATION" --sign "$SIGN" \
    --ceiling-url "$CEILING" --api-pid "$API_PID" | tee "$WORK/hot-load.txt"
  CEIL_RATE=$(awk '/^\| ceiling/ {print $4}' "$WORK/hot-load.txt")
  if [ -n "$CEIL_RATE" ]; then
    R=$(awk -v c="$CEIL_RATE" 'BEGIN {printf "%.0f", c / 4}')
    echo; say "== 5d. constant rate $R/s (25 % of the ceiling) over the $HOT claimed nodes, $(cut -d' ' -f1-3 /proc/loadavg)"
    fleet load --api "$API" --tokens "$WORK/hot.tsv" --connections "$CONNECTIONS" --duration "$DURATION" --sign "$SIGN" --rate "$R" --api-pid "$API_PID"
  fi
fi
if [ "$SIMULATE" = 1 ]; then
  echo; say "== 6. simulate: every node each ${INTERVAL} s"
  fleet simulate --api "$API" --tokens "$WORK/tokens.tsv" --interval "$INTERVAL" --duration "$SIM_DURATION" --sign "$SIGN" --api-pid "$API_PID"
fi
echo; memory end
