#!/usr/bin/env python3
"""Write /etc/patroni/patroni.yml from DPG_* environment variables, then run Patroni.

Timings are env-driven so suites can measure the same cluster with other settings; Patroni's own limits
(ttl >= 20, loop_wait >= 1, retry_timeout >= 3, loop_wait + 2*retry_timeout <= ttl) are checked here so a
bad value fails at start with one clear line instead of a silently clamped setting.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

env = os.environ.get


def number(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        sys.exit(f"dpg-patroni: {name}={raw!r} is not an integer")


def flag(name: str, default: bool) -> bool:
    return env(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


name = env("PATRONI_NAME") or sys.exit("dpg-patroni: PATRONI_NAME is required")
ttl, loop_wait, retry_timeout = number("DPG_TTL", 20), number("DPG_LOOP_WAIT", 1), number("DPG_RETRY_TIMEOUT", 3)
if ttl < 20 or loop_wait < 1 or retry_timeout < 3 or loop_wait + 2 * retry_timeout > ttl:
    sys.exit(
        f"dpg-patroni: invalid timings ttl={ttl} loop_wait={loop_wait} retry_timeout={retry_timeout}: "
        "need ttl>=20, loop_wait>=1, retry_timeout>=3, loop_wait+2*retry_timeout<=ttl"
    )

wal_segsize_mb = number("DPG_WAL_SEGSIZE_MB", 1)
if wal_segsize_mb < 1 or wal_segsize_mb > 1024 or wal_segsize_mb & (wal_segsize_mb - 1):
    sys.exit(
        f"dpg-patroni: DPG_WAL_SEGSIZE_MB={wal_segsize_mb}: need a power of 2 from 1 to 1024 (initdb --wal-segsize)"
    )

superuser_pw = env("DPG_SUPERUSER_PASSWORD", "postgres_pw")
repl_pw = env("DPG_REPLICATION_PASSWORD", "replicator_pw")
data_dir = env("PGDATA", "/data/pgdata")
# pgBackRest: archive to the repository host and clone replicas from its backups (empty = no backups at all)
repo_host = env("DPG_PGBACKREST_REPO_HOST", "")
stanza = env("DPG_PGBACKREST_STANZA", "dpg")
bootstrap_method = env("DPG_BOOTSTRAP_METHOD", "initdb")
if bootstrap_method not in ("initdb", "pgbackrest"):
    sys.exit(f"dpg-patroni: DPG_BOOTSTRAP_METHOD={bootstrap_method!r}: expected initdb or pgbackrest")
if bootstrap_method == "pgbackrest" and not repo_host:
    sys.exit("dpg-patroni: DPG_BOOTSTRAP_METHOD=pgbackrest needs DPG_PGBACKREST_REPO_HOST")

config = {
    "scope": env("DPG_SCOPE", "dpg"),
    "namespace": "/service/",
    "name": name,
    "log": {"level": env("DPG_PATRONI_LOG_LEVEL", "INFO")},
    # request_queue_size: Patroni stops serving its REST API first when it shuts down, but its listening socket
    # lives until the process exits. HAProxy's checks filled the default backlog of 5 within a fraction of a
    # second, so a candidate's status probe of the stopping leader had its SYN dropped and waited for the 1 s
    # SYN retransmit. With room in the backlog the probe is queued and reset the moment the old Patroni exits.
    "restapi": {"listen": "0.0.0.0:8008", "connect_address": f"{name}:8008", "request_queue_size": 256},
    "etcd3": {"hosts": env("DPG_ETCD_HOSTS", "etcd-1:2379,etcd-2:2379,etcd-3:2379").split(",")},
    "bootstrap": {
        "dcs": {
            "ttl": ttl,
            "loop_wait": loop_wait,
            "retry_timeout": retry_timeout,
            "maximum_lag_on_failover": number("DPG_MAXIMUM_LAG_ON_FAILOVER", 1048576),
            "primary_start_timeout": number("DPG_PRIMARY_START_TIMEOUT", 0),
            "synchronous_mode": flag("DPG_SYNCHRONOUS_MODE", False),
            "synchronous_mode_strict": flag("DPG_SYNCHRONOUS_MODE_STRICT", False),
            "failsafe_mode": flag("DPG_FAILSAFE_MODE", False),
            "postgresql": {
                "use_pg_rewind": True,
                "use_slots": True,
                "parameters": {
                    "max_connections": 120,
                    "shared_buffers": env("DPG_SHARED_BUFFERS", "64MB"),
                    "work_mem": "4MB",
                    "maintenance_work_mem": "32MB",
                    "wal_level": "replica",
                    "hot_standby": "on",
                    "wal_log_hints": "on",
                    "max_wal_senders": 10,
                    "max_replication_slots": 10,
                    "wal_keep_size": "128MB",
                    "max_wal_size": "256MB",
                    "password_encryption": "scram-sha-256",
                    "shared_preload_libraries": "pg_stat_statements",
                    "track_commit_timestamp": "on",
                    "wal_receiver_status_interval": "1s",
                    "hot_standby_feedback": "on",
                },
            },
        },
        # 1 MB WAL segments instead of 16 MB: a promotion writes the new timeline's first segment in full and
        # fsyncs it before it accepts writes (16 MB: 0.2 s seen between "selected new timeline" and the next
        # step), and a graceful demote waits for the archiver to push the segment its shutdown closes.
        "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums", {"wal-segsize": str(wal_segsize_mb)}],
        "post_bootstrap": "/usr/local/bin/dpg-post-bootstrap",
    },
    "postgresql": {
        "listen": "0.0.0.0:5432",
        "connect_address": f"{name}:5432",
        "data_dir": data_dir,
        "bin_dir": "/usr/lib/postgresql/17/bin",
        "pgpass": "/tmp/pgpass",
        # a spread checkpoint made every replica clone wait ~110 s on this machine
        "basebackup": [{"checkpoint": "fast"}],
        "authentication": {
            "superuser": {"username": "postgres", "password": superuser_pw},
            "replication": {"username": "replicator", "password": repl_pw},
            "rewind": {"username": "postgres", "password": superuser_pw},
        },
        "pg_hba": [
            "local all all trust",
            "host all all 127.0.0.1/32 scram-sha-256",
            "host replication replicator 0.0.0.0/0 scram-sha-256",
            "host all all 0.0.0.0/0 scram-sha-256",
        ],
        # dpg.node_name: the node's name to clients (a custom setting, read by the harness's probes): the address a
        # client sees names no node where published ports go through each host's own docker_gwbridge
        "parameters": {"unix_socket_directories": "/var/run/postgresql", "dpg.node_name": name},
    },
    "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
}

if repo_host:
    archive_get = '/usr/local/bin/dpg-restore-wal %f "%p"'  # see restore-wal.sh
    config["postgresql"]["parameters"].update(
        {
            "archive_mode": "on",
            "archive_command": f"pgbackrest --stanza={stanza} archive-push %p",
            "archive_timeout": env("DPG_ARCHIVE_TIMEOUT", "30s"),
        }
    )
    # a replica is cloned from the newest backup plus the archive when one exists, else streamed from the leader
    config["postgresql"]["create_replica_methods"] = ["pgbackrest", "basebackup"]
    config["postgresql"]["pgbackrest"] = {
        "command": f"pgbackrest --stanza={stanza} --delta restore",
        "keep_data": True,
        "no_params": True,
    }
    config["postgresql"]["recovery_conf"] = {"restore_command": archive_get}
    if flag("DPG_SWITCH_WAL_ON_PROMOTE", True):  # see on-role-change.sh: a frozen leader rejoins 30 s sooner
        config["postgresql"]["callbacks"] = {"on_role_change": "/usr/local/bin/dpg-on-role-change"}
    if bootstrap_method == "pgbackrest":
        config["bootstrap"]["method"] = "pgbackrest"
        config["bootstrap"]["pgbackrest"] = {
            "command": "/usr/local/bin/dpg-bootstrap-restore",
            "no_params": True,
            "keep_existing_recovery_conf": False,
            "recovery_conf": {
                "restore_command": archive_get,
                "recovery_target_action": "promote",
                "recovery_target_timeline": "latest",
            },
        }
    subprocess.run(["python3", "/usr/local/bin/dpg-pgbackrest-conf", "node"], check=True)

if flag("DPG_FAST_LEADER_STOP", True):  # see before-stop.py: Patroni's two 1 s waits in a graceful demote
    config["postgresql"]["before_stop"] = "/usr/local/bin/dpg-before-stop"

os.makedirs("/etc/patroni", exist_ok=True)
with open("/etc/patroni/patroni.yml", "w") as fh:
    json.dump(config, fh, indent=1)  # JSON is valid YAML
# Patroni runs as our child (dumb-init, PID 1, forwards SIGTERM to the whole process group). After a signalled
# exit the container lingers DPG_STOP_LINGER_S seconds: while it still holds its IP, peers probing its REST API
# get "connection refused" at once. Without it the address vanishes with the container and every candidate
# waits out Patroni's hard-coded 2 s member-status timeout before it may promote (measured: +2 s per failover).
stopping = []
# A stop request is also left as a file for the before_stop hook (before-stop.py): Patroni closes its REST API
# first when it shuts down, so the hook cannot ask it whether this is a graceful shutdown of the leader.
STOP_MARKER = os.environ.setdefault("DPG_STOP_MARKER", "/tmp/dpg-stop-requested")  # Patroni's hooks inherit it
with contextlib.suppress(FileNotFoundError):
    os.unlink(STOP_MARKER)  # left by an earlier life of this container


def on_stop_signal(signum, _frame) -> None:
    stopping.append(signal.Signals(signum).name)
    with contextlib.suppress(OSError):
        open(STOP_MARKER, "w").close()


signal.signal(signal.SIGTERM, on_stop_signal)
signal.signal(signal.SIGINT, on_stop_signal)
# the node's own pgBackRest TLS server: the repository host reaches the data directory through it for backups
server = subprocess.Popen(["pgbackrest", "server"]) if repo_host else None
# see postmaster-watch.py: wakes Patroni's HA loop when the postmaster dies instead of at its next cycle
watcher = (
    subprocess.Popen(["python3", "/usr/local/bin/dpg-postmaster-watch"]) if flag("DPG_POSTMASTER_WATCH", True) else None
)
child = subprocess.Popen(["patroni", "/etc/patroni/patroni.yml"])
while True:
    try:
        code = child.wait()
        break
    except InterruptedError:
        continue
for helper in (server, watcher):
    if helper is not None and helper.poll() is None:
        helper.terminate()
linger = float(env("DPG_STOP_LINGER_S", "3"))
if stopping and linger > 0:
    time.sleep(linger)
sys.exit(code if code >= 0 else 128 - code)
