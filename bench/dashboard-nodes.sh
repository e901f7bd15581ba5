#!/usr/bin/env bash
# The dashboard's Nodes page with 100,000 nodes in PostgreSQL, measured in headless Chromium (/usr/bin/chromium):
# navigation until the table is rendered, one live refresh, a search by id prefix and a Next click. Starts a
# throwaway PostgreSQL, the API (standalone) and the dashboard on free ports, fills the nodes table with one
# INSERT ... SELECT generate_series, prints the figures, and stops everything it started. Prints, never asserts.
#
#   bench/dashboard-nodes.sh [--no-build] [--baseline <commit>] [-- <bench args>]
#     --baseline <commit>  also measure the dashboard of <commit> (built from `git archive` in a temp folder)
#     bench args           --nodes 100000 --runs 3 --timeout 60 (seconds per wait) --refresh 5 (seconds)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1 BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --baseline) BASELINE="$2"; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

BENCH="$ROOT/bench/Dgon.DashboardBench/bin/Release/net10.0/Dgon.DashboardBench.dll"
if [ "$BUILD" = 1 ]; then
  dotnet build "$ROOT/bench/Dgon.DashboardBench" -c Release -v quiet -nologo
fi

if [ -n "$BASELINE" ]; then
  WORK="$(mktemp -d /tmp/dgon-dash-baseline.XXXXXX)"
  trap 'rm -rf "$WORK"' EXIT
  git -C "$ROOT" archive "$BASELINE" dashboard domain Directory.Build.props Directory.Packages.props global.json | tar -x -C "$WORK"
  [ -d "$ROOT/dashboard/node_modules" ] && cp -r "$ROOT/dashboard/node_modules" "$WORK/dashboard/"
  dotnet build "$WORK/dashboard" -c Release -v quiet -nologo
  dotnet "$BENCH" --dashboard "$WORK/dashboard/bin/Release/net10.0/Dgon.Dashboard.dll" --label "baseline $BASELINE" "$@"
fi

dotnet "$BENCH" --label "this build ($(git -C "$ROOT" rev-parse --short HEAD))" "$@"
