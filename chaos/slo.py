"""Load the write-gap SLOs (fault type x entry point) from a YAML file, with env overrides."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from topology.errors import TopologyError

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "suites" / "failover" / "slo.yaml"


@dataclass(frozen=True)
class SLO:
    fault: str
    entry_point: str
    bound_ms: float
    source: str          # how the bound was obtained: "slo.yaml: ttl+2000 (ttl=20 s)" or "env DPG_SLO_..."


def ttl_seconds() -> int:
    return int(os.environ.get("DPG_TTL", "20"))


def retry_timeout_seconds() -> int:
    """Patroni's retry_timeout: how long a DCS call may keep failing before the leader gives up its lock."""
    return int(os.environ.get("DPG_RETRY_TIMEOUT", "3"))


def _resolve(raw: object, where: str) -> float:
    text = str(raw).replace(" ", "")
    try:
        if text == "ttl":
            return ttl_seconds() * 1000.0
        if text.startswith("ttl+") or text.startswith("ttl-"):
            return ttl_seconds() * 1000 + float(text[3:])
        return float(text)
    except ValueError:
        raise TopologyError(f"SLO {where}: {raw!r} is neither a number of ms nor 'ttl+<ms>'") from None


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
                note = f" (ttl={ttl_seconds()} s)" if "ttl" in str(raw) else ""
                out[(fault, ep)] = SLO(fault, ep, bound, f"{path.name}: {raw}{note}")
    return out


def bound(fault: str, entry_point: str) -> SLO:
    slos = load()
    try:
        return slos[(fault, entry_point)]
    except KeyError:
        raise TopologyError(f"no SLO for fault {fault!r} x entry point {entry_point!r} in the SLO file") from None


def limit(name: str) -> SLO:
    """A named bound from the SLO file's `limits:` section (times in ms or ttl+<ms>); env DPG_LIMIT_<NAME>."""
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
    note = f" (ttl={ttl_seconds()} s)" if "ttl" in str(raw) else ""
    return SLO(name, "-", _resolve(raw, name), f"{path.name}: {raw}{note}")
