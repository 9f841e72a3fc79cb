"""The CPU sampler's host shares: busy includes the hypervisor's steal, and steal is reported on its own."""

from chaos.clients.load import cpu

# /proc/stat's first line: user nice system idle iowait irq softirq steal
BEFORE = "cpu  1000 0 1000 8000 0 0 0 0 0 0\n"
AFTER = "cpu  1100 0 1100 8700 0 0 0 100 0 0\n"  # 1000 ticks: 200 user+system, 700 idle, 100 steal


def test_steal_is_busy_and_reported_apart(monkeypatch):
    lines = iter([BEFORE, AFTER])
    monkeypatch.setattr(cpu, "Path", lambda p: type("P", (), {"read_text": lambda self: next(lines)})())
    monkeypatch.setattr(cpu, "_host_process_ticks", lambda: {})
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    usage = cpu.CpuSampler({}).start().stop()
    assert usage.host_busy == 0.3
    assert usage.steal == 0.1
    assert usage.containers[cpu.STEAL] == 0.2  # cores: 10 % of 2


def test_no_steal_no_entry(monkeypatch):
    lines = iter([BEFORE, BEFORE.replace("8000", "9000")])
    monkeypatch.setattr(cpu, "Path", lambda p: type("P", (), {"read_text": lambda self: next(lines)})())
    monkeypatch.setattr(cpu, "_host_process_ticks", lambda: {})
    usage = cpu.CpuSampler({}).start().stop()
    assert usage.steal == 0.0 and cpu.STEAL not in usage.containers
