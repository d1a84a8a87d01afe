#!/usr/bin/env bash
# Ingestion benchmark: starts a durable PostgreSQL 15 (fsync on, default settings) of its
# own, runs labeling_ingest_bench against it, stops it.
#   bench/labeling_ingest/run.sh BUILD_DIR [extra bench args...]
set -euo pipefail
build="${1:?usage: run.sh BUILD_DIR [--rows N --features F --runs R]}"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../../deploy/lib/common.sh
source "$root/deploy/lib/common.sh"
export LL_QUIET=1
port="${BENCH_PG_PORT:-55891}"
dir="$(mktemp -d /tmp/labelloop-ingest-bench-XXXXXX)"
chmod 755 "$dir"
ll_pg_start "$dir/pg" "$port"
trap 'll_pg_stop "$dir/pg" fast || true; rm -rf "$dir"' EXIT
"$build/bin/labeling_ingest_bench" --pg-url "postgresql://labelloop@127.0.0.1:$port/postgres" "$@"
