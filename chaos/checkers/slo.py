"""Load the write-gap SLOs (fault type x entry point) from a YAML file, with env overrides."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from topology.errors import TopologyError

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "suites" / "failover" / "slo.yaml"


@dataclass(frozen=True)
class SLO:
    fault: str
    entry_point: str
    bound_ms: float
    source: str  # where the bound came from: "slo.yaml: ttl+probe+1500 (ttl=20 s, probe=2000 ms)", "env ..."


def ttl_seconds() -> int:
    """The `ttl` a bound is built on: the embedded topology's own (DPG_TTL), or under --target the ttl the cluster
    team was promised (the SLO file's `promised.ttl`): a bound is a promise, never stretched to a target's config."""
    from topology.inventory import current

    if current().is_target:
        return int(promised()["ttl"])
    return int(os.environ.get("DPG_TTL", "20"))


def restore_timeout_s() -> int:
    """The bound of one archive-get in restore_command (DPG_RESTORE_TIMEOUT_S, the image's default 5 s)."""
    return int(os.environ.get("DPG_RESTORE_TIMEOUT_S", "5"))


def promised() -> dict[str, float]:
    """The Patroni timings the SLO file's bounds assume (`promised:`), e.g. {"ttl": 20, "loop_wait": 1, ...}."""
    path = Path(os.environ.get("DPG_SLO_FILE", DEFAULT_FILE))
    try:
        return {k: float(v) for k, v in (yaml.safe_load(path.read_text()).get("promised") or {}).items()}
    except (OSError, yaml.YAMLError, TypeError, ValueError) as exc:
        raise TopologyError(f"cannot read `promised:` of the SLO file {path}: {exc}") from None


class BoundUnreachable(AssertionError):
    """The target's settings make a promised bound unreachable (a setup failure, not a measured breach)."""


def check_reachable(fault: str, entry_points: list[str], config: dict) -> None:
    """Under --target: fail before the fault when the target's Patroni timings exceed what a bound was promised
    with. A hard fault waits out the lease, so with the target's ttl above the promised one the bound built on
    it cannot be met whatever the cluster does; the test says so instead of stretching the bound."""
    from topology.inventory import current

    if not current().is_target:
        return
    promise = promised()
    raw = _raw_bounds(fault)
    uses_ttl = [ep for ep in entry_points if "ttl" in str(raw.get(ep, ""))]
    too_long = {k: config.get(k) for k in promise if isinstance(config.get(k), int | float) and config[k] > promise[k]}
    if uses_ttl and too_long:
        raise BoundUnreachable(
            f"target {current().name}: Patroni runs with {too_long}, but the SLO bounds of {fault} "
            f"({raw[uses_ttl[0]]}) were promised with {promise} (slo.yaml `promised:`): unreachable; "
            "the bound is not stretched to the target's settings"
        )


def _raw_bounds(fault: str) -> dict[str, str]:
    path = Path(os.environ.get("DPG_SLO_FILE", DEFAULT_FILE))
    try:
        return {
            ep: str(v) for ep, v in ((yaml.safe_load(path.read_text()).get("faults") or {}).get(fault) or {}).items()
        }
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"cannot read SLO file {path}: {exc}") from None


def loop_wait_seconds() -> int:
    """Patroni's loop_wait: the leader renews its key once per loop, so the key may be up to this old at a fault."""
    from topology.inventory import current

    if current().is_target:
        return int(promised()["loop_wait"])
    return int(os.environ.get("DPG_LOOP_WAIT", "1"))


def retry_timeout_seconds() -> int:
    """Patroni's retry_timeout: how long a DCS call may keep failing before the leader gives up its lock."""
    return int(os.environ.get("DPG_RETRY_TIMEOUT", "3"))


#: Patroni 4.0.7's own timeout of the leader race's member probe (ha.py fetch_node_status hard-codes 2 s)
STOCK_MEMBER_PROBE_MS = 2000
MEMBER_PROBE_RANGE_MS = (100, 10_000)


def probe_variant(ms: int) -> str:
    """How a run with a non-stock member probe is labelled (cluster_settings.variant, report tables)."""
    return f"member probe {ms} ms"


def probe_of_variant(label: str) -> int:
    """The member-probe timeout a label made with probe_variant names (Patroni's own if it names none)."""
    found = re.search(r"member probe (\d+) ms", label)
    return int(found.group(1)) if found else STOCK_MEMBER_PROBE_MS


def member_probe_timeout_ms() -> int:
    """The member-probe timeout this run gives the cluster (DPG_MEMBER_PROBE_TIMEOUT_MS; unset = Patroni's 2 s).

    Opt-in: the image's Patroni reads it from the dynamic config key `dpg_member_probe_timeout_ms`, which the
    experiments set before their steady state (experiments.cluster_settings), so bounds and cluster always agree."""
    raw = os.environ.get("DPG_MEMBER_PROBE_TIMEOUT_MS", "").strip()
    if not raw:
        return STOCK_MEMBER_PROBE_MS
    low, high = MEMBER_PROBE_RANGE_MS
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise TopologyError(
            f"DPG_MEMBER_PROBE_TIMEOUT_MS={raw!r}: expected an integer of ms from {low} to {high} "
            f"(unset = Patroni's own {STOCK_MEMBER_PROBE_MS})"
        )
    return value


def _resolve(raw: object, where: str) -> float:
    """A bound in ms: a number, or a sum of `ttl` (Patroni's ttl), `probe` (the member-probe timeout), `restore`
    (one archive-get's bound, DPG_RESTORE_TIMEOUT_S) and ms."""
    parts = re.split(r"([+-])", str(raw).replace(" ", ""))  # "ttl+probe-5" -> ttl, +, probe, -, 5
    symbols = {"ttl": lambda: ttl_seconds() * 1000.0, "probe": lambda: float(member_probe_timeout_ms()),
               "restore": lambda: restore_timeout_s() * 1000.0}  # fmt: skip
    try:
        terms = [symbols[t]() if t in symbols else float(t) for t in parts[0::2]]  # "" (as in "-5") fails here
    except ValueError:
        raise TopologyError(
            f"SLO {where}: {raw!r} is neither a number of ms nor a sum of ttl, probe, restore and ms "
            "(e.g. 'ttl+probe+1500')"
        ) from None
    return terms[0] + sum(t if sign == "+" else -t for sign, t in zip(parts[1::2], terms[1:], strict=True))


def _note(raw: object) -> str:
    """What the symbols of a bound stood for in this run (goes into the SLO's source)."""
    text = str(raw)
    parts = (
        ([f"ttl={ttl_seconds()} s"] if "ttl" in text else [])
        + ([f"probe={member_probe_timeout_ms()} ms"] if "probe" in text else [])
        + ([f"restore={restore_timeout_s()} s"] if "restore" in text else [])
    )
    return f" ({', '.join(parts)})" if parts else ""


def load(path: Path | None = None) -> dict[tuple[str, str], SLO]:
    path = Path(os.environ.get("DPG_SLO_FILE", path or DEFAULT_FILE))
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"cannot read SLO file {path}: {exc}") from None
    out: dict[tuple[str, str], SLO] = {}
    for fault, per_ep in (data.get("faults") or {}).items():
        for ep, raw in per_ep.items():
            env_keys = [f"DPG_SLO_{fault}_{ep}".upper().replace("-", "_"), f"DPG_SLO_{fault}".upper()]
            env_hit = next((k for k in env_keys if k in os.environ), None)
            if env_hit:
                out[(fault, ep)] = SLO(fault, ep, _resolve(os.environ[env_hit], env_hit), f"env {env_hit}")
            else:
                bound = _resolve(raw, f"{fault}.{ep}")
                out[(fault, ep)] = SLO(fault, ep, bound, f"{path.name}: {raw}{_note(raw)}")
    return out


def bound(fault: str, entry_point: str) -> SLO:
    slos = load()
    try:
        return slos[(fault, entry_point)]
    except KeyError:
        raise TopologyError(f"no SLO for fault {fault!r} x entry point {entry_point!r} in the SLO file") from None


def limit(name: str) -> SLO:
    """A named bound from the SLO file's `limits:` section (as the write-gap bounds); env DPG_LIMIT_<NAME>."""
    env = f"DPG_LIMIT_{name}".upper()
    if env in os.environ:
        return SLO(name, "-", _resolve(os.environ[env], env), f"env {env}")
    path = Path(os.environ.get("DPG_SLO_FILE", DEFAULT_FILE))
    try:
        raw = (yaml.safe_load(path.read_text()).get("limits") or {})[name]
    except KeyError:
        raise TopologyError(f"no limit {name!r} in the SLO file {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"cannot read SLO file {path}: {exc}") from None
    return SLO(name, "-", _resolve(raw, name), f"{path.name}: {raw}{_note(raw)}")


def target(fault: str, *, loaded: bool) -> SLO | None:
    """The project's own target for a fault (the SLO file's `targets:`), idle or under load; None if it sets none.
    `fault` may be a table label such as "switchover [load 50%]": the part before the settings is the fault."""
    path = Path(os.environ.get("DPG_SLO_FILE", DEFAULT_FILE))
    try:
        targets = yaml.safe_load(path.read_text()).get("targets") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"cannot read SLO file {path}: {exc}") from None
    spec = targets.get(fault.split(" [", 1)[0])
    if not spec:
        return None
    key = "load" if loaded else "idle"
    raw = spec.get(key)
    if raw is None:
        return None
    return SLO(fault, "*", _resolve(raw, f"targets.{fault}.{key}"), f"{path.name} targets: {raw}{_note(raw)}")
