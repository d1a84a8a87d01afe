#!/usr/bin/env bash
# Gateway overhead benchmark: PostgreSQL, Redis, labeling and the gateway on free ports,
# a project with enough items for every claim, then gateway_bench (direct vs gateway).
#
#   bench/gateway/run.sh [BUILD_DIR] [-- gateway_bench options, e.g. --clients 64 --seconds 5]
#
# gateway_bench options: --clients N, --seconds S, --runs R, --paced-fraction F (paced
# latency runs at F × the direct closed-loop throughput; 0 = none), --targets
# direct,floor,grpc,http, --works read,cycle. "floor" is h2_passthrough, a bare HTTP/2
# forwarder in front of labeling: what the extra hop alone costs.
#
# The gateway runs as deployed: rate limits on (every call is counted), with limits the
# benchmark never reaches. GATEWAY_ARGS adds or overrides gateway flags (e.g.
# "--rate-limit-user 0 --rate-limit-api-key 0" to leave counting out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == "--" ]] && shift
BIN="$BUILD/bin"
export LL_BUILD_DIR="$BUILD"
# shellcheck source=../../deploy/lib/common.sh
source "$ROOT/deploy/lib/common.sh"
export LL_PG_FAST=1 LL_QUIET=1
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gateway-bench.XXXXXX")"
chmod 755 "$TMP"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ll_redis_stop "$TMP/redis" || true
    ll_pg_stop "$TMP/pg" immediate || true
    rm -rf "$TMP"
}
trap cleanup EXIT

PG_PORT="$(ll_free_port)"; ll_pg_start "$TMP/pg" "$PG_PORT"
REDIS_PORT="$(ll_free_port)"; ll_redis_start "$TMP/redis" "$REDIS_PORT"
export LABELLOOP_PG_URL="postgresql://labelloop@127.0.0.1:$PG_PORT/postgres"
export LABELLOOP_REDIS_PORT="$REDIS_PORT" LABELLOOP_ENV_FILE="" LABELLOOP_LOG_LEVEL=warn
LAB_PORT="$(ll_free_port)"; GW_PORT="$(ll_free_port)"; HTTP_PORT="$(ll_free_port)"
"$BIN/labelloop-labeling" --grpc-port "$LAB_PORT" --metrics-port 0 --pg-pool-size 16 \
    --ranking-addr "127.0.0.1:$(ll_free_port)" --ranking-retry-ms 600000 \
    >"$TMP/labeling.log" 2>&1 &
LAB_PID=$!
PIDS+=($!)
ll_wait_serving "127.0.0.1:$LAB_PORT" labeling 60 || { cat "$TMP/labeling.log"; exit 1; }
"$BIN/labelloop-gateway" --grpc-port "$GW_PORT" --http-port "$HTTP_PORT" --metrics-port 0 \
    --labeling-addr "127.0.0.1:$LAB_PORT" --jwt-secret "bench-secret-0123456789abcdefghijkl" \
    --bootstrap-admin-user root --bootstrap-admin-password root-password \
    --rate-limit-user 100000000 --rate-limit-api-key 100000000 --pg-pool-size 8 \
    ${GATEWAY_ARGS:-} >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=($!)
ll_wait_serving "127.0.0.1:$GW_PORT" gateway 60 || { cat "$TMP/gateway.log"; exit 1; }

H="http://127.0.0.1:$HTTP_PORT"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
ADMIN=$(curl -fsS "$H/v1/GatewayService/Login" -d '{"username":"root","password":"root-password"}' | json '["accessToken"]')
curl -fsS "$H/v1/GatewayService/CreateUser" -H "authorization: Bearer $ADMIN" \
    -d '{"username":"bench","password":"bench-password","role":"ROLE_MANAGER"}' >/dev/null
TOKEN=$(curl -fsS "$H/v1/GatewayService/Login" -d '{"username":"bench","password":"bench-password"}' | json '["accessToken"]')
PROJECT=$(curl -fsS "$H/v1/LabelingService/CreateProject" -H "authorization: Bearer $TOKEN" \
    -d '{"name":"bench","dataKind":"tabular","schema":{"kind":"single","classes":["pos","neg"]}}' | json '["id"]')
ROWS="${BENCH_ROWS:-300000}"
python3 -c "
import random
random.seed(1)
print('id,x1,x2')
for i in range($ROWS):
    print(f'r{i},{random.uniform(-1,1):.4f},{random.uniform(-1,1):.4f}')
" >"$TMP/items.csv"
FIRST="{\"header\":{\"projectId\":\"$PROJECT\",\"format\":\"UPLOAD_FORMAT_CSV\",\"mapping\":{\"externalIdColumn\":\"id\",\"featureColumns\":[\"x1\",\"x2\"]}}}"
curl -fsS "$H/v1/LabelingIngestService/Upload" -H "authorization: Bearer $TOKEN" \
    -H "x-labelloop-first-message: $FIRST" --data-binary @"$TMP/items.csv" >/dev/null
# One annotator per client, members of the project.
CLIENTS=64
ARGS=("$@")
for ((i = 0; i + 1 < ${#ARGS[@]}; i++)); do
    [[ "${ARGS[i]}" == "--clients" ]] && CLIENTS="${ARGS[i + 1]}"
done
python3 - "$H" "$ADMIN" "$TOKEN" "$PROJECT" "$CLIENTS" >"$TMP/tokens" <<'PY'
import json, sys, urllib.request
h, admin, manager, project, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def call(path, body, token=None):
    req = urllib.request.Request(h + path, data=json.dumps(body).encode(),
                                 headers={"authorization": "Bearer " + token} if token else {})
    return json.load(urllib.request.urlopen(req))
for i in range(n):
    name = f"annotator{i}"
    user = call("/v1/GatewayService/CreateUser",
                {"username": name, "password": name + "-pw", "role": "ROLE_ANNOTATOR"}, admin)
    call("/v1/GatewayService/AddMember",
         {"projectId": project, "userId": user["id"], "role": "ROLE_ANNOTATOR"}, manager)
    print(call("/v1/GatewayService/Login", {"username": name, "password": name + "-pw"})["accessToken"])
PY
# The floor: a bare HTTP/2 forwarder in front of labeling (no auth, no policy, one epoll
# thread) — the cost of the extra hop alone, which no gateway can go under.
FLOOR_PORT="$(ll_free_port)"
"$BIN/h2_passthrough" "$FLOOR_PORT" "$LAB_PORT" >"$TMP/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=($!)
ll_wait_serving "127.0.0.1:$FLOOR_PORT" floor 30 || { cat "$TMP/floor.log"; exit 1; }
echo "project $PROJECT with $ROWS items; labeling 127.0.0.1:$LAB_PORT, gateway 127.0.0.1:$GW_PORT (HTTP $HTTP_PORT), floor 127.0.0.1:$FLOOR_PORT"
"$BIN/gateway_bench" --labeling "127.0.0.1:$LAB_PORT" --gateway-grpc "127.0.0.1:$GW_PORT" \
    --gateway-http-port "$HTTP_PORT" --tokens-file "$TMP/tokens" --project "$PROJECT" \
    --labeling-pid "$LAB_PID" --gateway-pid "$GW_PID" \
    --floor-grpc "127.0.0.1:$FLOOR_PORT" --floor-pid "$FLOOR_PID" "$@"
