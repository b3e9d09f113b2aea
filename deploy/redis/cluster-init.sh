#!/bin/sh
# Forms the Redis Cluster of docker-compose.yml (3 masters, 3 replicas) once,
# then waits until every node reports cluster_state:ok. Idempotent: on a later
# `docker compose up` (nodes kept their nodes.conf in their volumes) it only
# waits for the cluster to be ok, so the services depending on this job with
# `condition: service_completed_successfully` start again.
#
# Environment:
#   REDIS_CLUSTER_NODES  space-separated ip:port of the six nodes (required);
#                        IP addresses, since `redis-cli --cluster create`
#                        wants addresses and the nodes announce their own
#   REDIS_PASSWORD       requirepass/masterauth of the nodes (required)
#   CLUSTER_WAIT_SECONDS how long to wait for cluster_state:ok (default 60)
set -eu

: "${REDIS_CLUSTER_NODES:?set REDIS_CLUSTER_NODES}"
: "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
WAIT=${CLUSTER_WAIT_SECONDS:-60}

log() { echo "[redis-cluster-init] $*"; }

# cli HOST:PORT ARGS...
cli() {
    node=$1; shift
    REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h "${node%:*}" -p "${node##*:}" "$@"
}

# info_field HOST:PORT FIELD -> value of FIELD in CLUSTER INFO (empty if unreachable)
info_field() {
    cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

all_ok() {
    for n in $REDIS_CLUSTER_NODES; do
        [ "$(info_field "$n" cluster_state)" = ok ] || return 1
        [ "$(info_field "$n" cluster_known_nodes)" = "$count" ] || return 1
    done
}

count=0
for n in $REDIS_CLUSTER_NODES; do
    count=$((count + 1))
    i=0
    until [ "$(cli "$n" ping 2>/dev/null)" = PONG ]; do
        i=$((i + 1))
        [ "$i" -le "$WAIT" ] || { log "node $n does not answer PING"; exit 1; }
        sleep 1
    done
done
first=${REDIS_CLUSTER_NODES%% *}

if all_ok; then
    log "cluster already formed and ok"
    exit 0
fi

# Create only while no node holds a slot or knows another node: a cluster
# that was formed and is only converging again after a restart is left alone.
formed=0
for n in $REDIS_CLUSTER_NODES; do
    known=$(info_field "$n" cluster_known_nodes)
    assigned=$(info_field "$n" cluster_slots_assigned)
    if [ "${known:-1}" != 1 ] || [ "${assigned:-0}" != 0 ]; then formed=1; fi
done

if [ "$formed" = 0 ]; then
    log "creating the cluster on: $REDIS_CLUSTER_NODES"
    # shellcheck disable=SC2086 # one argument per node
    redis-cli --cluster create $REDIS_CLUSTER_NODES \
        --cluster-replicas 1 -a "$REDIS_PASSWORD" --no-auth-warning --cluster-yes
else
    log "cluster already formed (seen from $first), waiting for it to converge"
fi

i=0
until all_ok; do
    i=$((i + 1))
    if [ "$i" -gt "$WAIT" ]; then
        log "cluster not ok after ${WAIT}s:"
        for n in $REDIS_CLUSTER_NODES; do
            echo "  $n state=$(info_field "$n" cluster_state) known=$(info_field "$n" cluster_known_nodes)"
        done
        exit 1
    fi
    sleep 1
done
log "cluster ok: $count nodes"
