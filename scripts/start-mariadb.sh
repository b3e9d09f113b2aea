#!/usr/bin/env bash
# Start a throwaway MariaDB server for tests (no systemd, no system config).
#
# Usage:
#   scripts/start-mariadb.sh [DATADIR] [PORT]
#   scripts/start-mariadb.sh stop DATADIR
#
#   DATADIR  data directory (env MARIADB_DATADIR); default: a fresh
#            `mktemp -d /var/tmp/saga-mariadb.XXXXXX`. Socket, pid file and
#            error log live inside it.
#   PORT     TCP port on 127.0.0.1 (env MARIADB_PORT); default 3306.
#
# The server binds 127.0.0.1 only. Once it answers, the script makes sure the
# user saga/saga exists for 'saga'@'127.0.0.1' and 'saga'@'localhost' with
# ALL PRIVILEGES ON *.* WITH GRANT OPTION, and that database `account` exists.
#
# stdout carries only shell-evaluable lines, e.g.
#   eval "$(scripts/start-mariadb.sh /var/tmp/db 3307)"
# prints/sets MARIADB_PID, MARIADB_DATADIR, MARIADB_SOCKET and TEST_MYSQL_DSN.
# Progress messages go to stderr. Re-running against a DATADIR whose server is
# still up just re-applies the user/database setup.
set -euo pipefail

log() { printf '[start-mariadb] %s\n' "$*" >&2; }

# True if PID is a live (non-zombie) process.
alive() {
    local pid=$1 state
    [[ -n "$pid" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

find_bin() {
    local b
    for b in "$@"; do
        if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
        if [[ -x "/usr/sbin/$b" ]]; then echo "/usr/sbin/$b"; return 0; fi
    done
    log "none of these binaries found: $*"
    return 1
}

if [[ "${1:-}" == stop ]]; then
    dir=${2:?usage: $0 stop DATADIR}
    pid=$(cat "$dir/mysqld.pid" 2>/dev/null || true)
    if alive "$pid"; then
        log "stopping mariadbd pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && { log "pid $pid still alive after 30 s, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; }
    else
        log "no running server for $dir"
    fi
    exit 0
fi

DATADIR=${1:-${MARIADB_DATADIR:-}}
PORT=${2:-${MARIADB_PORT:-3306}}
[[ "$PORT" =~ ^[0-9]+$ ]] || { log "bad port: $PORT"; exit 2; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z "$DATADIR" ]]; then
    # Fresh data dir: nothing of ours can be on the port yet.
    if port_in_use "$PORT"; then
        log "FAILED: port 127.0.0.1:$PORT is already in use by another process"; exit 1
    fi
    DATADIR=$(mktemp -d /var/tmp/saga-mariadb.XXXXXX)
fi
mkdir -p "$DATADIR"
DATADIR=$(cd "$DATADIR" && pwd -P)
SOCK="$DATADIR/mysqld.sock"
PIDFILE="$DATADIR/mysqld.pid"
ERRLOG="$DATADIR/error.log"
if (( ${#SOCK} > 100 )); then
    log "socket path too long (${#SOCK} chars): $SOCK"; exit 2
fi

MARIADBD=$(find_bin mariadbd mysqld)
INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db)
ADMIN=$(find_bin mariadb-admin mysqladmin)
CLIENT=$(find_bin mariadb mysql)

# mariadbd refuses to run as root unless told to; as non-root it runs as the
# invoking user anyway.
RUN_USER=$(id -un)

fail() {
    log "FAILED: $*"
    if [[ -f "$ERRLOG" ]]; then
        log "---- last lines of $ERRLOG ----"
        tail -n 60 "$ERRLOG" >&2 || true
    fi
    [[ -f "$DATADIR/install-db.log" ]] && { log "---- last lines of install-db.log ----"; tail -n 30 "$DATADIR/install-db.log" >&2 || true; }
    exit 1
}

# Client as the superuser over the private unix socket (never reads /etc/mysql).
root_ping() { "$ADMIN" --no-defaults --protocol=socket --socket="$SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

PID=""
existing=$(cat "$PIDFILE" 2>/dev/null || true)
if alive "$existing" && root_ping; then
    PID=$existing
    log "server already running in $DATADIR (pid $PID), reusing it"
else
    if port_in_use "$PORT"; then
        fail "port 127.0.0.1:$PORT is already in use by another process"
    fi

    if [[ ! -d "$DATADIR/mysql" ]]; then
        log "initialising data dir $DATADIR"
        "$INSTALL_DB" --no-defaults \
            --datadir="$DATADIR" \
            --user="$RUN_USER" \
            --auth-root-authentication-method=normal \
            --skip-test-db \
            --skip-name-resolve \
            >"$DATADIR/install-db.log" 2>&1 \
            || fail "mariadb-install-db failed"
    fi

    log "starting $MARIADBD on 127.0.0.1:$PORT"
    # --no-defaults must come first: ignore /etc/mysql so the distro config
    # (socket/pid in /run/mysqld, port 3306, ...) cannot interfere.
    # shellcheck disable=SC2086  # MARIADB_EXTRA_ARGS is split on purpose
    nohup "$MARIADBD" --no-defaults \
        --user="$RUN_USER" \
        --datadir="$DATADIR" \
        --socket="$SOCK" \
        --pid-file="$PIDFILE" \
        --log-error="$ERRLOG" \
        --port="$PORT" \
        --bind-address=127.0.0.1 \
        --skip-name-resolve \
        --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_general_ci \
        --max-connections=1000 \
        --innodb-flush-log-at-trx-commit=2 \
        --innodb-doublewrite=0 \
        ${MARIADB_EXTRA_ARGS:-} \
        </dev/null >>"$DATADIR/stdout.log" 2>&1 &
    PID=$!

    log "waiting for the server (pid $PID) to accept connections"
    ok=0
    for _ in $(seq 1 120); do
        alive "$PID" || fail "mariadbd (pid $PID) exited during startup"
        if root_ping; then ok=1; break; fi
        sleep 0.5
    done
    (( ok )) || { kill -TERM "$PID" 2>/dev/null || true; fail "server did not answer ping within 60 s"; }
fi

log "creating user saga and database account"
"$CLIENT" --no-defaults --protocol=socket --socket="$SOCK" -uroot <<'SQL' || fail "user/database setup failed"
CREATE USER IF NOT EXISTS 'saga'@'127.0.0.1' IDENTIFIED BY 'saga';
CREATE USER IF NOT EXISTS 'saga'@'localhost' IDENTIFIED BY 'saga';
ALTER USER 'saga'@'127.0.0.1' IDENTIFIED BY 'saga';
ALTER USER 'saga'@'localhost' IDENTIFIED BY 'saga';
GRANT ALL PRIVILEGES ON *.* TO 'saga'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'saga'@'localhost' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS `account` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
FLUSH PRIVILEGES;
SQL

# Sanity check over TCP with the new credentials.
"$CLIENT" --no-defaults --protocol=tcp -h127.0.0.1 -P"$PORT" -usaga -psaga account -e 'SELECT 1' >/dev/null \
    || fail "cannot connect as saga over TCP 127.0.0.1:$PORT"

log "MariaDB ready: pid $PID, datadir $DATADIR, port $PORT"
printf 'export MARIADB_PID=%s\n' "$PID"
printf 'export MARIADB_DATADIR=%q\n' "$DATADIR"
printf 'export MARIADB_SOCKET=%q\n' "$SOCK"
printf 'export TEST_MYSQL_DSN=mysql://saga:saga@127.0.0.1:%s/account\n' "$PORT"
