#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for tests (no systemd, no cluster of the distro).
#
# Usage:
#   scripts/start-postgres.sh [DATADIR] [PORT]
#   scripts/start-postgres.sh stop DATADIR
#
#   DATADIR  data directory (env POSTGRES_DATADIR); default: a fresh
#            `mktemp -d /var/tmp/saga-postgres.XXXXXX`. Socket, pid file and log
#            live inside it.
#   PORT     TCP port on 127.0.0.1 (env POSTGRES_PORT); default 5432.
#
# The server binds 127.0.0.1 only, with a UTF-8 locale (C.UTF-8) so that lower() folds
# every cased letter. Once it answers, the script makes sure the role saga/saga exists
# (LOGIN, CREATEDB: each test creates a database of its own) and owns database `account`.
# As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
#
# stdout carries only shell-evaluable lines, e.g.
#   eval "$(scripts/start-postgres.sh /var/tmp/pg 5433)"
# prints/sets POSTGRES_PID, POSTGRES_DATADIR and TEST_POSTGRES_DSN.
set -euo pipefail

log() { printf '[start-postgres] %s\n' "$*" >&2; }

alive() {
    local pid=$1 state
    [[ -n "$pid" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[[ -n "$BIN" && -x "$BIN/postgres" ]] || { log "no PostgreSQL server found (apt-get install postgresql)"; exit 1; }

if [[ "${1:-}" == stop ]]; then
    dir=${2:?usage: $0 stop DATADIR}
    pid=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null || true)
    if alive "$pid"; then
        log "stopping postgres pid $pid"
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && { log "pid $pid still alive after 30 s, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; }
    else
        log "no running server for $dir"
    fi
    exit 0
fi

DATADIR=${1:-${POSTGRES_DATADIR:-}}
PORT=${2:-${POSTGRES_PORT:-5432}}
[[ "$PORT" =~ ^[0-9]+$ ]] || { log "bad port: $PORT"; exit 2; }
[[ -n "$DATADIR" ]] || DATADIR=$(mktemp -d /var/tmp/saga-postgres.XXXXXX)
mkdir -p "$DATADIR"
DATADIR=$(cd "$DATADIR" && pwd -P)

as_owner() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [[ $(id -u) == 0 ]]; then
    chown postgres: "$DATADIR"
    runuser -u postgres -- test -x "$DATADIR" ||
        { log "the postgres user cannot reach $DATADIR (a parent directory is closed to it)"; exit 1; }
fi
chmod 700 "$DATADIR"

fail() {
    log "FAILED: $*"
    [[ -f "$DATADIR/server.log" ]] && { log "---- last lines of server.log ----"; tail -n 40 "$DATADIR/server.log" >&2 || true; }
    exit 1
}

ready() { as_owner "$BIN/pg_isready" -q -h "$DATADIR" -p "$PORT" >/dev/null 2>&1; }

PID=$(head -n 1 "$DATADIR/postmaster.pid" 2>/dev/null || true)
if alive "$PID" && ready; then
    log "server already running in $DATADIR (pid $PID), reusing it"
else
    if [[ ! -f "$DATADIR/PG_VERSION" ]]; then
        log "initialising data dir $DATADIR"
        as_owner "$BIN/initdb" -D "$DATADIR" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >"$DATADIR.initdb.log" 2>&1 || { tail -n 20 "$DATADIR.initdb.log" >&2; fail "initdb failed"; }
    fi
    log "starting $BIN/postgres on 127.0.0.1:$PORT"
    # Durability traded for speed: a test server (fsync off); enough connections for
    # many test databases with pools of their own.
    # shellcheck disable=SC2086  # POSTGRES_EXTRA_ARGS is split on purpose
    as_owner nohup "$BIN/postgres" -D "$DATADIR" -p "$PORT" -h 127.0.0.1 -k "$DATADIR" \
        -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c shared_buffers=128MB ${POSTGRES_EXTRA_ARGS:-} \
        </dev/null >>"$DATADIR/server.log" 2>&1 &
    for _ in $(seq 1 120); do
        if ready; then break; fi
        sleep 0.5
    done
    ready || fail "server did not answer within 60 s"
    PID=$(head -n 1 "$DATADIR/postmaster.pid")
fi

log "creating role saga and database account"
as_owner psql -q -h "$DATADIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL' >/dev/null || fail "role/database setup failed"
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'saga') THEN
    CREATE ROLE saga LOGIN CREATEDB PASSWORD 'saga';
  END IF;
END $$;
ALTER ROLE saga LOGIN CREATEDB PASSWORD 'saga';
SELECT 'CREATE DATABASE account OWNER saga' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'account')\gexec
SQL

log "PostgreSQL ready: pid $PID, datadir $DATADIR, port $PORT"
printf 'export POSTGRES_PID=%s\n' "$PID"
printf 'export POSTGRES_DATADIR=%q\n' "$DATADIR"
printf 'export TEST_POSTGRES_DSN=postgres://saga:saga@127.0.0.1:%s/account\n' "$PORT"
