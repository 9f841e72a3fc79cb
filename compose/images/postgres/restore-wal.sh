#!/bin/bash
# restore_command of the Patroni nodes: dpg-restore-wal %f %p   (PostgreSQL runs it in the data directory)
#
# Every failover asks the archive the same few questions several times within a second: when streaming ends
# each standby asks for the next timeline's history file and for the segment it was reading, and the promoted
# one asks both again while it promotes. Each answer is an archive-get over TLS to the repository host (0.05 s
# idle, 0.15-0.4 s on 2 busy cores), and the gap waits for them. So:
#  - a timeline history file this node already holds is copied from its own pg_wal: a history file never
#    changes once written, and the copy in pg_wal came from that same archive or from the primary's stream;
#  - "not in the archive" is remembered for DPG_RESTORE_MISS_TTL_MS (default 1000; 0 = off) and repeated
#    without asking again. A miss is at most that old: PostgreSQL's own answer is only as fresh as its last
#    poll anyway, and within one second only the leader-lock holder can add a history file or segment
#    (a promotion ends with its own history file, which it writes itself).
# Anything found is always fetched from the archive (pgbackrest archive-get: 0 found, 1 missing, else error).
set -u
f=$1
p=$2
case "$f" in
  *.history)
    if [ -f "pg_wal/$f" ]; then
      exec cp "pg_wal/$f" "$p"
    fi ;;
esac
ttl_ms=${DPG_RESTORE_MISS_TTL_MS:-1000}
misses=${DPG_RESTORE_MISS_DIR:-/dev/shm/dpg-restore-misses}   # tmpfs, new with each container start
now_ms=$(( ${EPOCHREALTIME/./} / 1000 ))   # bash builtins only on the fast path: no process to start
if (( ttl_ms > 0 )) && [[ -f $misses/$f ]] && read -r seen_ms < "$misses/$f" 2>/dev/null \
    && (( now_ms - ${seen_ms:-0} < ttl_ms )); then
  exit 1
fi
pgbackrest --stanza="${DPG_PGBACKREST_STANZA:-dpg}" archive-get "$f" "$p"
rc=$?
if (( rc == 1 && ttl_ms > 0 )); then
  mkdir -p "$misses" && echo "$now_ms" > "$misses/$f.$$" && mv -f "$misses/$f.$$" "$misses/$f"
fi
exit "$rc"
