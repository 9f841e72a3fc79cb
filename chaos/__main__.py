"""`python -m chaos heal` undoes what a killed run left behind; `python -m chaos list` shows fault kinds;
`python -m chaos txn-check HISTORY.jsonl --model MODEL [--json]` re-checks a list-append history (exit codes
in chaos.checkers.elle.cli).

Exit codes: 0 done (lines starting "could not" also go to stderr), 2 Docker is not reachable.
"""

from __future__ import annotations

import argparse
import os
import sys


def _heal(args: argparse.Namespace) -> int:
    import docker
    from docker.errors import DockerException

    from chaos.faults.heal import reap_leftovers

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"chaos heal: Docker is not reachable ({first}); nothing healed", file=sys.stderr)
        return 2
    lines = reap_leftovers(
        client,
        name_prefix=args.prefix,
        toxiproxy_api=None if args.no_toxiproxy else args.toxiproxy_api,
        patroni=not args.no_patroni,
        dry_run=args.dry_run,
    )
    if not lines:
        print("nothing to heal")
        return 0
    for line in lines:
        print(line)
        if line.startswith("could not"):
            print(line, file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from chaos.faults import FAULT_KINDS

    width = max(len(k.__name__) for k in FAULT_KINDS)
    for kind in FAULT_KINDS:
        doc = (kind.__doc__ or "").strip().splitlines()[0] if kind.__doc__ else ""
        print(f"{kind.__name__:<{width}}  {doc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # --target decides which deployment every module reads, so it is read before any of them is imported
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--target")
    known, _ = pre.parse_known_args(argv)
    if known.target:
        os.environ["DPG_TARGET"] = os.path.abspath(known.target)
    from topology.errors import TopologyError
    from topology.inventory import current

    try:
        current()
    except TopologyError as err:
        print(f"chaos: {err}", file=sys.stderr)
        return 2
    from chaos.faults.heal import TOXIPROXY_API

    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser(
        "heal",
        help="reap leftovers of killed runs (paused/stopped containers, tagged iptables rules, toxics, Patroni pause)",
    )
    h.add_argument(
        "--prefix", default=None, help="only containers whose name starts with this (skips toxiproxy and Patroni)"
    )
    h.add_argument("--toxiproxy-api", default=TOXIPROXY_API)
    h.add_argument("--no-toxiproxy", action="store_true")
    h.add_argument("--no-patroni", action="store_true")
    h.add_argument("--dry-run", action="store_true", help="only print what would be healed")
    h.add_argument("--target", help="a target's inventory: undo exactly what the fault journal says a dead run left")
    h.set_defaults(fn=_heal)
    sub.add_parser("list", help="print the fault kinds").set_defaults(fn=_list)
    from chaos.checkers.elle.cli import register as register_txn_check

    register_txn_check(sub)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
