#!/usr/bin/env bash
# Start throwaway Redis servers for tests (127.0.0.1 only, no persistence).
#
# Usage:
#   scripts/start-redis.sh single  PORT [PASSWORD]
#   scripts/start-redis.sh cluster BASEPORT PASSWORD
#   scripts/start-redis.sh stop    DIR | PORT...
#
# single   one redis-server on 127.0.0.1:PORT (requirepass if PASSWORD given).
# cluster  six cluster nodes on BASEPORT..BASEPORT+5 (3 masters + 3 replicas),
#          requirepass/masterauth PASSWORD, announce-ip 127.0.0.1; waits until
#          every node reports cluster_state:ok. Cluster bus ports are
#          BASEPORT+10000..BASEPORT+10005.
# stop     DIR: kill every server whose pid file is under DIR (a directory
#          printed as REDIS_*_DIR) and remove DIR if this script created it.
#          PORT...: ask each server on 127.0.0.1:PORT for its pid (password
#          from env REDIS_PASSWORD, if any) and kill it.
#
# The working directory (pid files, logs, nodes.conf) is $REDIS_DIR if set,
# else a fresh `mktemp -d /var/tmp/saga-redis-<mode>-<port>.XXXXXX`.
#
# stdout carries only shell-evaluable lines, e.g.
#   eval "$(scripts/start-redis.sh single 6390)"
#     -> REDIS_SINGLE_DIR, REDIS_SINGLE_PIDS, TEST_REDIS_ADDRS
#   eval "$(scripts/start-redis.sh cluster 7100 secret)"
#     -> REDIS_CLUSTER_DIR, REDIS_CLUSTER_PIDS, TEST_REDIS_CLUSTER_ADDRS,
#        TEST_REDIS_CLUSTER_PASSWORD
# Progress messages go to stderr. Running a mode again while its servers are
# still up (same ports, same password, and same REDIS_DIR if one is set)
# reuses them.
set -euo pipefail

log() { printf '[start-redis] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
usage() { sed -n '2,17p' "$0" >&2; exit 2; }

REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
REDIS_CLI=$(command -v redis-cli || echo /usr/bin/redis-cli)
[[ -x "$REDIS_SERVER" ]] || die "redis-server not found"
[[ -x "$REDIS_CLI" ]] || die "redis-cli not found"

MARKER=.saga-redis-dir

# True if PID is a live (non-zombie) process.
alive() {
    local pid=$1 state
    [[ -n "$pid" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

kill_and_wait() {
    local pid
    for pid in "$@"; do if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi; done
    for _ in $(seq 1 100); do
        local any=0
        for pid in "$@"; do alive "$pid" && any=1; done
        (( any )) || return 0
        sleep 0.1
    done
    for pid in "$@"; do
        if alive "$pid"; then log "pid $pid ignored TERM, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cli PORT PASSWORD ARGS...
cli() {
    local port=$1 pass=$2; shift 2
    if [[ -n "$pass" ]]; then
        REDISCLI_AUTH="$pass" "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"
    else
        "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"
    fi
}

ping_ok() { [[ "$(cli "$1" "$2" ping 2>/dev/null)" == PONG ]]; }

show_logs() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        log "---- last lines of $f ----"
        tail -n 30 "$f" >&2 || true
    done
}

make_dir() { # make_dir NAME
    local d
    if [[ -n "${REDIS_DIR:-}" ]]; then
        d=$REDIS_DIR; mkdir -p "$d"
    else
        d=$(mktemp -d "/var/tmp/saga-redis-$1.XXXXXX")
        : >"$d/$MARKER"
    fi
    (cd "$d" && pwd -P)
}

# start_node PORT DIR PASSWORD [extra redis-server args...]; prints the pid.
start_node() {
    local port=$1 dir=$2 pass=$3; shift 3
    local args=(
        --port "$port"
        --bind 127.0.0.1
        --protected-mode yes
        --dir "$dir"
        --save ""
        --appendonly no
        --daemonize yes
        --pidfile "$dir/redis.pid"
        --logfile "$dir/redis.log"
    )
    [[ -n "$pass" ]] && args+=(--requirepass "$pass" --masterauth "$pass")
    mkdir -p "$dir"
    rm -f "$dir/redis.pid"
    "$REDIS_SERVER" "${args[@]}" "$@" </dev/null >>"$dir/redis.stdout" 2>&1 \
        || { show_logs "$dir/redis.stdout" "$dir/redis.log"; die "redis-server on port $port failed to start"; }
}

# wait_node PORT DIR PASSWORD: wait until it answers PING; print its pid.
wait_node() {
    local port=$1 dir=$2 pass=$3 pid=""
    for _ in $(seq 1 100); do
        pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
        if [[ -n "$pid" ]] && ! alive "$pid"; then
            show_logs "$dir/redis.log"; die "redis-server on port $port (pid $pid) exited"
        fi
        if [[ -n "$pid" ]] && ping_ok "$port" "$pass"; then echo "$pid"; return 0; fi
        sleep 0.1
    done
    show_logs "$dir/redis.log"
    die "redis-server on port $port did not answer PING within 10 s"
}

# Reuse a running server only if REDIS_DIR is unset or it is the server's dir
# (so a caller with its own fresh REDIS_DIR never adopts a foreign server).
owned_dir_ok() {
    [[ -z "${REDIS_DIR:-}" ]] && return 0
    [[ -d "$REDIS_DIR" && -n "$1" && "$1" == "$(cd "$REDIS_DIR" && pwd -P)" ]]
}

# pid of the server on PORT via INFO (works without pid file).
server_pid() { cli "$1" "$2" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p'; }

mode_single() {
    local port=${1:-} pass=${2:-}
    [[ "$port" =~ ^[0-9]+$ ]] || usage
    local dir="" pid=""
    if ping_ok "$port" "$pass"; then
        pid=$(server_pid "$port" "$pass")
        dir=$(readlink -f "/proc/$pid/cwd" 2>/dev/null || echo "")
    fi
    if [[ -n "$pid" ]] && owned_dir_ok "$dir"; then
        log "redis already answering on 127.0.0.1:$port (pid $pid), reusing it"
    else
        port_in_use "$port" && die "port 127.0.0.1:$port is in use by a server this script may not reuse (other dir or password)"
        dir=$(make_dir "single-$port")
        log "starting redis on 127.0.0.1:$port in $dir"
        start_node "$port" "$dir" "$pass"
        pid=$(wait_node "$port" "$dir" "$pass")
    fi
    log "redis ready: 127.0.0.1:$port pid $pid"
    printf 'export REDIS_SINGLE_DIR=%q\n' "$dir"
    printf 'export REDIS_SINGLE_PIDS=%q\n' "$pid"
    printf 'export TEST_REDIS_ADDRS=127.0.0.1:%s\n' "$port"
}

cluster_ok_everywhere() { # cluster_ok_everywhere PASS PORTS...
    local pass=$1 p info; shift
    for p in "$@"; do
        info=$(cli "$p" "$pass" cluster info 2>/dev/null | tr -d '\r') || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
        grep -qx "cluster_known_nodes:$#" <<<"$info" || return 1
        # replicas must have finished their initial sync
        info=$(cli "$p" "$pass" info replication 2>/dev/null | tr -d '\r') || return 1
        if grep -qx 'role:slave' <<<"$info"; then
            grep -qx 'master_link_status:up' <<<"$info" || return 1
        fi
    done
}

mode_cluster() {
    local base=${1:-} pass=${2:-}
    [[ "$base" =~ ^[0-9]+$ && -n "$pass" ]] || usage
    local ports=() addrs=() pids=() p i dir pid
    for i in 0 1 2 3 4 5; do ports+=($((base + i))); addrs+=("127.0.0.1:$((base + i))"); done
    local addr_csv
    addr_csv=$(IFS=,; echo "${addrs[*]}")

    dir=""
    if cluster_ok_everywhere "$pass" "${ports[@]}"; then
        for p in "${ports[@]}"; do pids+=("$(server_pid "$p" "$pass")"); done
        dir=$(readlink -f "/proc/${pids[0]}/cwd" 2>/dev/null || echo "")
        dir=${dir%/*}
    fi
    if (( ${#pids[@]} )) && owned_dir_ok "$dir"; then
        log "redis cluster already up on ${addrs[*]}, reusing it"
    else
        pids=()
        for p in "${ports[@]}" ; do
            port_in_use "$p" && die "port 127.0.0.1:$p is in use; stop it first (scripts/start-redis.sh stop DIR|PORT...)"
            port_in_use $((p + 10000)) && die "cluster bus port 127.0.0.1:$((p + 10000)) is in use"
        done
        dir=$(make_dir "cluster-$base")
        log "starting 6 redis cluster nodes on ${addrs[*]} in $dir"
        for p in "${ports[@]}"; do
            start_node "$p" "$dir/$p" "$pass" \
                --cluster-enabled yes \
                --cluster-config-file "$dir/$p/nodes.conf" \
                --cluster-node-timeout 5000 \
                --cluster-announce-ip 127.0.0.1 \
                --repl-diskless-sync-delay 0
        done
        for p in "${ports[@]}"; do pids+=("$(wait_node "$p" "$dir/$p" "$pass")"); done

        log "creating the cluster (3 masters, 3 replicas)"
        if ! REDISCLI_AUTH="$pass" "$REDIS_CLI" --cluster create "${addrs[@]}" \
                --cluster-replicas 1 --cluster-yes </dev/null >"$dir/cluster-create.log" 2>&1; then
            cat "$dir/cluster-create.log" >&2
            die "redis-cli --cluster create failed"
        fi

        log "waiting for cluster_state:ok on every node"
        local ok=0
        for _ in $(seq 1 120); do
            if cluster_ok_everywhere "$pass" "${ports[@]}"; then ok=1; break; fi
            sleep 0.5
        done
        if (( ! ok )); then
            cat "$dir/cluster-create.log" >&2
            for p in "${ports[@]}"; do log "node $p:"; cli "$p" "$pass" cluster info 2>&1 | head -3 >&2 || true; done
            die "cluster did not reach cluster_state:ok within 60 s"
        fi
    fi
    log "redis cluster ready: ${addrs[*]} pids ${pids[*]}"
    printf 'export REDIS_CLUSTER_DIR=%q\n' "$dir"
    printf 'export REDIS_CLUSTER_PIDS=%q\n' "${pids[*]}"
    printf 'export TEST_REDIS_CLUSTER_ADDRS=%s\n' "$addr_csv"
    printf 'export TEST_REDIS_CLUSTER_PASSWORD=%q\n' "$pass"
}

mode_stop() {
    [[ $# -ge 1 ]] || usage
    local pids=() pid f
    if [[ -d "$1" ]]; then
        local dir=$1
        while IFS= read -r f; do
            pid=$(cat "$f" 2>/dev/null || true)
            alive "$pid" && pids+=("$pid")
        done < <(find "$dir" -name redis.pid 2>/dev/null)
        log "stopping redis pids: ${pids[*]:-(none running)}"
        (( ${#pids[@]} )) && kill_and_wait "${pids[@]}"
        if [[ -f "$dir/$MARKER" ]]; then rm -rf "$dir"; log "removed $dir"; fi
    else
        local p
        for p in "$@"; do
            [[ "$p" =~ ^[0-9]+$ ]] || die "not a directory or port: $p"
            pid=$(server_pid "$p" "${REDIS_PASSWORD:-}")
            if [[ -n "$pid" ]]; then pids+=("$pid"); else log "no redis answering on port $p"; fi
        done
        log "stopping redis pids: ${pids[*]:-(none)}"
        (( ${#pids[@]} )) && kill_and_wait "${pids[@]}"
    fi
    return 0
}

mode=${1:-}
shift || true
case "$mode" in
    single) mode_single "$@" ;;
    cluster) mode_cluster "$@" ;;
    stop) mode_stop "$@" ;;
    *) usage ;;
esac
