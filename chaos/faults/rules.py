"""iptables rules tagged as ours (`dpg-chaos:<fault-id>` comments): list them, delete exactly them, verified.

Shared by the network faults (add, check, remove their own rules) and the reaper (`chaos heal`), and run through
`netns`, so a container without iptables or NET_ADMIN of its own is reached through a helper.
"""

from __future__ import annotations

import shlex
from typing import Any

from . import netns
from .base import RULE_TAG, FaultError


def tagged_rule_deletions(rules: str, tag: str = RULE_TAG) -> list[list[str]]:
    """`iptables -S` output -> argv tails that delete exactly the rules whose comment carries `tag`."""
    out: list[list[str]] = []
    for line in rules.splitlines():
        if tag not in line or not line.startswith("-A "):
            continue
        argv = shlex.split(line)
        try:
            comment = argv[argv.index("--comment") + 1]
        except (ValueError, IndexError):
            continue
        if comment == tag or comment.startswith(tag + ":"):
            out.append(["-D", *argv[1:]])
    return out


def delete_tagged_rules(c: Any, tag: str, *, passes: int = 3) -> list[str]:
    """Delete every iptables rule in `c` (filter table) whose comment is `tag` or starts with `tag:`.

    Lists, deletes, and lists again until no tagged rule is left (at most `passes` rounds), so the
    result is verified rather than assumed. Returns the deleted rules as `iptables -S` lines.
    Raises FaultError when iptables cannot run or a rule will not go away.
    """
    removed: list[str] = []
    for _ in range(passes):
        _, rules = iptables_listing(c)
        deletions = tagged_rule_deletions(rules, tag)
        if not deletions:
            return removed
        for argv in deletions:
            rc, out = netns.run(c, ["iptables", "-w", "5", *argv], check=False)
            if rc == 0:
                removed.append(shlex.join(["-A", *argv[1:]]))
            elif "does a matching rule exist" not in out:  # anything but "already gone" is a failure
                raise FaultError(f"iptables {shlex.join(argv)} failed in {c.name} (exit {rc}): {out}")
    _, rules = iptables_listing(c)
    left = tagged_rule_deletions(rules, tag)
    if left:
        raise FaultError(f"{len(left)} iptables rule(s) tagged {tag} survive in {c.name}: {left}")
    return removed


def iptables_listing(c: Any) -> tuple[int, str]:
    """`iptables -S` of the filter table; a complete listing always shows the INPUT policy."""
    return netns.run(
        c, ["iptables", "-w", "5", "-S"], what="iptables -S", expect=lambda rc, out: rc != 0 or "-P INPUT" in out
    )
