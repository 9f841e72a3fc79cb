"""The list-append experiment: steady state -> list-append clients through every path -> a body (sleep, a leader
fault, a nemesis schedule) -> heal -> final reads of every key -> Elle's analysis -> evidence.

    result = TxnExperiment(client, "no_fault", isolation="serializable").run(lambda work: time.sleep(15))

`ListAppendFailover` is the failover experiment (chaos.experiments.failover) with the list-append clients running
through it: the write gap, set and split-brain checks as before, the fault's marks in both records, its rows tagged
`list-append clients` (the workload's distortion of the gap is the difference to the untagged rows).

Evidence per run (Allure + reports/out/txn/): the history in Elle's jsonl (re-check it with `python -m chaos
txn-check FILE --model M`), the verdict JSON (whole history, RW paths, each path's view, lost appends), the
explanations in words, one PNG per cycle, and one `consistency` measurement row per path (plus `all`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allure
import docker

from chaos.checkers import consistency
from chaos.checkers.elle import plot
from chaos.checkers.elle.explain import report
from chaos.clients.listappend import AppendSettings, ListAppend, Tee
from chaos.experiments.failover import FailoverExperiment, FaultFactory, node_of_ip
from topology import endpoints, evidence
from topology.endpoints import Endpoint
from topology.health import assert_healthy
from topology.inventory import current
from topology.timeouts import TIMEOUTS
from topology.waiting import WaitTimeout, wait_for

KIND = "consistency"


def rw_paths() -> list[Endpoint]:
    return endpoints.write_paths()


def ro_paths() -> list[Endpoint]:
    return [endpoints.haproxy_ro(), endpoints.traefik_ro()]


@dataclass
class TxnResult:
    scenario: str
    isolation: str
    analysis: dict[str, Any]
    summary: dict[str, Any]
    history_file: Path
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def whole(self) -> dict[str, Any]:
        return self.analysis["whole"]

    @property
    def rw(self) -> dict[str, Any]:
        return self.analysis["rw"]

    @property
    def rw_promise(self) -> dict[str, Any]:
        """The RW paths' verdict with lost acknowledged appends forgiven (when there were any)."""
        return self.analysis["rw_forgiven"] or self.analysis["rw"]

    def promise_views(self) -> dict[str, dict[str, Any]]:
        """Each path's view with the lost tail forgiven (when there was one): what a promise is checked on."""
        return self.analysis["paths_forgiven"] or self.analysis["paths"]

    def path(self, name: str) -> dict[str, Any]:
        return self.analysis["paths"][name]

    @property
    def lost(self) -> list[dict[str, Any]]:
        return self.analysis["lost"]["lost"]

    def oks(self, path: str) -> int:
        return self.analysis["counts"].get(path, {}).get("ok", 0)

    def describe(self) -> str:
        """One paragraph for assertion messages."""
        rows = [f"{p}: {consistency.brief(r)['anomalies'] or 'no anomaly'}, strongest {r['strongest']}"
                for p, r in self.analysis["paths"].items()]  # fmt: skip
        whole = self.whole["anomalies"] or "no anomaly"
        head = f"{self.scenario} at {self.isolation}: whole {whole} (strongest {self.whole['strongest']})"
        return f"{head}; lost appends {len(self.lost)}; " + "; ".join(rows)


def _ro_user() -> str:
    inv = current()
    return inv.login("readonly").user if "readonly" in inv.logins else "readonly_user"


class TxnExperiment:
    """List-append clients through the given paths around a body; healed, read back and checked."""

    def __init__(
        self,
        client: docker.DockerClient,
        scenario: str,
        *,
        isolation: str = "serializable",
        rw: list[Endpoint] | None = None,
        ro: list[Endpoint] | None = None,
        settings: AppendSettings | None = None,
        seed: int = 0,
        variant: str = "",
        stacks: tuple[str, ...] = ("patroni", "pgbouncer", "traefik"),
    ):
        self.client, self.scenario, self.seed, self.variant = client, scenario, seed, variant
        self.rw = rw if rw is not None else rw_paths()
        self.ro = ro if ro is not None else ro_paths()
        base = settings or AppendSettings()
        self.settings = AppendSettings(**{**base.__dict__, "isolation": isolation})
        self.stacks = list(stacks)
        self.work: ListAppend | None = None

    def start(self) -> ListAppend:
        """The workload, tables created (not yet running)."""
        work = ListAppend(self.rw, self.ro, self.settings, seed=self.seed, node_of=node_of_ip())
        work.setup(endpoints.haproxy(), _ro_user())
        self.work = work
        return work

    def wait_steady(self, work: ListAppend, within: float = 20.0) -> None:
        """Every path has committed a transaction (a path that never does is a setup problem, said at once)."""
        want = [ep.name for ep in self.rw + self.ro]

        def ready() -> bool:
            c = consistency.counts(work.recorder.ops())
            return all(c.get(p, {}).get("ok", 0) > 0 for p in want)

        try:
            wait_for(ready, within=within, what="an ok transaction on every path", every=0.2)
        except WaitTimeout:
            raise AssertionError(f"no steady state: {consistency.counts(work.recorder.ops())}") from None

    def run(self, body: Callable[[ListAppend], Any]) -> TxnResult:
        with allure.step(f"steady state: {', '.join(self.stacks)} healthy"):
            assert_healthy(self.client, self.stacks)
        started = time.monotonic()
        work = self.start()
        with allure.step(f"list-append at {self.settings.isolation}: {len(work.sessions)} processes"):
            extra: Any = None
            with work.running():
                self.wait_steady(work)
                extra = body(work)
        with allure.step("heal: the cluster healthy again"):
            assert_healthy(self.client, self.stacks, within=TIMEOUTS.rejoin)
        return self.finish(work, started, extra=extra if isinstance(extra, dict) else {})

    def finish(self, work: ListAppend, started: float, *, extra: dict[str, Any] | None = None) -> TxnResult:
        with allure.step("final reads of every key through haproxy"):
            read = work.final_reads(endpoints.haproxy())
        with allure.step("check: Elle's list-append analysis"):
            ops = work.recorder.ops()
            analysis = consistency.analyse(ops)
            result = TxnResult(self.scenario, self.settings.isolation, analysis, work.summary(),
                               self._save(work), round(time.monotonic() - started, 1), extra or {})  # fmt: skip
            result.summary["final_keys_read"] = read
            self._evidence(result)
        return result

    def _save(self, work: ListAppend) -> Path:
        out = evidence.OUT_DIR / "txn" / f"{self.scenario}-{self.settings.isolation}-{int(time.time())}.jsonl"
        work.recorder.write(out)
        allure.attach.file(str(out), name=f"{self.scenario} history (Elle jsonl)", extension="jsonl",
                           attachment_type=allure.attachment_type.TEXT)  # fmt: skip
        return out

    def _evidence(self, r: TxnResult) -> None:
        a = r.analysis
        evidence.attach_json("consistency verdict", {
            "whole": a["whole"]["verdict"],
            "rw": consistency.brief(a["rw"]),
            "rw_forgiven": consistency.brief(a["rw_forgiven"]) if a["rw_forgiven"] else None,
            "paths": {p: consistency.brief(v) for p, v in a["paths"].items()},
            "paths_forgiven": {p: consistency.brief(v) for p, v in (a["paths_forgiven"] or {}).items()},
            "lost": a["lost"], "counts": a["counts"], "staleness": a["staleness"], "summary": r.summary,
            "extra": r.extra,
            "history_file": str(r.history_file),
        })  # fmt: skip
        text = [f"whole history ({r.history_file.name}):", report(a["whole"]["verdict"])]
        for p, v in a["paths"].items():
            if v["valid"] is not True:
                text += ["", f"view of {p}:", report(v["verdict"])]
        if a["lost"]["lost"]:
            text += ["", f"lost acknowledged appends ({len(a['lost']['lost'])}):"]
            text += [f"  key {x['key']} value {x['value']} (index {x['index']}, {x['path']} on {x['server']})"
                     for x in a["lost"]["lost"][:20]]  # fmt: skip
        evidence.attach_text("consistency explanations", "\n".join(text))
        with contextlib.suppress(Exception):  # a picture must not fail the scenario it documents
            for png in plot(a["whole"]["verdict"], Path(tempfile.mkdtemp(prefix="dpg-elle-")), limit=5):
                evidence.attach_png(f"cycle {png.stem}", png)
        self._record(r)

    def _record(self, r: TxnResult) -> None:
        a = r.analysis
        common = {"scenario": r.scenario, "isolation": r.isolation, "variant": self.variant, "seed": self.seed,
                  "seconds": r.seconds, "history": str(r.history_file)}  # fmt: skip
        total = {
            o: sum(c[o] for p, c in a["counts"].items() if not p.startswith("final")) for o in ("ok", "fail", "info")
        }
        evidence.record_measurement(KIND, path="all", **common, **total, anomalies=a["whole"]["anomalies"],
                                    strongest=a["whole"]["strongest"], valid=a["whole"]["valid"],
                                    lost=len(a["lost"]["lost"]), recovered=a["lost"]["recovered"],
                                    rw_strongest=r.rw_promise["strongest"])  # fmt: skip
        for p, v in a["paths"].items():
            c = {o: a["counts"].get(p, {}).get(o, 0) for o in ("ok", "fail", "info")}
            stale = a["staleness"].get(p, {})
            evidence.record_measurement(KIND, path=p, **common, **c, anomalies=v["anomalies"],
                                        strongest=v["strongest"], valid=v["valid"],
                                        stale_max_s=stale.get("max_s"), stale_reads=stale.get("stale"))  # fmt: skip


class ListAppendFailover(FailoverExperiment):
    """The failover experiment with list-append clients running through it (module doc)."""

    def __init__(self, client: docker.DockerClient, fault: str, txn: TxnExperiment, **kwargs: Any):
        super().__init__(client, fault, **kwargs)
        self.txn = txn
        self.txn_result: TxnResult | None = None

    def _run(self, inject: FaultFactory, old: str, tl_before: int | None):
        self.variant = ", ".join(p for p in (self.variant, "list-append clients") if p)
        started = time.monotonic()
        work = self.txn.start()
        with work.running() as rec:
            self.txn.wait_steady(work)
            result = super()._run(lambda leader, h: inject(leader, Tee(h, rec)), old, tl_before)
        self.txn_result = self.txn.finish(work, started, extra={"failover": result.summary()})
        return result
