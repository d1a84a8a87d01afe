# shellcheck shell=bash
# Shared helpers for deploy/local/run, tests/run and tests/lib/pg-instance.
# Source it from bash; it defines functions and a few variables, nothing runs.
#
#   LL_ROOT       repository root (derived from this file's location)
#   LL_BUILD_DIR  build folder used by ll_wait_serving (default $LL_ROOT/build)
#   LL_PG_BIN     PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   LL_PG_FAST=1  start PostgreSQL without durability (fsync off etc.)
#   LL_JOBS       parallel build jobs (default: nproc)
#   LL_QUIET=1    no informational notes (errors are still printed)

LL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LL_BUILD_DIR="${LL_BUILD_DIR:-$LL_ROOT/build}"
LL_PG_BIN="${LL_PG_BIN:-/usr/lib/postgresql/15/bin}"

# Debian 12 packages needed to build, test and run labelloop locally.
LL_PACKAGES=(
    build-essential cmake pkg-config git
    libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
    libhiredis-dev libpqxx-dev libspdlog-dev nlohmann-json3-dev libzip-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    postgresql-15 postgresql-client-15 postgresql-contrib redis-server
    libeigen3-dev libcli11-dev libstb-dev libsodium-dev libjwt-dev libcpp-httplib-dev
    libboost-dev  # header-only Boost.Beast/Asio: the gateway's HTTP server
    libnghttp2-dev  # the bare HTTP/2 hop gateway_bench compares the gateway with
    unzip python3 python3-numpy curl ca-certificates
    # Benchmark baselines and archive checks (scikit-learn, pandas, psycopg2, pgbench).
    python3-sklearn python3-pandas python3-psycopg2 python3-yaml
    # Deployment checks: compose validation without an engine.
    docker-compose
)

ll_log() { printf '[labelloop] %s\n' "$*" >&2; }
ll_die() { printf '[labelloop] error: %s\n' "$*" >&2; exit 1; }
ll_note() { [[ "${LL_QUIET:-0}" == 1 ]] || ll_log "$@"; } # silenced by LL_QUIET=1

ll_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# ---------------------------------------------------------------- packages

# Installs whatever is missing from LL_PACKAGES; does nothing (fast) otherwise.
ll_install_packages() {
    local -A installed=()
    local pkg status missing=()
    # One dpkg-query call for all packages; unknown ones are simply absent.
    while IFS=$'\t' read -r pkg status; do
        [[ "$status" == *" ok installed" ]] && installed["${pkg%%:*}"]=1
    done < <(dpkg-query -W -f='${Package}\t${Status}\n' "${LL_PACKAGES[@]}" 2>/dev/null || true)
    for pkg in "${LL_PACKAGES[@]}"; do
        [[ -n "${installed[$pkg]:-}" ]] || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0

    ll_log "installing missing packages: ${missing[*]}"
    local sudo=()
    if ! ll_is_root; then
        command -v sudo >/dev/null || ll_die "not root and sudo is not available; install as root: ${missing[*]}"
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------- build

# ll_build BUILD_DIR [CMAKE_ARGS...]: configure (once, Release) and build.
ll_build() {
    local build_dir="${1:?ll_build BUILD_DIR}"
    shift
    if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
        cmake -S "$LL_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
    fi
    cmake --build "$build_dir" -j "${LL_JOBS:-$(nproc)}"
}

# ---------------------------------------------------------------- misc

# Prints a TCP port that is currently free on 127.0.0.1.
ll_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ll_port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
ll_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ll_tail_log FILE [LINES]: shows the end of a log file on stderr.
ll_tail_log() {
    local file="$1" lines="${2:-40}"
    if [[ -f "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2 || true
        printf -- '-----\n' >&2
    else
        printf '(no log file %s)\n' "$file" >&2
    fi
}

# ---------------------------------------------------------------- PostgreSQL
#
# Layout for DATA_DIR=/x/pg:  /x/pg (data)  /x/run (unix socket)  /x/log/postgres.log
# PostgreSQL refuses to run as root, so as root everything runs as "postgres".

# Runs a PostgreSQL server tool as the right user, from a neutral cwd.
_ll_pg_as() {
    if ll_is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# As root: makes sure the postgres user can reach DIR (adds o+x where needed).
_ll_pg_make_traversable() {
    local dir="$1"
    ll_is_root || return 0
    runuser -u postgres -- test -x "$dir" 2>/dev/null && return 0
    local d="$dir" chain=()
    while [[ "$d" != "/" ]]; do
        chain=("$d" "${chain[@]}")
        d="$(dirname "$d")"
    done
    for d in "${chain[@]}"; do
        if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
            ll_note "note: chmod o+x $d so that the postgres user can reach it"
            chmod o+x "$d"
        fi
    done
}

# ll_pg_running DATA_DIR: true when a postmaster is running on DATA_DIR.
ll_pg_running() {
    local data_dir
    data_dir="$(realpath -m "$1")"
    [[ -f "$data_dir/postmaster.pid" ]] || return 1
    _ll_pg_as "$LL_PG_BIN/pg_ctl" -D "$data_dir" status >/dev/null 2>&1
}

# ll_pg_start DATA_DIR PORT [LOG_FILE]
ll_pg_start() {
    local data_dir port base run_dir log_file
    data_dir="$(realpath -m "${1:?ll_pg_start DATA_DIR PORT}")"
    port="${2:?ll_pg_start DATA_DIR PORT}"
    base="$(dirname "$data_dir")"
    run_dir="$base/run"
    log_file="$(realpath -m "${3:-$base/log/postgres.log}")"

    [[ -x "$LL_PG_BIN/postgres" ]] || ll_die "PostgreSQL 15 not found in $LL_PG_BIN (install postgresql-15)"

    mkdir -p "$data_dir" "$run_dir" "$(dirname "$log_file")"
    touch "$log_file"
    if ll_is_root; then
        _ll_pg_make_traversable "$base"
        _ll_pg_make_traversable "$(dirname "$log_file")"
        chown -R postgres:postgres "$data_dir"
        chown postgres:postgres "$run_dir" "$log_file"
    elif [[ ! -O "$data_dir" ]]; then
        ll_die "$data_dir belongs to $(stat -c %U "$data_dir"), not to $(id -un); run as that user or as root"
    fi
    chmod 700 "$data_dir"

    # The unix socket path must fit in sun_path (107 bytes); TCP is what we use anyway.
    local socket_dir="$run_dir"
    if (( ${#run_dir} + 20 > 107 )); then
        socket_dir=""
    fi

    if [[ ! -f "$data_dir/PG_VERSION" ]]; then
        local initdb_opts=(-D "$data_dir" --auth=trust -U labelloop -E UTF8 --locale=C.UTF-8)
        [[ "${LL_PG_FAST:-0}" == 1 ]] && initdb_opts+=(--no-sync)
        if ! _ll_pg_as "$LL_PG_BIN/initdb" "${initdb_opts[@]}" >>"$log_file" 2>&1; then
            ll_tail_log "$log_file"
            ll_die "initdb failed for $data_dir"
        fi
    fi

    if ll_pg_running "$data_dir"; then
        ll_log "error: PostgreSQL is already running on $data_dir"
        return 1
    fi

    local opts="-c listen_addresses=127.0.0.1 -p $port -c max_connections=300"
    opts+=" -c unix_socket_directories='$socket_dir'"
    if [[ "${LL_PG_FAST:-0}" == 1 ]]; then
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi

    # shellcheck disable=SC2094 # pg_ctl only prints errors (-s); both append to the log
    if ! _ll_pg_as "$LL_PG_BIN/pg_ctl" -D "$data_dir" -l "$log_file" -o "$opts" -s -w -t 30 start >>"$log_file" 2>&1; then
        ll_tail_log "$log_file"
        ll_pg_stop "$data_dir" immediate 2>/dev/null || true
        ll_log "error: PostgreSQL did not start on 127.0.0.1:$port (data $data_dir)"
        return 1
    fi

    local deadline=$((SECONDS + 30))
    until "$LL_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U labelloop -d postgres -t 1; do
        if ((SECONDS >= deadline)) || ! ll_pg_running "$data_dir"; then
            ll_tail_log "$log_file"
            ll_pg_stop "$data_dir" immediate 2>/dev/null || true
            ll_log "error: PostgreSQL on 127.0.0.1:$port did not become ready (data $data_dir)"
            return 1
        fi
        sleep 0.1
    done
}

# ll_pg_stop DATA_DIR [MODE]: stops the server (MODE fast by default); ok if not running.
ll_pg_stop() {
    local data_dir mode="${2:-fast}"
    data_dir="$(realpath -m "${1:?ll_pg_stop DATA_DIR}")"
    ll_pg_running "$data_dir" || return 0
    if ! _ll_pg_as "$LL_PG_BIN/pg_ctl" -D "$data_dir" -m "$mode" -s -w -t 60 stop; then
        ll_log "PostgreSQL ($data_dir) did not stop in time, stopping it immediately"
        _ll_pg_as "$LL_PG_BIN/pg_ctl" -D "$data_dir" -m immediate -s -w -t 30 stop
    fi
}

# ---------------------------------------------------------------- Redis
#
# Layout for DATA_DIR=/x/redis: data, redis.pid and redis.port in /x/redis,
# log in /x/log/redis.log.

_ll_pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

_ll_redis_pid() {
    local pidfile="$1/redis.pid"
    [[ -f "$pidfile" ]] && cat "$pidfile" 2>/dev/null
}

# ll_redis_start DATA_DIR PORT [LOG_FILE]
ll_redis_start() {
    local data_dir port log_file pid
    data_dir="$(realpath -m "${1:?ll_redis_start DATA_DIR PORT}")"
    port="${2:?ll_redis_start DATA_DIR PORT}"
    log_file="$(realpath -m "${3:-$(dirname "$data_dir")/log/redis.log}")"
    mkdir -p "$data_dir" "$(dirname "$log_file")"

    pid="$(_ll_redis_pid "$data_dir" || true)"
    if _ll_pid_alive "$pid"; then
        ll_log "error: Redis is already running on $data_dir (pid $pid)"
        return 1
    fi
    rm -f "$data_dir/redis.pid"
    printf '%s\n' "$port" >"$data_dir/redis.port"

    # shellcheck disable=SC2094 # early errors go to stdout, the rest to --logfile
    redis-server --port "$port" --bind 127.0.0.1 --dir "$data_dir" \
        --save "" --appendonly yes --daemonize yes \
        --pidfile "$data_dir/redis.pid" --logfile "$log_file" >>"$log_file" 2>&1 || {
        ll_tail_log "$log_file"
        ll_log "error: redis-server failed to start"
        return 1
    }

    local deadline=$((SECONDS + 30))
    until [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; do
        pid="$(_ll_redis_pid "$data_dir" || true)"
        if ((SECONDS >= deadline)) || { [[ -n "$pid" ]] && ! _ll_pid_alive "$pid"; }; then
            ll_tail_log "$log_file"
            ll_redis_stop "$data_dir" 2>/dev/null || true
            ll_log "error: Redis on 127.0.0.1:$port did not answer PING"
            return 1
        fi
        sleep 0.1
    done
}

# ll_redis_stop DATA_DIR: stops the server started by ll_redis_start; ok if not running.
ll_redis_stop() {
    local data_dir pid port
    data_dir="$(realpath -m "${1:?ll_redis_stop DATA_DIR}")"
    pid="$(_ll_redis_pid "$data_dir" || true)"
    _ll_pid_alive "$pid" || { rm -f "$data_dir/redis.pid"; return 0; }
    port="$(cat "$data_dir/redis.port" 2>/dev/null || true)"
    if [[ -n "$port" ]]; then
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    local deadline=$((SECONDS + 15))
    while _ll_pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            ll_log "Redis (pid $pid) did not stop in time, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$data_dir/redis.pid"
}

# ---------------------------------------------------------------- services

# ll_wait_serving HOST:PORT NAME TIMEOUT [PID]
# Waits until the gRPC health service at HOST:PORT reports SERVING, using
# $LL_BUILD_DIR/bin/labelloop-healthcheck --addr HOST:PORT (exit 0 = SERVING).
# Returns 1 on timeout, 2 when PID (if given) exits first.
ll_wait_serving() {
    local addr="${1:?ll_wait_serving HOST:PORT NAME TIMEOUT [PID]}" name="${2:-service}"
    local timeout="${3:-60}" pid="${4:-}"
    local check="$LL_BUILD_DIR/bin/labelloop-healthcheck"
    [[ -x "$check" ]] || ll_die "$check not found (build first)"
    local deadline=$((SECONDS + timeout))
    while true; do
        if [[ -n "$pid" ]] && ! _ll_pid_alive "$pid"; then
            ll_log "error: $name (pid $pid) exited before reporting SERVING on $addr"
            return 2
        fi
        if timeout 10 "$check" --addr "$addr" >/dev/null 2>&1; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            ll_log "error: $name did not report SERVING on $addr within ${timeout}s"
            return 1
        fi
        sleep 0.2
    done
}
