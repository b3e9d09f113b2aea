#!/usr/bin/env bash
# Runs schemathesis (every check) against a saga-account binary on a fresh SQLite database.
#
# Usage: scripts/schemathesis.sh BINARY [extra schemathesis run options]
# Env:   ST_VENV  virtualenv to install schemathesis into (default /var/tmp/saga-st-venv)
#        PYTHON   the Python (3.11+) that makes it (default python3)
# Exits non-zero on any failure. The service's limits that would refuse the test's own
# logins (lockout after failures, mail limits) are widened; nothing else is changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$(realpath "$1"); shift
venv=${ST_VENV:-/var/tmp/saga-st-venv}
if [[ ! -x "$venv/bin/st" ]] || ! "$venv/bin/st" --version 2>/dev/null | grep -q '4.32.5'; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi
dir=$(mktemp -d /var/tmp/saga-st.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA_DIR="$dir/data" HTTP_PORT=$port GRPC_PORT=0 PROM_PORT=0 BIND_ADDRESS=127.0.0.1 \
    LOG_LEVEL=warn LOGIN_MAX_FAILURES=0 MAIL_MAX_PER_EMAIL_PER_HOUR=0 MAIL_MAX_PER_IP_PER_HOUR=0 \
    "$bin" >"$dir/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
rc=0
"$venv/bin/st" --config-file ci/schemathesis/schemathesis.toml run \
    --url "http://127.0.0.1:$port" "http://127.0.0.1:$port/api/account/openapi.json" "$@" || rc=$?
if ! kill -0 $pid 2>/dev/null; then
    echo "the service died during the run:"; tail -50 "$dir/service.log"; rc=1
fi
echo "schemathesis: exit $rc"
exit $rc
