"""pytest plugin, loaded before any conftest (`-p topology.pytest_target` in pyproject's addopts): which deployment
the run tests.

    --target FILE   (or DPG_TARGET=FILE)  test the deployment FILE describes (topology/inventory.schema.json)
                                          instead of the embedded topology this project builds and starts

The choice has to be made before the root conftest imports `topology`, whose modules read member names and
addresses from the inventory when they are imported; `pytest_load_initial_conftests` runs early enough. A bad
inventory is one line per mistake and exit status 2, before anything is collected or started.
"""

from __future__ import annotations

import os
import sys

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("dpg-chaos target")
    group.addoption(
        "--target",
        metavar="FILE",
        default=None,
        help="test the deployment this inventory describes (default: DPG_TARGET, else the embedded topology)",
    )
    group.addoption(
        "--hosts",
        type=int,
        metavar="N",
        default=None,
        help="run on the multi-host topology: N Docker hosts in a Swarm (started if needed; docs/multihost.md)",
    )
    group.addoption(
        "--dry-run",
        action="store_true",
        default=False,
        help="list, per selected test, the faults it would inject and the containers/engines they touch; run nothing",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    target = getattr(early_config.known_args_namespace, "target", None)
    n_hosts = getattr(early_config.known_args_namespace, "hosts", None)
    if target and n_hosts:
        print("dpg-chaos: --target and --hosts exclude each other", file=sys.stderr)
        raise SystemExit(2)
    if n_hosts:  # the multi-host deployment's inventory is known before it runs (topology/multihost.py)
        from . import multihost

        os.environ["DPG_HOSTS"] = str(n_hosts)
        target = str(multihost.inventory_file(multihost.count()))
    if target:
        os.environ["DPG_TARGET"] = os.path.abspath(target)
        from . import inventory

        inventory.reset()
    _load_or_exit()


def _load_or_exit():
    from . import settings
    from .errors import TopologyError
    from .inventory import current

    try:
        settings.check()  # every DPG_* setting, before anything is collected or started
        return current()
    except TopologyError as err:
        # before the session exists, pytest.exit() is not yet turned into an exit status: say it and leave
        print(f"dpg-chaos: {err}", file=sys.stderr)
        raise SystemExit(2) from None
