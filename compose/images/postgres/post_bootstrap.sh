#!/bin/sh
# Runs once on the first primary (Patroni post_bootstrap): roles, the application database, the probe schema.
set -eu
# a cluster bootstrapped from a backup (DPG_BOOTSTRAP_METHOD=pgbackrest) already has all of it
if [ "$(psql -d "$1" -Atc "SELECT 1 FROM pg_database WHERE datname = 'distributed_postgres_cluster'")" = 1 ]; then
  exit 0
fi
psql -v ON_ERROR_STOP=1 -d "$1" <<SQL
CREATE ROLE ${DPG_DB_USER:-dpg_cluster} LOGIN PASSWORD '${DPG_DB_PASSWORD:-dpg_cluster_pw}';
CREATE ROLE ${DPG_RO_USER:-readonly_user} LOGIN PASSWORD '${DPG_RO_PASSWORD:-readonly_pw}';
CREATE DATABASE distributed_postgres_cluster OWNER ${DPG_DB_USER:-dpg_cluster};
\\c distributed_postgres_cluster
CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS vector;
SET ROLE ${DPG_DB_USER:-dpg_cluster};
CREATE SCHEMA IF NOT EXISTS probe;
-- no unique constraint on purpose: the checker must be able to SEE duplicates
CREATE TABLE IF NOT EXISTS probe.writes (
  value      bigint      NOT NULL,
  probe      text        NOT NULL,
  run_id     text        NOT NULL,
  server     text        NOT NULL DEFAULT host(inet_server_addr()) || ':' || inet_server_port(),
  timeline   int         NOT NULL DEFAULT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int,
  committed  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS writes_run ON probe.writes (run_id, value);
-- written every second by the DR drills' heartbeat (RPO = last acknowledged beat - beat found after restore)
CREATE TABLE IF NOT EXISTS probe.heartbeat (id int PRIMARY KEY, beat timestamptz NOT NULL);
RESET ROLE;
GRANT USAGE ON SCHEMA probe TO ${DPG_RO_USER:-readonly_user};
GRANT SELECT ON ALL TABLES IN SCHEMA probe TO ${DPG_RO_USER:-readonly_user};
ALTER DEFAULT PRIVILEGES FOR ROLE ${DPG_DB_USER:-dpg_cluster} IN SCHEMA probe GRANT SELECT ON TABLES TO ${DPG_RO_USER:-readonly_user};
ALTER DEFAULT PRIVILEGES FOR ROLE ${DPG_DB_USER:-dpg_cluster} GRANT SELECT ON TABLES TO ${DPG_RO_USER:-readonly_user};
ALTER ROLE ${DPG_RO_USER:-readonly_user} SET default_transaction_read_only = on;
SQL
# Archive from the first segment on: wait (bounded, ~30 s) until the repository host has created the stanza;
# `check` then switches WAL and waits for it to be archived, which also pushes the segments that failed before the
# stanza existed. Without it they stay pending until the archiver's 60 s retry and delay the first demotion
# (a fast shutdown waits for the archiver's final pass): measured +1.7 s on the first switchover.
if [ -n "${DPG_PGBACKREST_REPO_HOST:-}" ]; then
  i=0
  until pgbackrest --stanza="${DPG_PGBACKREST_STANZA:-dpg}" check >/dev/null 2>&1 || [ $i -ge 15 ]; do
    i=$((i + 1)); sleep 2
  done
fi
