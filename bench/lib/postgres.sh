# Throwaway PostgreSQL for the bench scripts (sourced, not run). Shared by heartbeat-load.sh, kubernetes-mode.sh and
# fleet.sh, which each carried a copy of this before.
#
#   source "$ROOT/bench/lib/postgres.sh"
#   pg_find_bin                      # sets PG_BIN (honours a PG_BIN already set); exits when no server binaries
#   pg_start "$WORK" fast|durable    # initdb in $WORK/pg/data, postgres on a free 127.0.0.1 port, database dgon;
#                                    # sets PG_PID, PG_PORT, DATABASE_URL, PG_DURABILITY (a sentence saying which)
#   pg_stop "$WORK"                  # in the caller's cleanup: stops what pg_start started (no-op if nothing)
#
# fast = fsync=off, synchronous_commit=off (measures the API, not the disk); durable = the server's defaults
# (fsync on, synchronous_commit on). Runs the server as user postgres when called as root (initdb refuses root).
# Needs python3 (free ports).

PG_PID="${PG_PID:-}"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pg_find_bin() {
  if [ -z "${PG_BIN:-}" ]; then
    PG_BIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    [ -x "$PG_BIN/initdb" ] || PG_BIN="$(dirname "$(command -v initdb || echo /nonexistent/initdb)")"
  fi
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found: set PG_BIN" >&2; exit 1; }
}

pg_start() {
  local work=$1 mode=${2:-fast} flags=()
  case "$mode" in
    fast) flags=(-c fsync=off -c synchronous_commit=off)
      PG_DURABILITY="fsync=off, synchronous_commit=off: measures the API, not the disk" ;;
    durable) PG_DURABILITY="fsync=on, synchronous_commit=on (server defaults)" ;;
    *) echo "pg_start: mode must be fast or durable, not '$mode'" >&2; exit 2 ;;
  esac
  mkdir -p "$work/pg"
  chmod 755 "$work" "$work/pg"
  if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg"; fi
  as_pg "$PG_BIN/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-locale >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log"; exit 1; }
  PG_PORT="$(free_port)"
  as_pg "$PG_BIN/postgres" -D "$work/pg/data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= "${flags[@]}" >"$work/postgres.log" 2>&1 </dev/null &
  PG_PID=$!
  for _ in $(seq 1 60); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres && break; sleep 0.5; done
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtX -c 'CREATE DATABASE dgon'
  DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/dgon"
}

pg_stop() {
  local work=$1
  [ -n "$PG_PID" ] || return 0
  as_pg "$PG_BIN/pg_ctl" stop -D "$work/pg/data" -m fast -w -t 30 >/dev/null 2>&1 || kill -INT "$PG_PID" 2>/dev/null
  wait "$PG_PID" 2>/dev/null
  PG_PID=""
}
