#!/usr/bin/env bash
# Ranking benchmarks, C++ next to numpy in the same run, then the live-service figures.
#
#   bench/ranking/run.sh [BUILD_DIR] [--no-live]
# BUILD_DIR defaults to build/; needs targets ranking_score_bench, ranking_live_bench and
# labelloop-ranking. The live part starts a throwaway PostgreSQL and Redis on free ports.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
live=1
[[ "${2:-}" == "--no-live" ]] && live=0
work="$(mktemp -d /tmp/ranking-bench.XXXXXX)"
data="$work/probs_1m_x10.f32"
trap 'rm -rf "$work"' EXIT
runs=11

echo "== scoring + top-1000 of 1,000,000 x 10 ($(nproc) cores, $(date -u +%FT%TZ), load average: $(cut -d' ' -f1-3 /proc/loadavg))"
"$build/bin/ranking_score_bench" "$data" 1 1 > /dev/null  # writes the data set
"$build/bin/ranking_score_bench" "$data" "$runs" 1 | tee "$work/cpp1.txt"
"$build/bin/ranking_score_bench" "$data" "$runs" 2 | tee "$work/cpp2.txt"
/usr/bin/python3 "$here/numpy_baseline.py" "$data" "$runs" | tee "$work/numpy.txt"
/usr/bin/python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
def read(name):
    out = {}
    for line in open(f"{work}/{name}"):
        f = line.split()
        if len(f) > 3 and f[2] == "median_ms":
            out[f[1]] = (float(f[3]), f[7], float(f[11]))
    return out
c1, c2, npy = read("cpp1.txt"), read("cpp2.txt"), read("numpy.txt")
print("wall-clock medians (ms) and numpy / C++ ratios; CPU-time medians (ms) and ratio")
print(f"{'strategy':17} {'numpy':>7} {'C++1':>7} {'C++2':>7} {'x1':>6} {'x2':>6} | "
      f"{'np cpu':>7} {'C++1 cpu':>8} {'x cpu':>6}  same top-1000")
for s in npy:
    same = "yes" if c1[s][1] == npy[s][1] else ("n/a (different RNG)" if s == "random" else "NO")
    print(f"{s:17} {npy[s][0]:7.2f} {c1[s][0]:7.2f} {c2[s][0]:7.2f} "
          f"{npy[s][0] / c1[s][0]:6.1f} {npy[s][0] / c2[s][0]:6.1f} | "
          f"{npy[s][2]:7.2f} {c1[s][2]:8.2f} {npy[s][2] / c1[s][2]:6.1f}  {same}")
PY

if (( live )); then
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$root/tests/lib/pg-instance" start "$work/pg" "$pg_port"
  redis-server --port "$redis_port" --daemonize yes --save '' --dir "$work" > /dev/null
  cleanup() {
    redis-cli -p "$redis_port" shutdown nosave > /dev/null 2>&1 || true
    "$root/tests/lib/pg-instance" stop "$work/pg" fast || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  echo "== live service: models.ready -> order live, restart, NextCandidates under load"
  LABELLOOP_TEST_PG_URL="postgresql://labelloop@127.0.0.1:$pg_port/postgres" \
  LABELLOOP_TEST_REDIS_HOST=127.0.0.1 LABELLOOP_TEST_REDIS_PORT="$redis_port" \
  LABELLOOP_BIN_DIR="$build/bin" \
    "$build/bin/ranking_live_bench" "${LIVE_ITEMS:-1000000}" "${LIVE_RUNS:-3}" 64 10
fi
