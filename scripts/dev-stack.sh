#!/usr/bin/env bash
# Runs the whole DGON Console stack locally, in the foreground:
#   PostgreSQL (throwaway, data in .dgon/pg) -> API :8001 -> dashboard :3000 -> one local agent.
# Every component's output is prefixed with its name and also written to .dgon/logs/<name>.log.
# Ctrl-C (or SIGTERM) stops all of it; if one component dies on its own, the rest are stopped too.
set -euo pipefail

# A non-interactive shell starts `cmd &` with SIGINT ignored, and bash cannot trap a signal ignored at entry:
# restart with SIGINT at its default so that `kill -INT` stops the stack there too (as Ctrl-C does in a terminal).
if [ "$(trap -p INT)" = "trap -- '' SIGINT" ] && [ -z "${DGON_DEV_STACK_REEXEC:-}" ] \
  && env --default-signal=INT true 2>/dev/null; then
  DGON_DEV_STACK_REEXEC=1 exec env --default-signal=INT bash "${BASH_SOURCE[0]}" "$@"
fi

# `dev-stack.sh | tee log` and Ctrl-C: tee dies first; a write to its closed pipe must not kill this script
# before it has stopped everything it started (writes then fail quietly instead).
trap '' PIPE

usage() {
  cat <<'EOF'
Usage: scripts/dev-stack.sh [--no-agent] [--no-build] [--help]

Starts the local DGON stack in the foreground and stops all of it on Ctrl-C:
  postgres   throwaway PostgreSQL, data in .dgon/pg (kept between runs), on a free port
  api        http://127.0.0.1:8001   (waits for /readyz)
  dashboard  http://127.0.0.1:3000   (waits for /healthz)
  agent      one local node ($NODE_ID, default local-node-1; pending without Ollama on :11434)

Options:
  --no-agent   do not start the local agent
  --no-build   skip `dotnet build Dgon.sln -c Debug` (use the existing Debug build)
  -h, --help   show this help

Environment:
  NODE_ID             agent node id (default local-node-1)
  HEARTBEAT_INTERVAL  agent heartbeat period in seconds (default 10)
  OLLAMA_URL          Ollama the agent probes (default http://127.0.0.1:11434)
  PG_BIN              directory holding initdb/pg_ctl/postgres (default: found automatically)

State lives in .dgon/: pg/ (database), secret.key (DGON_SECRET_KEY, 0600), admin-token (DGON_ADMIN_TOKEN, 0600),
agent/ (node token and key), logs/. Each run creates a 24 h join token and gives it to the local agent.
Delete .dgon/ to start from scratch.
EOF
}

WITH_AGENT=1
WITH_BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-agent) WITH_AGENT=0 ;;
    --no-build) WITH_BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "dev-stack: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.dgon"
LOGS="$STATE/logs"
PG_DIR="$STATE/pg"
PGDATA="$PG_DIR/data"
API_PORT=8001
DASHBOARD_PORT=3000
API_URL="http://127.0.0.1:$API_PORT"
DASHBOARD_URL="http://127.0.0.1:$DASHBOARD_PORT"
CONFIGURATION=Debug
NODE_ID="${NODE_ID:-local-node-1}"
HEARTBEAT_INTERVAL="${HEARTBEAT_INTERVAL:-10}"

COMPONENTS=""   # started components, in start order: postgres api dashboard agent
STOPPING=0

say() { printf '[dev-stack] %s\n' "$*" 2>/dev/null || true; }
die() { printf '[dev-stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Reads lines from stdin and writes them, prefixed with [name], to the terminal and to .dgon/logs/<name>.log.
# It ignores INT/TERM/HUP so it outlives its component and prints the component's last (shutdown) lines, and
# SIGPIPE so that a closed terminal or pager (`| tee`, `| less` and Ctrl-C) still leaves the log file complete.
prefix() {
  trap '' INT TERM HUP PIPE
  local name=$1 line
  exec 3>>"$LOGS/$name.log"
  while IFS= read -r line || [ -n "$line" ]; do
    printf '[%s] %s\n' "$name" "$line" >&3
    printf '[%s] %s\n' "$name" "$line" 2>/dev/null || true
  done
}

# start NAME WORKDIR COMMAND... : runs COMMAND in WORKDIR in its own process group (job control on), output
# through prefix. The command's pid (= its process group id) goes to PID_<name>, the prefixer's to OUT_<name>.
start() {
  local name=$1 dir=$2 pidfile="$STATE/run/$1.pid"
  shift 2
  rm -f "$pidfile"
  set -m
  sh -c 'cd "$1" && echo $$ >"$0" && shift && exec "$@"' "$pidfile" "$dir" "$@" </dev/null 2>&1 | prefix "$name" &
  local out=$!
  set +m
  for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
  [ -s "$pidfile" ] || die "$name did not start"
  printf -v "PID_$name" '%s' "$(cat "$pidfile")"
  printf -v "OUT_$name" '%s' "$out"
  COMPONENTS="$COMPONENTS $name"
}

pid_of() { local v="PID_$1"; printf '%s' "${!v:-}"; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# stop_group NAME SIGNAL: signals the component's process group, waits up to 15 s, then SIGKILLs it.
stop_group() {
  local name=$1 sig=$2 pid
  pid=$(pid_of "$name")
  [ -n "$pid" ] || return 0
  if alive "$name"; then
    kill "-$sig" -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do alive "$name" || break; sleep 0.1; done
  fi
  if kill -0 -- "-$pid" 2>/dev/null && alive "$name"; then
    say "$name did not stop in 15 s: killing it"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_postgres() {
  alive postgres || return 0
  # Fast shutdown: disconnect clients, checkpoint, exit (same as SIGINT to the postmaster).
  as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 30 >/dev/null 2>&1 || true
  stop_group postgres INT
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT
  trap '' INT TERM HUP PIPE
  STOPPING=1
  if [ -n "$COMPONENTS" ]; then
    # Reverse start order: agent, dashboard, api, then postgres.
    local name out pid rev=""
    for name in $COMPONENTS; do rev="$name${rev:+ $rev}"; done
    say "stopping: $rev"
    for name in $rev; do
      if [ "$name" = postgres ]; then stop_postgres; else stop_group "$name" TERM; fi
    done
    # Let each prefixer print its component's last lines, then make sure no process group is left.
    for name in $COMPONENTS; do
      out="OUT_$name"; pid=$(pid_of "$name")
      timeout_wait "${!out}"
      kill -KILL -- "-$pid" 2>/dev/null || true
    done
    say "stopped"
  fi
  exit "$rc"
}

# timeout_wait PID: waits up to 5 s for a child process to end.
timeout_wait() {
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  wait "$1" 2>/dev/null || true
}

on_signal() {
  [ "$STOPPING" = 1 ] && return 0
  say "$1 received"
  case "$1" in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}

trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# ---- checks ------------------------------------------------------------------------------------------------

command -v dotnet >/dev/null || die "dotnet (the .NET 10 SDK) is not on PATH"
command -v curl >/dev/null || die "curl is not on PATH"

port_free() {
  if command -v python3 >/dev/null; then
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
  fi
}

for port in "$API_PORT" "$DASHBOARD_PORT"; do
  port_free "$port" || die "port $port on 127.0.0.1 is already in use (another dev-stack, API or dashboard?). Stop whatever listens there (e.g. \`lsof -iTCP:$port -sTCP:LISTEN\` or \`ss -ltnp | grep :$port\`) and try again."
done

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local p
  for p in $(seq 54320 54420); do port_free "$p" && { echo "$p"; return; }; done
  die "no free port found for PostgreSQL in 54320-54420"
}

find_pg_bin() {
  local d
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  # Debian/Ubuntu, Homebrew (keg-only postgresql@NN), PGDG RPMs; newest version first; then PATH.
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin /opt/homebrew/opt/postgresql@*/bin /usr/local/opt/postgresql@*/bin \
    /usr/pgsql-*/bin | sort -r -V | while IFS= read -r d; do [ -x "$d/initdb" ] && { echo "$d"; break; }; done || true)"
  if [ -z "$d" ] && command -v initdb >/dev/null; then d="$(dirname "$(command -v initdb)")"; fi
  echo "$d"
}

PG_BIN="$(find_pg_bin)"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/postgres" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
  die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install PostgreSQL 15+ (Debian: apt-get install postgresql-15; macOS: brew install postgresql@15) or set PG_BIN to their directory"
fi
if [ "$(id -u)" = 0 ]; then
  command -v runuser >/dev/null || die "running as root needs runuser (util-linux) to run PostgreSQL as the postgres user"
  id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run PostgreSQL as (initdb refuses root)"
fi

mkdir -p "$LOGS" "$STATE/run" "$PG_DIR"
chmod 755 "$STATE" "$PG_DIR"
: >"$LOGS/build.log"
for name in postgres api dashboard agent; do : >"$LOGS/$name.log"; done

# ---- build -------------------------------------------------------------------------------------------------

API_DLL="$ROOT/api/bin/$CONFIGURATION/net10.0/Dgon.Api.dll"
DASHBOARD_DLL="$ROOT/dashboard/bin/$CONFIGURATION/net10.0/Dgon.Dashboard.dll"
AGENT_DLL="$ROOT/agent/bin/$CONFIGURATION/net10.0/Dgon.Agent.dll"

if [ "$WITH_BUILD" = 1 ]; then
  say "building: dotnet build Dgon.sln -c $CONFIGURATION (log: .dgon/logs/build.log)"
  if ! (cd "$ROOT" && dotnet build Dgon.sln -c "$CONFIGURATION" </dev/null 2>&1) | prefix build; then
    die "build failed: fix the errors above (full log in .dgon/logs/build.log), then run scripts/dev-stack.sh again"
  fi
fi
for dll in "$API_DLL" "$DASHBOARD_DLL" "$AGENT_DLL"; do
  [ "$dll" != "$AGENT_DLL" ] || [ "$WITH_AGENT" = 1 ] || continue
  [ -f "$dll" ] || die "${dll#"$ROOT"/} is missing: build with \`dotnet build Dgon.sln -c $CONFIGURATION\` (is its project in Dgon.sln?)"
done

# ---- postgres ----------------------------------------------------------------------------------------------

if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$PG_DIR"
  runuser -u postgres -- test -w "$PG_DIR" \
    || die "the postgres user cannot write $PG_DIR: every parent directory of the repository must be searchable by 'postgres' (chmod o+x)"
fi

PG_VERSION_BIN="$("$PG_BIN/postgres" --version | awk '{ print $3 }' | cut -d. -f1)"
if [ -f "$PGDATA/PG_VERSION" ]; then
  [ "$(cat "$PGDATA/PG_VERSION")" = "$PG_VERSION_BIN" ] \
    || die ".dgon/pg/data was made by PostgreSQL $(cat "$PGDATA/PG_VERSION"), but $PG_BIN is $PG_VERSION_BIN: delete .dgon/pg or set PG_BIN"
  say "reusing PostgreSQL $PG_VERSION_BIN data in .dgon/pg/data"
else
  say "initdb: PostgreSQL $PG_VERSION_BIN data in .dgon/pg/data (first run)"
  if ! as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --no-locale </dev/null 2>&1 | prefix postgres; then
    rm -rf "$PGDATA"
    die "initdb failed (see above)"
  fi
fi

PG_PORT="$(free_port)"
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/dgon"
say "postgres on 127.0.0.1:$PG_PORT (binaries: $PG_BIN)"
if [ "$(id -u)" = 0 ]; then
  start postgres "$PG_DIR" runuser -u postgres -- "$PG_BIN/postgres" -D "$PGDATA" -p "$PG_PORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=
else
  start postgres "$PG_DIR" "$PG_BIN/postgres" -D "$PGDATA" -p "$PG_PORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=
fi

psql_pg() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAX "$@"; }
for _ in $(seq 1 60); do
  alive postgres || die "postgres exited during start-up (see [postgres] lines above, .dgon/logs/postgres.log)"
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres && break
  sleep 0.5
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres || die "postgres did not become ready in 30 s"
if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = 'dgon'")" != 1 ]; then
  psql_pg -c 'CREATE DATABASE dgon' || die "could not create database dgon"
  say "created database dgon"
fi

# ---- secret key --------------------------------------------------------------------------------------------

if [ ! -s "$STATE/secret.key" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$STATE/secret.key")
  say "generated DGON_SECRET_KEY into .dgon/secret.key (0600)"
fi
chmod 600 "$STATE/secret.key"
DGON_SECRET_KEY="$(cat "$STATE/secret.key")"

# The admin credential (issue 9): kept in .dgon/admin-token (0600) between runs; it creates join tokens.
if [ ! -s "$STATE/admin-token" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_' >"$STATE/admin-token")
  say "generated the admin token into .dgon/admin-token (0600)"
fi
chmod 600 "$STATE/admin-token"
DGON_ADMIN_TOKEN="$(cat "$STATE/admin-token")"

# ---- api, dashboard, agent ---------------------------------------------------------------------------------

# wait_http NAME URL SECONDS: polls URL until it answers 2xx; fails if the component exits first.
wait_http() {
  local name=$1 url=$2 deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    alive "$name" || die "$name exited during start-up (see [$name] lines above, .dgon/logs/$name.log)"
    [ "$SECONDS" -lt "$deadline" ] || die "$name did not answer $url within $3 s"
    sleep 0.5
  done
  say "$name ready: $url"
}

start api "$(dirname "$API_DLL")" env DATABASE_URL="$DATABASE_URL" DGON_SECRET_KEY="$DGON_SECRET_KEY" \
  DGON_ADMIN_TOKEN="$DGON_ADMIN_TOKEN" DGON_DATA_DIR="$STATE" ASPNETCORE_URLS="$API_URL" dotnet "$API_DLL"
wait_http api "$API_URL/readyz" 120

# Secure by default: nodes enroll with a join token (24 h). One for the local agent and for a Mac on this network.
JOIN_TOKEN="$(curl -fsS --max-time 10 "$API_URL/v1/admin/join-tokens" -H "Authorization: Bearer $DGON_ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d '{"description":"dev-stack"}' \
  | sed -n 's/.*"token":"\([a-z0-9]\{6\}\.[a-z0-9]\{16\}\)".*/\1/p')" || true
[ -n "$JOIN_TOKEN" ] || die "could not create a join token at $API_URL/v1/admin/join-tokens (see [api] lines above)"

start dashboard "$(dirname "$DASHBOARD_DLL")" env DGON_API_BASE="$API_URL" ASPNETCORE_URLS="$DASHBOARD_URL" \
  DGON_DASHBOARD_DATA_DIR="$STATE/dashboard" dotnet "$DASHBOARD_DLL"
wait_http dashboard "$DASHBOARD_URL/healthz" 120

if [ "$WITH_AGENT" = 1 ]; then
  start agent "$ROOT" env DGON_API="$API_URL" NODE_ID="$NODE_ID" REGION=local RUNTIME=ollama \
    HEARTBEAT_INTERVAL="$HEARTBEAT_INTERVAL" DGON_CONFIG_DIR="$STATE/agent" DGON_JOIN_TOKEN="$JOIN_TOKEN" dotnet "$AGENT_DLL"
fi

# Issue 13: an API key with scope inference for the gateway (kept in .dgon/api-key, 0600; shown once by the API).
if [ ! -s "$STATE/api-key" ]; then
  API_KEY="$(curl -fsS --max-time 10 "$API_URL/v1/admin/api-keys" -H "Authorization: Bearer $DGON_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"dev-stack","scopes":["inference"]}' \
    | sed -n 's/.*"key":"\(dgk_[0-9a-f]\{12\}_[A-Za-z0-9_-]\{43\}\)".*/\1/p')" || true
  if [ -n "$API_KEY" ]; then (umask 077 && printf '%s' "$API_KEY" >"$STATE/api-key"); say "created an API key with scope inference into .dgon/api-key (0600)"; fi
fi
# The first model the local runtime lists, for the example request (none: the example says so).
MODEL="$(curl -fsS --max-time 2 "${OLLAMA_URL:-http://127.0.0.1:11434}/api/tags" 2>/dev/null | sed -n 's/^[^[]*\[{"name":"\([^"]*\)".*/\1/p')" || true
if [ -n "$MODEL" ]; then
  INFERENCE="[dev-stack]  inference  a completion from the local node through the gateway (once the agent has linked):
[dev-stack]    curl $API_URL/v1/chat/completions -H \"Authorization: Bearer \$(cat .dgon/api-key)\" -H 'Content-Type: application/json' \\
[dev-stack]      -d '{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}'
[dev-stack]    OpenAI .NET SDK: new ChatClient(\"$MODEL\", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(\"$API_URL/v1\") })
[dev-stack]                       .CompleteChat(\"Say hello\")"
else
  INFERENCE="[dev-stack]  inference  no runtime answered on ${OLLAMA_URL:-http://127.0.0.1:11434} (start Ollama and pull a model, e.g. ollama pull llama3.2:1b);
[dev-stack]             then POST $API_URL/v1/chat/completions with Authorization: Bearer \$(cat .dgon/api-key)"
fi

cat <<EOF
[dev-stack] ------------------------------------------------------------
[dev-stack]  dashboard  $DASHBOARD_URL
[dev-stack]  log in     $DASHBOARD_URL/login → "Sign in with the admin token", paste the contents of .dgon/admin-token;
[dev-stack]             then Admin → Users creates accounts (admin, operator, viewer) that sign in with e-mail and password
[dev-stack]  api        $API_URL   (reads need a credential: curl -H "Authorization: Bearer \$(cat .dgon/admin-token)" $API_URL/v1/nodes)
[dev-stack]  postgres   $DATABASE_URL
[dev-stack]  agent      $([ "$WITH_AGENT" = 1 ] && echo "$NODE_ID (pending until Ollama answers on ${OLLAMA_URL:-http://127.0.0.1:11434})" || echo "not started (--no-agent)")
[dev-stack]  admin      .dgon/admin-token   (curl -H "Authorization: Bearer \$(cat .dgon/admin-token)" $API_URL/v1/admin/join-tokens)
[dev-stack]  join token $JOIN_TOKEN   (24 h; enrolls new nodes)
$INFERENCE
[dev-stack]  join a Mac (API reachable from it, e.g. ASPNETCORE_URLS=http://0.0.0.0:8001 behind TLS; plain http needs --insecure-http):
[dev-stack]    DGON_API=https://<this-host> DGON_JOIN_TOKEN=$JOIN_TOKEN NODE_ID=macbook-001 dotnet ~/dgon-agent/Dgon.Agent.dll
[dev-stack]  logs       .dgon/logs/
[dev-stack]  Ctrl-C to stop
[dev-stack] ------------------------------------------------------------
EOF

# ---- watch -------------------------------------------------------------------------------------------------

while :; do
  for name in $COMPONENTS; do
    if ! alive "$name"; then
      say "$name exited on its own (its last lines are above; full log: .dgon/logs/$name.log): stopping the rest"
      exit 1
    fi
  done
  sleep 1
done
