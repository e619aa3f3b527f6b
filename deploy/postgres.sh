#!/usr/bin/env bash
# A real PostgreSQL 15 server for the Dagster instance (runs, events, schedules, backfills):  make postgres
#
#   installs postgresql-15 from the Debian packages when missing (needs root), creates a cluster in
#   $COMPLIANCE_PG_DIR (default ./.postgres, git-ignored) listening on 127.0.0.1:$COMPLIANCE_PG_PORT (default 5433),
#   a role and database "dagster" whose password comes from DAGSTER_PG_PASSWORD (the environment only: never a file
#   of this repository), and starts it. Idempotent: a second call only (re)starts the server.
#
# Then point the instance at it (README: Production: PostgreSQL instance):
#   export DAGSTER_PG_URL="postgresql+psycopg2://dagster:${DAGSTER_PG_PASSWORD}@127.0.0.1:5433/dagster"
#   make setup      # writes $DAGSTER_HOME/dagster.yaml with the Postgres storage (the URL itself stays in the env)
#
# Stop:  deploy/postgres.sh stop
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DIR=$(realpath -m "${COMPLIANCE_PG_DIR:-$(dirname "$0")/../.postgres}")
PORT=${COMPLIANCE_PG_PORT:-5433}
DB=${COMPLIANCE_PG_DB:-dagster}

as_postgres() {  # PostgreSQL refuses to run as root: the server runs as the `postgres` system user
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-start}" = stop ]; then
    [ -f "$DIR/data/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast stop
    exit 0
fi

if [ -z "${DAGSTER_PG_PASSWORD:-}" ]; then
    echo "DAGSTER_PG_PASSWORD is not set: choose the password of the 'dagster' role and export it first" >&2
    exit 2
fi

if [ ! -x "$PG_BIN/pg_ctl" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "PostgreSQL 15 is not installed ($PG_BIN): sudo apt-get install -y postgresql-15" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
chmod 700 "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
    # local socket: peer/trust for the server's own user only; TCP: passwords (scram) from 127.0.0.1
    as_postgres "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 100
CONF
fi
if ! as_postgres "$PG_BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    as_postgres "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
fi

psql_admin() { as_postgres psql -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
# the password travels on stdin (psql variable), never on a command line visible in `ps`
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'dagster'")" != 1 ]; then
    psql_admin -c "CREATE ROLE dagster LOGIN"
fi
printf '%s\n' "\\set pw '${DAGSTER_PG_PASSWORD//\'/\'\'}'" "ALTER ROLE dagster PASSWORD :'pw';" | psql_admin -f - >/dev/null
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE \"$DB\" OWNER dagster"
fi
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, database $DB, role dagster"
