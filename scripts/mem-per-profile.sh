#!/usr/bin/env bash
# Memory of the in-process cache: seeds 100,000 customers into a fresh SQLite database,
# starts the service on it, reads every profile once (each read fills the cache), and
# prints resident memory before and after and the growth per cached profile.
#
# Usage: scripts/mem-per-profile.sh SERVICE_BIN LOADGEN_BIN
set -euo pipefail
svc=$(realpath "$1"); lg=$(realpath "$2")
dir=$(mktemp -d /var/tmp/saga-mem.XXXXXX)
cd "$dir"
"$lg" seed --dsn "sqlite://$dir/data/account.db" --customers 100000 >/dev/null
DATA_DIR=$dir/data HTTP_PORT=18080 GRPC_PORT=18000 PROM_PORT=18081 JWT_SECRET=bench-secret \
    "$svc" 2>&1 | cat > /dev/null &
for _ in $(seq 100); do curl -sf localhost:18080/healthz >/dev/null && break; sleep 0.1; done
pid=$(pgrep -f "^$svc" | head -1)
sleep 1
before=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
"$lg" run --http 127.0.0.1:18080 --grpc 127.0.0.1:18000 --seeded 100000 \
    --dsn "sqlite://$dir/data/account.db" --jwt-secret bench-secret \
    --requests 100000 --duration 120 --concurrency 8 person | grep -E '^(scenario|person)'
sleep 1
after=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
echo "RSS idle ${before} kB, after 100,000 profiles ${after} kB:" \
     "+$(( after - before )) kB, $(( (after - before) * 1024 / 100000 )) bytes per profile"
kill "$pid"; wait 2>/dev/null || true
rm -rf "$dir"
