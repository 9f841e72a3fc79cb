#!/bin/bash
# restore_command of the Patroni nodes: dpg-restore-wal %f %p   (PostgreSQL runs it in the data directory)
#
# Every failover asks the archive the same few questions several times within a second: when streaming ends
# each standby asks for the next timeline's history file and for the segment it was reading, and the promoted
# one asks both again while it promotes. Each answer is an archive-get over TLS to the repository host (0.05 s
# idle, 0.15-0.4 s on 2 busy cores), and the gap waits for them. So:
#  - a timeline history file this node already holds is copied from its own pg_wal: a history file never
#    changes once written, and the copy in pg_wal came from that same archive or from the primary's stream;
#    timeline 1's, which never exists, is "not there" without asking;
#  - "not in the archive" is remembered for DPG_RESTORE_MISS_TTL_MS (default 1000; 0 = off) and repeated
#    without asking again. A miss is at most that old: PostgreSQL's own answer is only as fresh as its last
#    poll anyway, and within one second only the leader-lock holder can add a history file or segment
#    (a promotion ends with its own history file, which it writes itself).
#  - an archive-get is bounded by DPG_RESTORE_TIMEOUT_S (default 5; 0 = unbounded), and a repository that did not
#    answer (timeout or error) is believed down for DPG_RESTORE_DOWN_TTL_MS (default 10000; 0 = off): calls in
#    that window fail at once. Measured on 3 hosts (2026-12-03): with the repository's host crashed together with
#    the leader, each archive-get waited 20 s for the dead host (name lookup / io-timeout), the new leader's
#    promotion made three of them in a row (the one in flight, the last segment, the next timeline's history) and
#    writes resumed 80.8 s after the crash instead of ~23 s. PostgreSQL treats any failure below 126 as "not
#    available" and goes on (streaming, or the promotion); `timeout` exits 124.
# Anything found is always fetched from the archive (pgbackrest archive-get: 0 found, 1 missing, else error).
set -u
f=$1
p=$2
case "$f" in
  00000001.history)
    # Timeline 1 never has a history file: PostgreSQL's own readTimeLineHistory() does not look for one. Only
    # a promotion from timeline 1 asks (writeTimeLineHistory copies the parent's file if it exists), and the
    # archive-get it cost was the first failover after bootstrap's extra 0.2-0.45 s (measured 2026-12-03).
    exit 1 ;;
  *.history)
    if [[ -f pg_wal/$f ]]; then
      # copied with bash builtins, not cp: on the promotion's path, and an exec through fuse-overlayfs on busy
      # cores is 20-70 ms. A history file is text, one newline-terminated line per timeline switch.
      while IFS= read -r line || [[ -n $line ]]; do printf '%s\n' "$line"; done < "pg_wal/$f" > "$p" || exit 2
      exit 0
    fi ;;
esac
ttl_ms=${DPG_RESTORE_MISS_TTL_MS:-1000}
down_ttl_ms=${DPG_RESTORE_DOWN_TTL_MS:-10000}
misses=${DPG_RESTORE_MISS_DIR:-/dev/shm/dpg-restore-misses}   # tmpfs, new with each container start
now_ms=$(( ${EPOCHREALTIME/./} / 1000 ))   # bash builtins only on the fast path: no process to start
recent() {   # recent NAME TTL_MS: was NAME remembered less than TTL_MS ago (TTL 0 = never)?
  local seen_ms
  (( $2 > 0 )) && [[ -f $misses/$1 ]] && read -r seen_ms < "$misses/$1" 2>/dev/null && (( now_ms - ${seen_ms:-0} < $2 ))
}
remember() {   # remember NAME: now, written atomically (a concurrent call reads the old time or the new, never half)
  mkdir -p "$misses" && echo "$now_ms" > "$misses/$1.$$" && mv -f "$misses/$1.$$" "$misses/$1"
}
recent "$f" "$ttl_ms" && exit 1
recent .repository-down "$down_ttl_ms" && exit 3   # the repository did not answer a moment ago: "not available"
timeout "${DPG_RESTORE_TIMEOUT_S:-5}" pgbackrest --stanza="${DPG_PGBACKREST_STANZA:-dpg}" archive-get "$f" "$p"
rc=$?
if (( rc > 1 )); then
  (( down_ttl_ms > 0 )) && remember .repository-down
else
  rm -f "$misses/.repository-down"
  (( rc == 1 && ttl_ms > 0 )) && remember "$f"
fi
exit "$rc"
