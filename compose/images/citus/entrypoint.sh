#!/bin/sh
# Citus node with the official image's contract (what compose/citus.yml relies on): POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB; initdb on first start; citus preloaded and created in POSTGRES_DB;
# listens on *:5432 with scram-sha-256 for the network; the command (`postgres -c ...`) is run as given,
# so `command: [postgres, -c, name=value]` in compose works here exactly as with citusdata/citus.
set -eu
if [ "${1:-}" = "" ]; then set -- postgres; fi
if [ "$1" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp); printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD required}" > "$pwfile"
  initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --auth-local=trust \
         --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  { echo "shared_preload_libraries = 'citus'"; echo "listen_addresses = '*'"; } >> "$PGDATA/postgresql.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  if [ "$db" != "postgres" ]; then
    psql -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-postgres}" -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
  fi
  psql -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-postgres}" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$@"
