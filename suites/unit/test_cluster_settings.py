"""chaos.experiments.cluster_settings: the member-probe timeout a run asks for is what the cluster has while it runs,
and only then; the settings variant keeps other populations out of a fault's numbers. No cluster: a stand-in API."""

from __future__ import annotations

import pytest

from chaos.experiments import cluster_settings
from chaos.experiments.cluster_settings import PROBE_KEY, member_probe_timeout, variant
from chaos.faults import active

pytestmark = pytest.mark.unit


class FakeResponse:
    def __init__(self, body: dict) -> None:
        self.body = body

    def json(self) -> dict:
        return self.body


class FakeAPI:
    """Patroni's /config as a dict: PATCH merges, a null value deletes the key (as Patroni does)."""

    def __init__(self, config: dict) -> None:
        self.config = dict(config)
        self.patches: list[dict] = []

    def request(self, method: str, path: str, *, json: dict | None = None, **_: object) -> FakeResponse:
        assert path == "/config"
        if method == "PATCH":
            self.patches.append(dict(json or {}))
            for key, value in (json or {}).items():
                if value is None:
                    self.config.pop(key, None)
                else:
                    self.config[key] = value
        return FakeResponse(dict(self.config))


@pytest.fixture
def api(monkeypatch):
    fake = FakeAPI({"ttl": 20})
    # every node "loads" what the DCS holds at once; no loop_wait to sleep through
    monkeypatch.setattr(cluster_settings, "_seen_by_every_node", lambda value: fake.config.get(PROBE_KEY) == value)
    monkeypatch.setattr(cluster_settings.time, "sleep", lambda s: None)
    return fake


def test_stock_run_on_a_stock_cluster_changes_nothing(api, monkeypatch):
    monkeypatch.delenv("DPG_MEMBER_PROBE_TIMEOUT_MS", raising=False)
    with member_probe_timeout(api) as ms:
        assert ms == 2000
    assert api.patches == []


def test_opt_in_is_set_for_the_run_and_restored_even_when_the_run_fails(api, monkeypatch):
    monkeypatch.setenv("DPG_MEMBER_PROBE_TIMEOUT_MS", "500")
    with pytest.raises(RuntimeError, match="scenario failed"):
        with member_probe_timeout(api) as ms:
            assert ms == 500 and api.config[PROBE_KEY] == 500
            raise RuntimeError("scenario failed")
    assert PROBE_KEY not in api.config and api.patches == [{PROBE_KEY: 500}, {PROBE_KEY: None}]
    assert not active(), "the setting is a registered fault while it lasts, healed after"


def test_stock_run_removes_a_leftover_of_a_killed_run(api, monkeypatch):
    monkeypatch.delenv("DPG_MEMBER_PROBE_TIMEOUT_MS", raising=False)
    api.config[PROBE_KEY] = 500  # a run killed before its heal
    with member_probe_timeout(api):
        assert PROBE_KEY not in api.config
    assert PROBE_KEY not in api.config  # removed for good, not restored


def test_variant_names_only_settings_that_change_failover_costs():
    assert variant({"ttl": 20, "synchronous_mode": False}) == ""
    assert variant({PROBE_KEY: 2000}) == ""  # explicitly Patroni's own value
    assert variant({"synchronous_mode": True, PROBE_KEY: 500}) == "synchronous_mode, member probe 500 ms"
    assert variant({"failsafe_mode": True}) == "failsafe_mode"


def test_a_target_is_its_own_population(monkeypatch):
    """Rows measured on a deployment the suite did not start never mix with the embedded topology's."""
    from types import SimpleNamespace

    from topology import inventory

    monkeypatch.setattr(inventory, "current", lambda: SimpleNamespace(kind="target", name="seedcopy-local", hosts={}))
    assert variant({}) == "target seedcopy-local"
    assert variant({"synchronous_mode": True}) == "target seedcopy-local, synchronous_mode"


def test_chaos_heal_removes_a_leftover_key_and_says_so(monkeypatch):
    from chaos.faults import heal
    from topology import patroni_api as patroni

    fake = FakeAPI({"ttl": 20, PROBE_KEY: 500})
    fake.last_url = "http://127.0.0.1:8008"
    fake.is_paused = lambda: False
    monkeypatch.setattr(patroni, "PatroniAPI", lambda *a, **k: fake)
    assert heal._reap_patroni(dry_run=True) == [
        f"would remove {PROBE_KEY}=500 from Patroni's dynamic config via http://127.0.0.1:8008"
    ]
    assert fake.config[PROBE_KEY] == 500
    assert heal._reap_patroni() == [f"removed {PROBE_KEY}=500 from Patroni's dynamic config via http://127.0.0.1:8008"]
    assert PROBE_KEY not in fake.config
    assert heal._reap_patroni() == []  # nothing left: nothing said


def test_a_failing_maintenance_check_does_not_hide_the_leftover_key(monkeypatch):
    from chaos.faults import heal
    from topology import patroni_api as patroni

    fake = FakeAPI({PROBE_KEY: 500})
    fake.last_url = "http://127.0.0.1:8008"
    monkeypatch.setattr(patroni, "PatroniAPI", lambda *a, **k: fake)  # no is_paused: AttributeError
    assert heal._reap_patroni() == [f"removed {PROBE_KEY}=500 from Patroni's dynamic config via http://127.0.0.1:8008"]


def test_report_labels_give_back_the_probe_the_variant_named():
    from chaos.checkers.slo import probe_of_variant
    from reports.aggregate import row_label

    label = row_label({"fault": "freeze", "variant": variant({"synchronous_mode": True, PROBE_KEY: 500})})
    assert probe_of_variant(label) == 500
    assert probe_of_variant(row_label({"fault": "freeze", "variant": variant({})})) == 2000
