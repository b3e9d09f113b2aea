#!/usr/bin/env bash
# The revocation set: memory of 100,000 revoked sessions, and `Auth` with the revocation
# check against `Auth` without it, in one run.
#
# Starts the service on a fresh SQLite database, writes COUNT revocations into its feed
# (`loadgen seed-revocations`), waits until its poll has loaded them (the set's size is on
# /metrics), prints resident memory before and after, then runs `loadgen ... auth-revocation`.
#
# Usage: scripts/bench-revocations.sh SERVICE_BIN LOADGEN_BIN [COUNT] [loadgen run options]
set -euo pipefail
svc=$(realpath "$1"); lg=$(realpath "$2"); count=${3:-100000}; shift 3 || shift $#
dir=$(mktemp -d /var/tmp/saga-revocations.XXXXXX)
cd "$dir"
DATA_DIR=$dir/data HTTP_PORT=18080 GRPC_PORT=18000 PROM_PORT=18081 JWT_SECRET=bench-secret \
    JWT_ACCESS_TOKEN_EXPIRE_SECOND=3600 "$svc" 2>&1 | cat > /dev/null &
for _ in $(seq 100); do curl -sf localhost:18080/healthz >/dev/null && break; sleep 0.1; done
pid=$(pgrep -f "^$svc" | head -1)
sleep 1
before=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
"$lg" seed-revocations --dsn "sqlite://$dir/data/account.db" --count "$count"
for _ in $(seq 300); do
    size=$(curl -s localhost:18081/metrics | awk '/^account_revocation_set_size /{print $2}')
    [[ "${size:-0}" -ge "$count" ]] && break
    sleep 0.1
done
# Past the feed's 10 s look-back, polls no longer read them again: what is left is the set.
sleep 12
after=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
echo "revocation set: ${size} sessions; RSS ${before} kB before, ${after} kB after:" \
     "+$(( after - before )) kB, $(( (after - before) * 1024 / count )) bytes per revoked session"
"$lg" run --http 127.0.0.1:18080 --grpc 127.0.0.1:18000 --service-pid "$pid" \
    --jwt-secret bench-secret "$@" auth-revocation || true
kill "$pid"; wait 2>/dev/null || true
rm -rf "$dir"
