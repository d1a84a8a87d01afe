#!/usr/bin/env bash
# Labeling benchmark: claim+submit cycles/s with CLIENTS concurrent annotators over gRPC
# on loopback against labelloop-labeling, next to `pgbench -N` tps with the same number
# of clients on the same PostgreSQL, alternating, RUNS times; prints each run and the
# medians; then a paced run offering 0.4 x the median pgbench tps (the goal's rate). The project has ITEMS items (INSERT ... SELECT generate_series).
#
#   bench/labeling/run.sh [BUILD_DIR]
#
# Environment: ITEMS (1000000), CLIENTS (64), DURATION (seconds per run, 20), RUNS (3), POOL (labeling's
# pg-pool-size, 8), CLAIM_POOL (its claim-pool-size, 8), LL_PG_FAST (0: durable PostgreSQL
# defaults; 1: fsync off), SERVICE_ARGS (more labelloop-labeling flags, e.g. "--claim-batches 2"),
# PACED_RUNS (3: paced runs at the goal's rate), SWEEP (fractions of the median pgbench tps
# to run paced once each, e.g. "0.2 0.3 0.5"; none by default).
# After the runs, one single-annotator run (no queueing) gives
# the latency of an unloaded cycle.
# Needs the labelloop-labeling and labeling_bench binaries in BUILD_DIR/bin.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../deploy/lib/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib" && pwd)/common.sh"
BUILD_DIR="${1:-$LL_ROOT/build}"
ITEMS="${ITEMS:-1000000}"
CLIENTS="${CLIENTS:-64}"
SECONDS_PER_RUN="${DURATION:-20}"
RUNS="${RUNS:-3}"
PACED_RUNS="${PACED_RUNS:-3}"
SWEEP="${SWEEP:-}"
POOL="${POOL:-8}"
CLAIM_POOL="${CLAIM_POOL:-8}"
export LL_PG_FAST="${LL_PG_FAST:-0}"

TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/labelloop-bench-labeling.XXXXXX")"
chmod 755 "$TMP_DIR"
SERVICE_PID=""
teardown() {
    [[ -n "$SERVICE_PID" ]] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
    ll_redis_stop "$TMP_DIR/redis" || true
    ll_pg_stop "$TMP_DIR/pg" immediate || true
    rm -rf "$TMP_DIR"
}
trap teardown EXIT

PG_PORT="$(ll_free_port)"
ll_pg_start "$TMP_DIR/pg" "$PG_PORT"
REDIS_PORT="$(ll_free_port)"
ll_redis_start "$TMP_DIR/redis" "$REDIS_PORT"
URL="postgresql://labelloop@127.0.0.1:$PG_PORT"
psql -q "$URL/postgres" -c "CREATE DATABASE labelloop" -c "CREATE DATABASE pgbench"
pgbench -i -q -s 10 "$URL/pgbench" >/dev/null 2>&1

GRPC_PORT="$(ll_free_port)"
"$BUILD_DIR/bin/labelloop-labeling" --pg-url "$URL/labelloop" --redis-port "$REDIS_PORT" \
    --grpc-host 127.0.0.1 --grpc-port "$GRPC_PORT" --metrics-port 0 --pg-pool-size "$POOL" \
    --claim-pool-size "$CLAIM_POOL" ${SERVICE_ARGS:-} \
    --log-level warn --env-file /dev/null >"$TMP_DIR/labeling.log" 2>&1 &
SERVICE_PID=$!
ADDR="127.0.0.1:$GRPC_PORT"
for _ in $(seq 1 100); do
    PROJECT="$("$BUILD_DIR/bin/labeling_bench" create-project "$ADDR" 2>/dev/null)" && break
    sleep 0.2
done
[[ -n "${PROJECT:-}" ]] || { cat "$TMP_DIR/labeling.log"; ll_die "labelloop-labeling did not start"; }

start=$(date +%s.%N)
psql -q "$URL/labelloop" -c "INSERT INTO labeling.items (project_id, external_id, row_payload, features)
  SELECT $PROJECT, 'row-' || g, jsonb_build_object('g', g),
         ARRAY[random(), random(), random(), random(), random(), random(), random(), random()]::real[]
  FROM generate_series(1, $ITEMS) g" -c "VACUUM ANALYZE labeling.items" -c "CHECKPOINT"
end=$(date +%s.%N)

echo "# labeling benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), PostgreSQL $(psql -tA "$URL/postgres" -c 'SHOW server_version'), fsync=$(psql -tA "$URL/postgres" -c 'SHOW fsync'), synchronous_commit=$(psql -tA "$URL/postgres" -c 'SHOW synchronous_commit')"
echo "# workload: project of $ITEMS items (inserted in $(echo "$end - $start" | bc) s), $CLIENTS clients, ${SECONDS_PER_RUN} s per run, $RUNS runs, labeling pg-pool-size $POOL + claim-pool-size $CLAIM_POOL ${SERVICE_ARGS:-}, load generator: $CLIENTS annotators on their own connections driven by 2 threads, ranking not running (oldest-first fallback)"
# PostgreSQL's own background work during each run (an autovacuum of the 1M-row items
# table takes seconds of one core; a checkpoint writes and syncs what the runs dirtied):
# "autovacuum/autoanalyze of items/checkpoints (leases: autovacuums, dead rows)" before and
# after: a lease lives for one cycle, so leases churns a row per cycle.
vacuum_counts() {
    psql -tA "$URL/labelloop" -c "SELECT autovacuum_count || '/' || autoanalyze_count || '/' ||
      (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) ||
      ' (leases: ' || (SELECT autovacuum_count || ' autovacuums, ' || n_dead_tup || ' dead rows'
                       FROM pg_stat_user_tables WHERE relid = 'labeling.leases'::regclass) || ')'
      FROM pg_stat_user_tables WHERE relid = 'labeling.items'::regclass"
}
during() {  # during BEFORE: what ran since the counts BEFORE
    echo "PostgreSQL items autovacuum/autoanalyze/checkpoints: $1 -> $(vacuum_counts)$(
        psql -tA "$URL/labelloop" -c "SELECT ', vacuum still running: ' || phase
          FROM pg_stat_progress_vacuum WHERE relid = 'labeling.items'::regclass")"
}
json_number() {  # json_number KEY LINE: the number after "KEY": in labeling_bench's line
    echo "$2" | sed -E "s/.*\"$1\":([0-9.]+).*/\1/"
}
cycles=()
tps=()
closed_p99=()
for run in $(seq 1 "$RUNS"); do
    t="$(pgbench -n -N -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" "$URL/pgbench" 2>/dev/null |
        awk '/^tps = / {print $3; exit}')"
    tps+=("$t")
    before="$(vacuum_counts)"
    line="$("$BUILD_DIR/bin/labeling_bench" run "$ADDR" "$PROJECT" "$CLIENTS" "$SECONDS_PER_RUN" 3)"
    cycles+=("$(json_number cycles_per_s "$line")")
    closed_p99+=("$(json_number claim_p99_ms "$line")")
    echo "run $run: pgbench -N tps=$t  labeling $line  load $(cut -d" " -f1 /proc/loadavg); $(during "$before")"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mc="$(median "${cycles[@]}")"
mt="$(median "${tps[@]}")"
# Latency at the goal's throughput: the same 64 annotators, each starting its cycles on a
# fixed schedule so that together they offer 0.4 x the median pgbench -N tps; a claim's
# latency counts from when its cycle was due. (The closed-loop runs above saturate the
# machine: there every latency is queueing, 64 clients / cycles per second.)
# This VM's p99 at one offered rate moves by a factor of three from run to run, so the
# paced run is repeated PACED_RUNS times; SWEEP runs once at each of these fractions of
# the pgbench tps, to show where the p99 turns up.
goal_rate="$(echo "scale=1; 0.4 * $mt" | bc)"
paced_p99=()
for run in $(seq 1 "$PACED_RUNS"); do
    before="$(vacuum_counts)"
    line="$("$BUILD_DIR/bin/labeling_bench" run "$ADDR" "$PROJECT" "$CLIENTS" "$SECONDS_PER_RUN" 3 "$goal_rate")"
    paced_p99+=("$(json_number claim_p99_ms "$line")")
    echo "paced run $run at 0.4 x pgbench -N = $goal_rate cycles/s: $line; $(during "$before")"
done
for fraction in $SWEEP; do
    rate="$(echo "scale=1; $fraction * $mt" | bc)"
    before="$(vacuum_counts)"
    echo "sweep: paced at $fraction x pgbench -N = $rate cycles/s: $("$BUILD_DIR/bin/labeling_bench" run "$ADDR" "$PROJECT" "$CLIENTS" "$SECONDS_PER_RUN" 3 "$rate"); $(during "$before")"
done
echo "single annotator: $("$BUILD_DIR/bin/labeling_bench" run "$ADDR" "$PROJECT" 1 "$SECONDS_PER_RUN" 1)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median: labeling cycles/s=$mc  pgbench -N tps=$mt  ratio=$(echo "scale=3; $mc / $mt" | bc)  (goal >= 0.4)"
echo "closed loop: ClaimNext p99 median $(median "${closed_p99[@]}") ms over $RUNS runs (goal <= 20)"
echo "paced at the goal's rate: ClaimNext p99 median $(median "${paced_p99[@]}") ms over $PACED_RUNS runs, $(printf '%s\n' "${paced_p99[@]}" | awk '$1 <= 20 {n++} END {print n+0}') of them <= 20 ms (goal <= 20)"
echo "labeled so far: $(psql -tA "$URL/labelloop" -c "SELECT count(*) FROM labeling.items WHERE status = 'labeled'") of $ITEMS"
