#!/bin/sh
# The pgBackRest repository host: TLS server in the foreground; in the background, create the stanza as soon as
# the Patroni cluster has a primary (idempotent: an existing stanza of the same cluster is left as it is).
set -eu
dpg-pgbackrest-conf repo
stanza=${DPG_PGBACKREST_STANZA:-dpg}
(
  i=0
  while [ $i -lt 300 ]; do   # bounded: 300 attempts x 2 s
    if pgbackrest --stanza="$stanza" stanza-create >/tmp/stanza-create.log 2>&1; then
      echo "dpg-pgbackrest-repo: stanza $stanza ready"; exit 0
    fi
    i=$((i + 1)); sleep 2
  done
  echo "dpg-pgbackrest-repo: stanza $stanza NOT created:"; tail -3 /tmp/stanza-create.log
) &
exec pgbackrest server
