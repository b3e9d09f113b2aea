#!/usr/bin/env bash
# Starts a saga-account binary on an empty SQLite database (logs piped to `cat`, as a
# container runtime reads them), runs one `loadgen run` against it with --service-pid (so
# the service's CPU time per request is printed), then stops it.
#
# Usage: scripts/bench-service.sh SERVICE_BIN LOADGEN_BIN [loadgen run options and scenarios]
#   e.g. scripts/bench-service.sh target/release/saga-account target/release/loadgen \
#            --duration 10 --ceilings auth person
# Extra service settings: EXTRA_ENV="LOG_LEVEL=warn JWT_ALG=EdDSA" scripts/bench-service.sh ...
set -euo pipefail
svc=$(realpath "$1"); lg=$(realpath "$2"); shift 2
dir=$(mktemp -d /var/tmp/saga-bench.XXXXXX)
cd "$dir"
# shellcheck disable=SC2086
env ${EXTRA_ENV:-} HTTP_PORT=18080 GRPC_PORT=18000 PROM_PORT=18081 JWT_SECRET=bench-secret \
    JWT_ACCESS_TOKEN_EXPIRE_SECOND=3600 "$svc" 2>&1 | cat > /dev/null &
for _ in $(seq 100); do curl -sf localhost:18080/healthz >/dev/null && break; sleep 0.1; done
# The newest match: an older defunct one (a zombie of an earlier run) would read as idle.
pid=$(pgrep -n -f "^$svc")
"$lg" run --http 127.0.0.1:18080 --grpc 127.0.0.1:18000 --service-pid "$pid" "$@" || true
kill "$pid"; wait 2>/dev/null || true
rm -rf "$dir"
