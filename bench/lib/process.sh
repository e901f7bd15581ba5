# Process helpers for the bench scripts (sourced, not run).
#
#   source "$ROOT/bench/lib/process.sh"
#   stop_pid "$PID"    # SIGTERM, wait up to 15 s, then SIGKILL; no-op for an empty or finished PID

stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
