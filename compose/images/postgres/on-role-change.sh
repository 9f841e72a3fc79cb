#!/bin/sh
# Patroni callback (on_role_change <action> <role> <scope>), set only while WAL archiving is on.
# On promotion: close the current WAL segment (pg_switch_wal). Why: with archive_timeout, a deposed leader
# that was frozen or cut off often switched to the next segment on its own; as a standby of the new leader
# its walreceiver then waits for the new leader's flush position to reach that segment, and PostgreSQL 17.12
# does not act on the fast shutdown Patroni sends before pg_rewind until it does. Under light load that is
# the next archive_timeout: measured 30 s of the 63 s a frozen leader needed to rejoin.
# Bounded: at most 20 tries 0.5 s apart while the promotion finishes; never fails the callback.
case "$2" in primary|master) ;; *) exit 0 ;; esac
i=0
while [ $i -lt 20 ]; do
    if psql -h /var/run/postgresql -U postgres -d postgres -Atqc \
        "SELECT pg_switch_wal() WHERE NOT pg_is_in_recovery()" 2>/dev/null | grep -q .; then
        exit 0
    fi
    i=$((i + 1))
    sleep 0.5
done
echo "dpg-on-role-change: no WAL switch after promotion (still in recovery after 10 s)" >&2
exit 0
