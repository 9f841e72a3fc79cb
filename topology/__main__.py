"""python -m topology build|up|down|status|logs|health|backup-info [stack ...]"""
from __future__ import annotations

import argparse
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
    d = sub.add_parser("down", help="remove stacks (all of ours, incl. the network, when none named)")
    d.add_argument("stacks", nargs="*")
    sub.add_parser("status", help="table of our containers")
    h = sub.add_parser("health", help="print each running stack's problems (exit 1 if any)")
    h.add_argument("stacks", nargs="*")
    lg = sub.add_parser("logs", help="recent logs of a stack's containers")
    lg.add_argument("stacks", nargs="+")
    lg.add_argument("--tail", type=int, default=100)
    sub.add_parser("backup-info", help="pgBackRest repository status (`pgbackrest info`) of the Patroni stack")
    args = parser.parse_args(argv)
    try:
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
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
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
    code, message = repo.status()
    return 0 if code == 0 else 1


COMMANDS = {"backup-info": _backup_info, "build": _build, "up": _up, "down": _down, "status": _status, "health": _health, "logs": _logs}

if __name__ == "__main__":
    sys.exit(main())
