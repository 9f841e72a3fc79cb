#!/usr/bin/env python3
"""Write /etc/pgbackrest/pgbackrest.conf for one role, from DPG_* environment variables.

    dpg-pgbackrest-conf node     a Patroni node: repository on the repo host (TLS), its own TLS server so the
                                 repo host can back it up, pg1 = the local data directory
    dpg-pgbackrest-conf repo     the repository host: repo1 on its volume, pg1..pgN = the Patroni nodes (TLS)
    dpg-pgbackrest-conf client   a restore-only client (scratch restores): repository on the repo host

Why TLS server mode and not SSH or a shared volume: pgBackRest >= 2.37 ships its own mutually authenticated
TLS protocol, so no sshd and no keys per user are needed, and the repository is a real network peer: an
outage of it can be injected with the chaos library (disconnect the container), as the archive-outage drill does.
"""

import os
import sys

env = os.environ.get
TLS = "/etc/pgbackrest/tls"
STANZA = env("DPG_PGBACKREST_STANZA", "dpg")
PGDATA = env("PGDATA", "/data/pgdata")


def tls_client(prefix: str) -> list[str]:
    return [
        f"{prefix}-host-type=tls",
        f"{prefix}-host-cert-file={TLS}/client.crt",
        f"{prefix}-host-key-file={TLS}/client.key",
        f"{prefix}-host-ca-file={TLS}/ca.crt",
    ]


def tls_server() -> list[str]:
    return [
        "tls-server-address=*",
        f"tls-server-cert-file={TLS}/server.crt",
        f"tls-server-key-file={TLS}/server.key",
        f"tls-server-ca-file={TLS}/ca.crt",
        "tls-server-auth=dpg-client=*",
    ]


def common() -> list[str]:
    return [
        "log-level-console=info",
        "log-level-stderr=off",
        "log-level-file=off",
        f"io-timeout={env('DPG_PGBACKREST_IO_TIMEOUT', '20')}",
        f"protocol-timeout={env('DPG_PGBACKREST_PROTOCOL_TIMEOUT', '30')}",
        f"db-timeout={env('DPG_PGBACKREST_DB_TIMEOUT', '25')}",
        "compress-type=lz4",
        "start-fast=y",
    ]


def node() -> list[str]:
    repo = env("DPG_PGBACKREST_REPO_HOST", "pgbackrest")
    return [
        "[global]",
        f"repo1-host={repo}",
        *tls_client("repo1"),
        *common(),
        *tls_server(),
        f"archive-timeout={env('DPG_PGBACKREST_ARCHIVE_TIMEOUT', '30')}",
        "",
        f"[{STANZA}]",
        f"pg1-path={PGDATA}",
        "pg1-socket-path=/var/run/postgresql",
        "pg1-port=5432",
    ]


def repo() -> list[str]:
    hosts = [h for h in env("DPG_PGBACKREST_PG_HOSTS", "patroni-1,patroni-2,patroni-3").split(",") if h]
    lines = [
        "[global]",
        "repo1-path=/var/lib/pgbackrest",
        f"repo1-retention-full={env('DPG_BACKUP_RETENTION_FULL', '2')}",
        f"repo1-retention-diff={env('DPG_BACKUP_RETENTION_DIFF', '3')}",
        f"process-max={env('DPG_PGBACKREST_PROCESS_MAX', '2')}",
        "backup-standby=n",
        *common(),
        *tls_server(),
        f"archive-timeout={env('DPG_PGBACKREST_ARCHIVE_TIMEOUT', '30')}",
        "",
        f"[{STANZA}]",
    ]
    for i, host in enumerate(hosts, start=1):
        lines += [
            f"pg{i}-host={host}",
            *tls_client(f"pg{i}"),
            f"pg{i}-path={PGDATA}",
            f"pg{i}-port=5432",
            f"pg{i}-socket-path=/var/run/postgresql",
        ]
    return lines


def client() -> list[str]:
    repo = env("DPG_PGBACKREST_REPO_HOST", "pgbackrest")
    return [
        "[global]",
        f"repo1-host={repo}",
        *tls_client("repo1"),
        *common(),
        "",
        f"[{STANZA}]",
        f"pg1-path={PGDATA}",
        "pg1-socket-path=/var/run/postgresql",
    ]


ROLES = {"node": node, "repo": repo, "client": client}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ROLES:
        sys.exit(f"usage: dpg-pgbackrest-conf {'|'.join(ROLES)}")
    os.makedirs("/etc/pgbackrest", exist_ok=True)
    with open("/etc/pgbackrest/pgbackrest.conf", "w") as fh:
        fh.write("\n".join(ROLES[sys.argv[1]]()) + "\n")
