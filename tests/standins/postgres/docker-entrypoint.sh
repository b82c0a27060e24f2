#!/bin/bash
# The official postgres image's start-up, in short: as root, own PGDATA and re-run as
# postgres; on an empty PGDATA, initdb with POSTGRES_USER and the password, create
# POSTGRES_DB and run /docker-entrypoint-initdb.d; then exec the server as PID 1.
set -euo pipefail

# `docker run IMAGE -c name=value` passes server options, as with the official image.
case "${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" != postgres ]; then exec "$@"; fi

# Read as root: a secret file may be readable by root only. The file wins.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    unset POSTGRES_PASSWORD_FILE
fi
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-}
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "$(id -u)" = 0 ]; then
    # A new volume (or a custom PGDATA) is root's; the server refuses a folder it does
    # not own with mode 700.
    mkdir -p "$PGDATA"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres {} +
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2> /dev/null || :

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ]; then
        echo "error: database is uninitialized and no superuser password is set: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
        exit 1
    fi
    # POSTGRES_INITDB_ARGS is split on spaces, as in the official image.
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-} > /dev/null
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"

    # A private server, on the socket only, to create the database and run init scripts.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start > /dev/null
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db";' > /dev/null
    fi
    psql+=(--dbname "$POSTGRES_DB")
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) echo "running $f"; "${psql[@]}" -f "$f" ;;
            *.sh) echo "running $f"
                  if [ -x "$f" ]; then "$f"; else set +u; . "$f"; set -u; fi ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    echo "PostgreSQL init process complete; ready for start up."
fi

# The server keeps no password in its environment; exec makes it PID 1, so it gets
# Docker's stop signal directly.
unset POSTGRES_PASSWORD
exec "$@"
