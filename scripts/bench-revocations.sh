#!/usr/bin/env bash
# The revocation set: the idle memory of a replica holding COUNT revoked sessions, and
# `Auth` with the revocation check against `Auth` without it, in one run.
#
# 1. starts the service on a fresh SQLite database and reads its idle RSS, stops it;
# 2. writes COUNT revocations into its feed (`loadgen seed-revocations`, stamped a minute
#    ago, so that only the start-up load reads them), starts it again, waits until the set
#    holds them (`account_revocation_set_size`), reads its idle RSS;
# 3. runs `loadgen ... auth-revocation` against it.
#
# Usage: scripts/bench-revocations.sh SERVICE_BIN LOADGEN_BIN [COUNT] [loadgen run options]
set -euo pipefail
svc=$(realpath "$1"); lg=$(realpath "$2"); count=${3:-100000}
shift $(( $# < 3 ? $# : 3 ))
dir=$(mktemp -d /var/tmp/saga-revocations.XXXXXX)
cd "$dir"
start() {
    DATA_DIR=$dir/data HTTP_PORT=18080 GRPC_PORT=18000 PROM_PORT=18081 JWT_SECRET=bench-secret \
        JWT_ACCESS_TOKEN_EXPIRE_SECOND=3600 "$svc" 2>&1 | cat > /dev/null &
    for _ in $(seq 100); do curl -sf localhost:18080/healthz >/dev/null && break; sleep 0.1; done
    pid=$(pgrep -f "^$svc" | head -1)
}
start
sleep 2
empty=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
kill "$pid"; wait 2>/dev/null || true
"$lg" seed-revocations --dsn "sqlite://$dir/data/account.db" --count "$count" --age 60
start
size=$(curl -s localhost:18081/metrics | awk '/^account_revocation_set_size /{print $2}')
sleep 2
full=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
echo "idle RSS: ${empty} kB with no revocation, ${full} kB with ${size} revoked sessions:" \
     "+$(( full - empty )) kB, $(( (full - empty) * 1024 / count )) bytes per revoked session"
"$lg" run --http 127.0.0.1:18080 --grpc 127.0.0.1:18000 --service-pid "$pid" \
    --jwt-secret bench-secret "$@" auth-revocation || true
kill "$pid"; wait 2>/dev/null || true
rm -rf "$dir"
