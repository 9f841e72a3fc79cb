"""The reaper: undo what a killed run left behind, from the world's state only (`python -m chaos heal`).

A SIGKILLed run leaves no in-memory registry, so this looks at the containers, the fault proxy and Patroni
and undoes what carries our marks: paused/stopped containers of ours, iptables rules tagged `dpg-chaos`,
toxics, Patroni's maintenance mode and the opt-in member-probe key.
"""

from __future__ import annotations

import logging
import os
import shlex
from typing import TYPE_CHECKING, Any

from topology.inventory import engines
from topology.names import MANAGED_LABEL, STACK_LABEL
from topology.patroni import PROBE_KEY

from . import journal, netns
from .base import RULE_TAG, resolve
from .containers import unpause
from .rules import delete_tagged_rules, iptables_listing, tagged_rule_deletions

if TYPE_CHECKING:  # pragma: no cover
    from docker import DockerClient

log = logging.getLogger("dpg.chaos")

#: Default toxiproxy admin API (published on the host).
TOXIPROXY_API = os.environ.get("DPG_TOXIPROXY_API", "http://127.0.0.1:8474")
#: Containers carrying this label (value `true`) are one-shot jobs: the reaper never restarts them.
ONESHOT_LABEL = "io.dpg-chaos.oneshot"


def reap_leftovers(
    client: DockerClient | None = None,
    *,
    name_prefix: str | None = None,
    toxiproxy_api: str | None = TOXIPROXY_API,
    patroni: bool = True,
    dry_run: bool = False,
) -> list[str]:
    """Undo what a killed run left behind, from the world's state only; return what was removed.

    * the fault journal's pending faults (a dead run's injects without their heal) -> undone exactly; in a
      target that is all, plus our helper containers: a paused or stopped container there may be the cluster
      team's own doing (chaos.faults.journal);
    * managed containers that are paused -> unpaused;
    * tagged iptables rules (comment `dpg-chaos...`) in running managed containers -> deleted;
    * managed containers of a stack (label `io.dpg-chaos.stack`) that are exited/created -> started
      (except one-shot jobs labelled `io.dpg-chaos.oneshot=true`);
    * toxiproxy (if its API answers): toxics removed and proxies re-enabled via POST /reset;
    * Patroni (if a published REST API answers): maintenance mode left on -> resumed; the opt-in
      member-probe key (`dpg_member_probe_timeout_ms`) left in the dynamic config -> removed.

    `name_prefix` limits the container part to names starting with it and skips the cluster-wide
    toxiproxy/Patroni part (tests use it so they never heal someone else's fault). `dry_run` only
    reports, as lines starting with "would".
    """
    import docker

    from topology.inventory import current

    scoped = name_prefix is not None
    lines: list[str] = [] if scoped else reap_journal(dry_run=dry_run)
    if current().is_target:  # never a sweep by state: only what the journal says a dead run of ours left
        return lines + reap_helpers(dry_run=dry_run)
    lines += _sweep(client or docker.from_env(), name_prefix=name_prefix, dry_run=dry_run)
    if current().kind == "multihost" and not scoped:  # the hosts are ours, and so is every container on them
        from .hosts import wait_engine

        for name in current().engines:
            try:
                wait_engine(name, within=60)  # a host the local sweep just started needs a moment
                lines += _sweep(engines().client(name), name_prefix=None, dry_run=dry_run)
            except Exception as exc:
                lines.append(f"could not sweep host {name}: {exc}")

    if not scoped:
        if toxiproxy_api:
            lines.extend(_reap_toxiproxy(toxiproxy_api, dry_run=dry_run))
        if patroni:
            lines.extend(_reap_patroni(dry_run=dry_run))
    return lines


def _sweep(client: DockerClient, *, name_prefix: str | None, dry_run: bool) -> list[str]:
    """One engine's containers of ours, swept by state: paused -> unpaused, tagged rules deleted, stopped -> started."""
    from docker.errors import APIError, NotFound

    from topology.ownership import is_ours

    lines: list[str] = []
    scoped = name_prefix is not None
    filters: dict[str, Any] = {"label": f"{MANAGED_LABEL}=true"}
    if scoped:
        filters["name"] = name_prefix
    # others' containers come and go between the list and the per-container inspect
    cs = client.containers.list(all=True, filters=filters, ignore_removed=True)
    if scoped:
        cs = [c for c in cs if c.name.startswith(name_prefix)]
    cs = sorted((c for c in cs if is_ours(client, c)), key=lambda c: c.name)

    for c in cs:
        if c.status != "paused":
            continue
        if dry_run:
            lines.append(f"would unpause container {c.name}")
            continue
        try:
            unpause(c)
            lines.append(f"unpaused container {c.name}")
        except (APIError, NotFound) as e:
            lines.append(f"could not unpause container {c.name}: {e}")

    for c in cs:
        try:
            c.reload()
        except NotFound:
            continue
        if c.status != "running":
            continue
        try:
            if dry_run:
                _, rules = iptables_listing(c)
                found = [shlex.join(["-A", *a[1:]]) for a in tagged_rule_deletions(rules)]
                lines.extend(f"would delete iptables rule in {c.name}: {r}" for r in found)
            else:
                removed = delete_tagged_rules(c, RULE_TAG)
                lines.extend(f"deleted iptables rule in {c.name}: {r}" for r in removed)
        except Exception as e:  # no iptables in this image, or exec refused: not ours to fix
            log.debug("reap: skipping iptables in %s: %s", c.name, e)

    for c in cs:
        labels = c.labels or {}
        if c.status not in ("exited", "created") or STACK_LABEL not in labels:
            continue
        if labels.get(ONESHOT_LABEL, "").lower() == "true":
            continue
        was = f"was {c.status}, stack {labels[STACK_LABEL]}"
        if dry_run:
            lines.append(f"would start container {c.name} ({was})")
            continue
        try:
            c.start()
            lines.append(f"started container {c.name} ({was})")
        except (APIError, NotFound) as e:
            lines.append(f"could not start container {c.name}: {e}")

    return lines


def _reap_toxiproxy(api: str, *, dry_run: bool = False) -> list[str]:
    import requests

    api = api.rstrip("/")
    try:
        proxies = requests.get(f"{api}/proxies", timeout=2).json()
    except (requests.RequestException, ValueError):
        return []  # no toxiproxy here
    if not isinstance(proxies, dict):
        return []
    toxics = [(p, t.get("name", "?")) for p, v in proxies.items() for t in (v.get("toxics") or [])]
    disabled = [p for p, v in proxies.items() if v.get("enabled") is False]
    if not toxics and not disabled:
        return []
    verb_t, verb_p = ("would remove", "would re-enable") if dry_run else ("removed", "re-enabled")
    if not dry_run:
        try:
            requests.post(f"{api}/reset", timeout=5).raise_for_status()
        except requests.RequestException as e:
            return [f"could not reset toxiproxy at {api}: {e}"]
    return [f"{verb_t} toxic {t} from proxy {p}" for p, t in toxics] + [f"{verb_p} proxy {p}" for p in disabled]


def _reap_patroni(*, dry_run: bool = False) -> list[str]:
    """Cluster-wide Patroni settings a killed run left behind, each checked on its own (one failing does not
    hide the other); an unreachable Patroni means nothing to heal here."""
    import requests

    from topology.patroni_api import PatroniAPI, PatroniError, published_api_urls

    api = PatroniAPI(list(published_api_urls().values()), timeout=1.5, retries=1)
    lines: list[str] = []
    for step in (_resume_maintenance_mode, _remove_probe_key):
        try:
            lines.extend(step(api, dry_run))
        except (PatroniError, ValueError, AttributeError, requests.RequestException) as e:
            log.debug("reap: Patroni not reachable/usable: %s", e)
    return lines


def _resume_maintenance_mode(api: Any, dry_run: bool) -> list[str]:
    if not api.is_paused():
        return []
    if dry_run:
        return [f"would resume Patroni (maintenance mode is on) via {api.last_url}"]
    api.resume()
    return [f"resumed Patroni (maintenance mode was on) via {api.last_url}"]


def _remove_probe_key(api: Any, dry_run: bool) -> list[str]:
    """The opt-in member-probe key lives only for one experiment (chaos.experiments.cluster_settings): any value found
    outside a run is a leftover of a killed one, and stock is the key's absence."""
    value = api.request("GET", "/config").json().get(PROBE_KEY)
    if value is None:
        return []
    if dry_run:
        return [f"would remove {PROBE_KEY}={value} from Patroni's dynamic config via {api.last_url}"]
    api.request("PATCH", "/config", json={PROBE_KEY: None})
    return [f"removed {PROBE_KEY}={value} from Patroni's dynamic config via {api.last_url}"]


# ------------------------------------------------------------------------------------------------- journal
def reap_journal(*, dry_run: bool = False) -> list[str]:
    """Undo every pending fault of the journal (a dead run's inject without its heal), each exactly as recorded."""
    lines = []
    # faults first: the probe schema is dropped through the RW entry point, which a frozen leader may still block
    for row in sorted(journal.pending(), key=lambda r: r["kind"] == "ProbeSchema"):
        try:
            done = _undo(row, dry_run=dry_run)
        except Exception as exc:  # keep going: one stuck leftover must not hide the others
            lines.append(f"could not undo {row['describe']} (journal {row['id']}): {type(exc).__name__}: {exc}")
            continue
        lines.extend(done or [f"{'would mark' if dry_run else 'marked'} {row['describe']} healed: nothing left"])
        if not dry_run:
            journal.mark_healed(row)
    return lines


def _undo(row: dict[str, Any], *, dry_run: bool) -> list[str]:
    kind, undo, what = row["kind"], row.get("undo") or {}, row["describe"]
    verb = "would " if dry_run else ""
    if "unfreeze" in undo:  # a frozen host: the node first, then the containers frozen on it
        from .hosts import node_container

        node = node_container(undo["host"], touch=False)
        if dry_run:
            return [f"would resume host {undo['host']} and {len(undo['unfreeze'])} container(s) (left by {what})"]
        unpause(node)
        client = engines().client(undo["host"])
        resumed = [n for n in undo["unfreeze"] if unpause(client.containers.get(n))]
        return [f"resumed host {undo['host']} and {', '.join(resumed) or 'no container'} (left by {what})"]
    if "reboot" in undo or "reboot_hosts" in undo:  # a host crashed or restarted by a dead run: back as after a reboot
        from .hosts import reboot

        todo = undo.get("reboot_hosts") or {undo["host"]: undo["reboot"]}
        if dry_run:
            return [
                f"would reboot host {h} and start {len(names)} container(s) (left by {what})"
                for h, names in todo.items()
            ]
        return [f"host {h}: {reboot(h, names)} (left by {what})" for h, names in todo.items()]
    if "tag" in undo:
        out = []
        for name in undo.get("containers", []):
            c = resolve(name, touch=False)
            if c.status != "running":
                continue
            if dry_run:
                _, rules = iptables_listing(c)
                out += [
                    f"would delete iptables rule in {c.name}: {shlex.join(['-A', *a[1:]])}"
                    for a in tagged_rule_deletions(rules, undo["tag"])
                ]
            else:
                out += [f"deleted iptables rule in {c.name}: {r}" for r in delete_tagged_rules(c, undo["tag"])]
        return out
    if undo.get("action") in ("unpause", "start"):
        from .containers import STARTABLE, ensure_running

        out = []
        for name in undo.get("containers", []):
            c = resolve(name, touch=False)
            if c.status != "paused" and not (undo["action"] == "start" and c.status in STARTABLE):
                continue
            done = ("unpause" if c.status == "paused" else "start") if dry_run else ensure_running(c)
            out.append(f"{verb}{done} container {c.name} (left by {what})")
        return out
    if kind == "Disconnected":
        c = resolve(undo["container"], touch=False)
        if undo["network"] in ((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}):
            return []
        kwargs = {k: v for k, v in (undo.get("endpoint") or {}).items() if v}
        if not dry_run:
            c.client.networks.get(undo["network"]).connect(c, **kwargs)
        return [f"{verb}reconnect {c.name} to {undo['network']} with {kwargs} (left by {what})"]
    if kind in ("DynamicConfigChanged", "MaintenanceMode"):
        from topology.patroni_api import PatroniAPI

        api = PatroniAPI(undo["api"], timeout=2, retries=2)
        if kind == "MaintenanceMode":
            if not api.is_paused():
                return []
            if not dry_run:
                api.resume()
            return [f"{verb}resume Patroni (maintenance mode left by {what})"]
        if undo.get("before") is None:
            return [f"left {what} as it is: the run died before it read the previous values"]
        now = api.request("GET", "/config").json()
        changed = {k: undo["before"].get(k) for k, v in undo["changes"].items() if now.get(k) == v}
        if changed and not dry_run:
            api.request("PATCH", "/config", json=changed)
        return [f"{verb}restore Patroni's dynamic config {changed} (left by {what})"] if changed else []
    if kind == "ReplayPaused":
        from .replay import ReplayPaused

        if not dry_run:
            fault = ReplayPaused(undo["node"])
            fault._touched = True
            fault.heal()
        return [f"{verb}resume WAL replay on {undo['node']} (left by {what})"]
    if kind == "ProbeSchema":
        from topology import probe_schema

        if dry_run:
            return [f"would drop the probe schema {undo['schema']} (left by a run that ended without dropping it)"]
        import psycopg
        from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

        # right after a frozen leader was unpaused, writes may take a failover to come back: bounded retry
        dropped = Retrying(
            stop=stop_after_delay(120),
            wait=wait_fixed(2),
            reraise=True,
            retry=retry_if_exception_type(psycopg.OperationalError),
        )(probe_schema.drop, undo["schema"])
        return [f"dropped the probe schema {undo['schema']}"] if dropped else []
    return []


def reap_helpers(*, dry_run: bool = False) -> list[str]:
    """Helper containers of ours (network-namespace sidecars) left on any engine of the inventory."""
    from topology.inventory import current, engines
    from topology.ownership import is_ours

    lines = []
    for name in current().engines:
        try:
            client = engines().client(name)
        except Exception as exc:
            lines.append(f"could not reach engine {name}: {exc}")
            continue
        for c in client.containers.list(all=True, filters={"label": f"{netns.HELPER_LABEL}=true"}):
            if not is_ours(client, c):
                continue
            if not dry_run:
                c.remove(force=True)
            lines.append(f"{'would remove' if dry_run else 'removed'} helper container {c.name} on engine {name}")
    return lines
