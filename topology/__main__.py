"""python -m topology build|up|down|status|logs|health|backup-info [stack ...]"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import TopologyError
from .stacks import ORDER
from .waiting import WaitTimeout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topology", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the base image and every role image (only what changed)")
    b.add_argument("roles", nargs="*")
    b.add_argument("--force", action="store_true")
    u = sub.add_parser("up", help=f"start stacks and wait until healthy (stacks: {', '.join(ORDER)})")
    u.add_argument("stacks", nargs="*")
    u.add_argument("--no-build", action="store_true")
    u.add_argument("--hosts", type=int, metavar="N", help="the multi-host topology: N Docker hosts in a Swarm")
    d = sub.add_parser("down", help="remove stacks (all of ours, incl. the network, when none named)")
    d.add_argument("stacks", nargs="*")
    sub.add_parser("status", help="table of our containers")
    h = sub.add_parser("health", help="print each running stack's problems (exit 1 if any)")
    h.add_argument("stacks", nargs="*")
    lg = sub.add_parser("logs", help="recent logs of a stack's containers")
    lg.add_argument("stacks", nargs="+")
    lg.add_argument("--tail", type=int, default=100)
    sub.add_parser("backup-info", help="pgBackRest repository status (`pgbackrest info`) of the Patroni stack")
    dc = sub.add_parser("discover", help="write a starting inventory of a running DPG deployment (read-only)")
    dc.add_argument("--patroni-url", required=True, help="one Patroni REST API, e.g. http://127.0.0.1:8008")
    dc.add_argument("--engine", action="append", help="[NAME=]URL of a Docker engine (repeatable; default: local)")
    dc.add_argument("--name", default="target", help="the inventory's name (shown in reports)")
    dc.add_argument("--dbname", default="distributed_postgres_cluster")
    dc.add_argument("--app-user", default="dpg_cluster")
    dc.add_argument("--app-password-env", default="DPG_DB_PASSWORD", help="variable holding its password")
    dc.add_argument("--ro-user", default="readonly_user")
    dc.add_argument("--ro-password-env", default="DPG_RO_PASSWORD")
    dc.add_argument("--remote-addresses", action="store_true", help="allow addresses beyond loopback")
    dc.add_argument("--out", help="write the inventory here (default: stdout)")
    iv = sub.add_parser(
        "inventory", help="validate an inventory (default: DPG_TARGET, else the embedded one) and print it"
    )
    iv.add_argument("file", nargs="?")
    sub.add_parser("settings", help="check every DPG_* setting (one line per bad one, exit 2)")
    sub.add_parser("leftovers", help="list what of ours is still on this engine (exit 1 if anything)")
    pl = sub.add_parser("pull", help="docker pull the images we cannot build (Citus, Grafana, Toxiproxy), bounded")
    pl.add_argument("--timeout", type=float, default=120.0, help="seconds per image (default 120)")
    args = parser.parse_args(argv)
    try:
        from . import settings

        settings.check()  # every DPG_* setting, before anything starts (one line, exit 2)
        return COMMANDS[args.command](args)
    except TopologyError as err:
        print(f"topology: {err}", file=sys.stderr)
        return 2
    except WaitTimeout as err:
        print(f"topology: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("topology: interrupted", file=sys.stderr)
        return 130


def _build(args) -> int:
    from . import images

    unknown = [r for r in args.roles if r not in images.ROLES]
    if unknown:
        raise TopologyError(f"unknown image {', '.join(unknown)}; known: {', '.join(images.ROLES)}")
    images.build(args.roles or None, force=args.force)
    return 0


def _up(args) -> int:
    from . import lifecycle

    if args.hosts:
        from . import images, multihost

        os.environ["DPG_HOSTS"] = str(args.hosts)
        if not args.no_build:
            images.build(["node", *(t.split("/")[1].split(":")[0] for t in multihost.IMAGES)])
        path = multihost.up(multihost.count())
        print(f"inventory: {path}  (pytest --hosts {args.hosts} ..., or --target {path})")
        return 0
    lifecycle.up(args.stacks or None, build=not args.no_build)
    return 0


def _down(args) -> int:
    from . import lifecycle

    removed = lifecycle.down(args.stacks or None)
    print("\n".join(f"removed {r}" for r in removed) or "nothing of ours to remove")
    return 0


def _status(args) -> int:
    from . import images, lifecycle

    rows = lifecycle.status_rows(images.docker_client())
    if not rows:
        print("no containers of ours")
        return 0
    header = ("STACK", "CONTAINER", "ROLE", "HEALTH", "PORTS")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(5)]
    for row in (header, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _health(args) -> int:
    from . import health, images

    client = images.docker_client()
    stacks = args.stacks or health.running_stacks(client)
    bad = 0
    for s in stacks:
        if s not in health.GATES:
            raise TopologyError(f"unknown stack {s}; known: {', '.join(health.GATES)}")
        problems = health.problems(client, s)
        bad += len(problems)
        print(f"{s}: " + ("healthy" if not problems else "; ".join(problems)))
    return 1 if bad else 0


def _leftovers(args) -> int:
    """Containers ours by creation (not by an inherited image label), and labelled volumes/networks."""
    from . import images
    from .ownership import everything_ours

    containers, volumes, networks = everything_ours(images.docker_client())
    left = [f"container {c.name} ({c.status})" for c in containers]
    left += [f"volume {v.name}" for v in volumes] + [f"network {n.name}" for n in networks]
    print("\n".join(f"left behind: {x}" for x in left) or "nothing of ours left")
    return 1 if left else 0


def _logs(args) -> int:
    from . import compose, images
    from .stacks import named

    images.docker_client()
    for stack in named(args.stacks):
        print(compose.run(stack, "logs", "--no-color", f"--tail={args.tail}", check=False).stdout)
    return 0


def _backup_info(args) -> int:
    from . import backup, images

    repo = backup.Repository(images.docker_client())
    print(repo.info_text().rstrip())
    code, _message = repo.status()
    return 0 if code == 0 else 1


def _pull(args) -> int:
    from . import images

    for line in images.pull(args.timeout):
        print(f"[pull] {line}")
    return 0


def _settings(args) -> int:
    print("settings: every DPG_* setting in the environment is valid")  # check() ran before this command
    return 0


def _discover(args) -> int:
    from . import discover

    return discover.main(args)


def _inventory(args) -> int:
    import json

    from . import inventory

    inv = inventory.load(args.file) if args.file else inventory.current()
    print(json.dumps(inv.summary(), indent=2))
    return 0


COMMANDS = {
    "discover": _discover,
    "settings": _settings,
    "pull": _pull,
    "inventory": _inventory,
    "backup-info": _backup_info,
    "build": _build,
    "up": _up,
    "down": _down,
    "status": _status,
    "health": _health,
    "logs": _logs,
    "leftovers": _leftovers,
}

if __name__ == "__main__":
    sys.exit(main())
