"""Every active fault in this process, and the last lines of defence that heal them.

* `register`/`unregister` are called by `Fault.__enter__`/`__exit__`; `active()` lists what is live.
* On first registration an `atexit` hook and SIGINT/SIGTERM handlers are installed (main thread only).
  A signal heals every active fault, then behaves as before: the previous Python handler is called
  (for SIGINT that is `default_int_handler`, which raises KeyboardInterrupt), a default disposition is
  re-delivered (the process dies of the signal, as it would have), an ignored signal stays ignored.
* `heal_all()` is what an autouse pytest fixture calls after every test (Jepsen's final `teardown!`).
* `reap_leftovers(client)` works WITHOUT in-memory state, for runs that were SIGKILLed: it finds
  paused/stopped managed containers, iptables rules tagged `dpg-chaos`, toxiproxy toxics and a
  Patroni cluster left in maintenance mode, and undoes them. `python -m chaos heal` runs it.
"""
from __future__ import annotations

import atexit
import logging
import os
import shlex
import signal
import threading
from typing import TYPE_CHECKING, Any

from topology.names import MANAGED_LABEL, STACK_LABEL

if TYPE_CHECKING:  # pragma: no cover
    from docker import DockerClient

    from chaos.faults.base import Fault

log = logging.getLogger("dpg.chaos")

#: Default toxiproxy admin API (published on the host).
TOXIPROXY_API = os.environ.get("DPG_TOXIPROXY_API", "http://127.0.0.1:8474")
#: Containers carrying this label (value `true`) are one-shot jobs: the reaper never restarts them.
ONESHOT_LABEL = "io.dpg-chaos.oneshot"
#: Substring that marks an iptables rule as ours (the rule comment is `dpg-chaos:<fault-id>`).
RULE_TAG = "dpg-chaos"

_lock = threading.RLock()
_active: dict[int, "Fault"] = {}  # insertion-ordered: heal in reverse (LIFO, like nested `with`)
_installed_atexit = False
_installed_signals = False
_previous: dict[int, Any] = {}
_in_signal_heal = False


# ------------------------------------------------------------------------------------------- registry


def register(fault: "Fault") -> None:
    install()
    with _lock:
        _active[id(fault)] = fault


def unregister(fault: "Fault") -> None:
    with _lock:
        _active.pop(id(fault), None)


def active() -> list["Fault"]:
    """Active faults, oldest first."""
    with _lock:
        return list(_active.values())


def heal_all(*, reason: str = "heal_all", raise_errors: bool = True) -> list[str]:
    """Heal every active fault, newest first; return their descriptions.

    Every fault is attempted even if an earlier heal fails; failures are logged and, unless
    `raise_errors=False`, raised together as one `HealError` at the end. A healed fault leaves the
    registry; its own `__exit__` later heals again, which is a no-op by contract.
    """
    from chaos.faults.base import HealError

    healed: list[str] = []
    errors: list[str] = []
    for fault in reversed(active()):
        desc = fault.describe()
        log.warning("%s: healing %s (%s)", reason, fault.id, desc)
        try:
            fault._heal_logged()
        except Exception as e:  # keep healing the others
            log.exception("%s: could not heal %s", reason, fault.id)
            errors.append(f"{fault.id} {desc}: {type(e).__name__}: {e}")
        else:
            healed.append(desc)
            unregister(fault)
    if errors and raise_errors:
        raise HealError("could not heal: " + "; ".join(errors))
    return healed


# --------------------------------------------------------------------------------- exit and signals


def install() -> None:
    """Install the atexit hook and (from the main thread) SIGINT/SIGTERM handlers, once."""
    global _installed_atexit, _installed_signals
    with _lock:
        if not _installed_atexit:
            atexit.register(_on_exit)
            _installed_atexit = True
        if _installed_signals or threading.current_thread() is not threading.main_thread():
            return  # signal.signal() only works in the main thread; retried on the next register
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                _previous[sig] = signal.getsignal(sig)
                signal.signal(sig, _on_signal)
            except (ValueError, OSError):  # pragma: no cover - exotic embedding
                log.warning("could not install a handler for %s", signal.Signals(sig).name)
        _installed_signals = True


def _on_exit() -> None:
    if active():
        heal_all(reason="atexit", raise_errors=False)


def _on_signal(signum: int, frame: Any) -> None:
    global _in_signal_heal
    name = signal.Signals(signum).name
    prev: Any = _previous.get(signum, signal.SIG_DFL)
    if prev is signal.SIG_IGN:
        return  # the process would have ignored it: nothing ends, nothing to heal
    if _in_signal_heal:
        log.warning("%s while healing: finishing the heal first", name)
        return
    _in_signal_heal = True
    try:
        if active():
            heal_all(reason=name, raise_errors=False)
    finally:
        _in_signal_heal = False
    if callable(prev) and prev is not _on_signal:
        prev(signum, frame)  # e.g. default_int_handler -> KeyboardInterrupt
        return
    # SIG_DFL (or a handler installed outside Python): die of the signal as we would have.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


# ------------------------------------------------------------------------------------------- reaper


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
    from chaos.faults.base import FaultError, exec_root

    removed: list[str] = []
    for _ in range(passes):
        _, rules = iptables_listing(c)
        deletions = tagged_rule_deletions(rules, tag)
        if not deletions:
            return removed
        for argv in deletions:
            rc, out = exec_root(c, ["iptables", "-w", "5", *argv], check=False)
            if rc == 0:
                removed.append(shlex.join(["-A", *argv[1:]]))
            elif "does a matching rule exist" not in out:  # anything but "already gone" is a failure
                raise FaultError(f"iptables {shlex.join(argv)} failed in {c.name} (exit {rc}): {out}")
    _, rules = iptables_listing(c)
    left = tagged_rule_deletions(rules, tag)
    if left:
        raise FaultError(f"{len(left)} iptables rule(s) tagged {tag} survive in {c.name}: {left}")
    return removed


def reap_leftovers(
    client: "DockerClient | None" = None,
    *,
    name_prefix: str | None = None,
    toxiproxy_api: str | None = TOXIPROXY_API,
    patroni: bool = True,
    dry_run: bool = False,
) -> list[str]:
    """Undo what a killed run left behind, from the world's state only; return what was removed.

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
    from docker.errors import APIError, NotFound

    client = client or docker.from_env()
    lines: list[str] = []
    scoped = name_prefix is not None
    filters: dict[str, Any] = {"label": f"{MANAGED_LABEL}=true"}
    if scoped:
        filters["name"] = name_prefix
    # others' containers come and go between the list and the per-container inspect
    cs = client.containers.list(all=True, filters=filters, ignore_removed=True)
    if scoped:
        cs = [c for c in cs if c.name.startswith(name_prefix)]
    cs.sort(key=lambda c: c.name)

    for c in cs:
        if c.status != "paused":
            continue
        if dry_run:
            lines.append(f"would unpause container {c.name}")
            continue
        try:
            from chaos.faults.containers import unpause

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

    if not scoped:
        if toxiproxy_api:
            lines.extend(_reap_toxiproxy(toxiproxy_api, dry_run=dry_run))
        if patroni:
            lines.extend(_reap_patroni(dry_run=dry_run))
    return lines


def iptables_listing(c: Any) -> tuple[int, str]:
    """`iptables -S` of the filter table; a complete listing always shows the INPUT policy."""
    from chaos.faults.base import exec_root

    return exec_root(c, ["iptables", "-w", "5", "-S"], what="iptables -S",
                     expect=lambda rc, out: rc != 0 or "-P INPUT" in out)


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
    return [f"{verb_t} toxic {t} from proxy {p}" for p, t in toxics] + [
        f"{verb_p} proxy {p}" for p in disabled
    ]


def _reap_patroni(*, dry_run: bool = False) -> list[str]:
    """Cluster-wide Patroni settings a killed run left behind, each checked on its own (one failing does not
    hide the other); an unreachable Patroni means nothing to heal here."""
    import requests

    from chaos.faults.patroni import PatroniAPI, PatroniError, published_api_urls

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
    """The opt-in member-probe key lives only for one experiment (chaos.cluster_settings): any value found
    outside a run is a leftover of a killed one, and stock is the key's absence."""
    from chaos.cluster_settings import PROBE_KEY

    value = api.request("GET", "/config").json().get(PROBE_KEY)
    if value is None:
        return []
    if dry_run:
        return [f"would remove {PROBE_KEY}={value} from Patroni's dynamic config via {api.last_url}"]
    api.request("PATCH", "/config", json={PROBE_KEY: None})
    return [f"removed {PROBE_KEY}={value} from Patroni's dynamic config via {api.last_url}"]
