#!/usr/bin/env bash
# The same load tool run against one release binary on each backend in turn: SQLite (a
# file in a fresh directory), MariaDB and PostgreSQL (a fresh database on each server),
# so that the figures of BENCHMARKS.md's backend table come from one run.
#
# Usage: scripts/bench-backends.sh SERVICE_BIN LOADGEN_BIN MYSQL_URL POSTGRES_URL [loadgen run options and scenarios]
#   e.g. scripts/bench-backends.sh target/release/saga-account target/release/loadgen \
#          mysql://saga:saga@127.0.0.1:3307/account postgres://saga:saga@127.0.0.1:5433/account \
#          --duration 10 signup login refresh person sessions
# Needs the mariadb and psql clients (to create and drop the databases).
set -euo pipefail
svc=$1; lg=$2; mysql_url=$3; pg_url=$4; shift 4
here=$(dirname "${BASH_SOURCE[0]}")
name="bench_$(date +%s)"

echo "=== SQLite"
"$here/bench-service.sh" "$svc" "$lg" "$@"

echo "=== MariaDB ($mysql_url)"
my_host=$(sed -E 's#^mysql://([^:]+):([^@]+)@([^:/]+):?([0-9]*)/.*#\3 \4 \1 \2#' <<<"$mysql_url")
read -r host port user pass <<<"$my_host"
mariadb --no-defaults -h "$host" -P "${port:-3306}" -u "$user" -p"$pass" -e "CREATE DATABASE $name CHARACTER SET utf8mb4"
EXTRA_ENV="${EXTRA_ENV:-} DB_DSN=${mysql_url%/*}/$name" "$here/bench-service.sh" "$svc" "$lg" "$@"
mariadb --no-defaults -h "$host" -P "${port:-3306}" -u "$user" -p"$pass" -e "DROP DATABASE $name"

echo "=== PostgreSQL ($pg_url)"
psql -q "$pg_url" -c "CREATE DATABASE $name"
EXTRA_ENV="${EXTRA_ENV:-} DB_DSN=${pg_url%/*}/$name" "$here/bench-service.sh" "$svc" "$lg" "$@"
psql -q "$pg_url" -c "DROP DATABASE $name WITH (FORCE)"
