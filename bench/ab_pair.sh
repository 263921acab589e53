#!/usr/bin/env bash
# Alternating A/B pairs of e2e runs, the only comparison that means anything on a shared VM.
#
#   bash bench/ab_pair.sh NAME BASE RATE PAIRS PATH...
#
# A runs with BASE's version of each PATH (each must exist in BASE) in the work tree, B with HEAD's
# (files new since BASE stay: the old code does not import them). Each run is
# `bench/e2e_bench.py --rate RATE --duration 12` on tmpfs; between 4 and 10 s of sending the
# core's and the gateway worker's CPU are read from /proc/<pid>/stat. One line per run;
# the runs' JSON go to ${AB_OUT:-/tmp/ab}/NAME_{A,B}N.json. Commit before: B is HEAD.
set -euo pipefail
NAME=$1 BASE=$2 RATE=$3 PAIRS=$4
shift 4
OUT=${AB_OUT:-/tmp/ab}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TICK=$(getconf CLK_TCK)

cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

run() {
  local tag=$1
  TMPDIR=/dev/shm timeout 300 "$PY" bench/e2e_bench.py --rate "$RATE" --duration 12 >"$OUT/$tag.json" 2>"$OUT/$tag.err" &
  local bench=$!
  sleep 9  # start-up, then 4 s of sending
  local core worker c0 w0 t0 c1 w1 t1
  core=$(pgrep -f "flarectl.main up" | head -1 || true)
  worker=$(pgrep -f "gateway_worker" | head -1 || true)
  c0=$(cpu "${core:-0}"); w0=$(cpu "${worker:-0}"); t0=$(date +%s.%N)
  sleep 6
  c1=$(cpu "${core:-0}"); w1=$(cpu "${worker:-0}"); t1=$(date +%s.%N)
  wait "$bench" || true
  "$PY" - "$OUT/$tag.json" "$tag" "$c0" "$c1" "$w0" "$w1" "$t0" "$t1" "$TICK" <<'PY'
import json, sys
path, tag, c0, c1, w0, w1, t0, t1, tick = sys.argv[1:]
d = json.load(open(path))
elapsed, rate = float(t1) - float(t0), d["messages_per_s"] or 1
core, worker = (float(c1) - float(c0)) / int(tick), (float(w1) - float(w0)) / int(tick)
print(f"{tag} msgs/s={rate} p50={d['send_deliver_p50_ms']} p99={d['send_deliver_p99_ms']} "
      f"shed/s={d['shed_per_s']} lost={d['lost']} dup={d['duplicated']} ooo={d['out_of_order']} "
      f"core_us/msg={core / elapsed / rate * 1e6:.0f} worker_us/msg={worker / elapsed / rate * 1e6:.0f} "
      f"tester={d['tester_cpu_pct_sending']}%")
PY
}

trap 'git checkout -q HEAD -- "$@"' EXIT
for i in $(seq 1 "$PAIRS"); do
  git checkout -q "$BASE" -- "$@"
  run "${NAME}_A$i"
  git checkout -q HEAD -- "$@"
  run "${NAME}_B$i"
done
