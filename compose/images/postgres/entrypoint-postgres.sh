#!/bin/sh
# Plain PostgreSQL (the vector DB): initdb on first start, then exec postgres in the foreground.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp); printf '%s\n' "${DPG_SUPERUSER_PASSWORD:-postgres_pw}" > "$pwfile"
  initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
         --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE ROLE ${DPG_DB_USER:-dpg_cluster} LOGIN PASSWORD '${DPG_DB_PASSWORD:-dpg_cluster_pw}';
CREATE DATABASE distributed_postgres_cluster OWNER ${DPG_DB_USER:-dpg_cluster};
\c distributed_postgres_cluster
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS amcheck;
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c shared_buffers="${DPG_SHARED_BUFFERS:-64MB}" \
     -c max_connections=60 -c maintenance_work_mem=128MB -c password_encryption=scram-sha-256
