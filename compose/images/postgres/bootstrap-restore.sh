#!/bin/sh
# Patroni custom bootstrap (DPG_BOOTSTRAP_METHOD=pgbackrest): restore the newest backup of the stanza into the
# empty data directory. Patroni then replays the archive to its end (recovery_conf in the generated
# patroni.yml) and promotes: the cluster keeps its system identifier and every archived transaction.
set -eu
mkdir -p "$PGDATA" && chmod 0700 "$PGDATA"
exec pgbackrest --stanza="${DPG_PGBACKREST_STANZA:-dpg}" --pg1-path="$PGDATA" --delta restore
