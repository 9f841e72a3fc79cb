"""The Patroni node's failover helpers, outside Docker: restore_command's answers, the before_stop hook and the
postmaster watcher.

restore-wal.sh runs against a fake `pgbackrest` on PATH that records every call; before-stop.py and
postmaster-watch.py against a stand-in postmaster (a child process with a pid file) and a stand-in Patroni REST
API on a free port."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

IMAGE = Path(__file__).resolve().parents[2] / "compose" / "images" / "postgres"
RESTORE = IMAGE / "restore-wal.sh"


# --- restore-wal.sh --------------------------------------------------------------------------------------
@pytest.fixture
def node(tmp_path, monkeypatch):
    """A data directory with pg_wal, a fake pgbackrest (exit code from FAKE_RC, calls logged) and a miss cache."""
    data = tmp_path / "pgdata"
    (data / "pg_wal").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "pgbackrest"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\nsleep "${{FAKE_SLEEP:-0}}"\n'
        f'[ "${{FAKE_RC:-1}}" = 0 ] && echo archived > "$4"\nexit "${{FAKE_RC:-1}}"\n'
    )
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DPG_RESTORE_MISS_DIR": str(tmp_path / "misses")}

    def restore(name: str, **extra: str) -> int:
        return subprocess.run(
            ["bash", str(RESTORE), name, f"pg_wal/RECOVERY-{name}"], cwd=data, env={**env, **extra}, timeout=20
        ).returncode

    def archive_calls() -> int:
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    restore.calls, restore.data = archive_calls, data
    return restore


def test_a_history_file_the_node_holds_is_copied_without_asking_the_archive(node):
    (node.data / "pg_wal" / "00000003.history").write_text("1\t0/3000000\tno recovery target specified\n")
    assert node("00000003.history") == 0
    assert (node.data / "pg_wal" / "RECOVERY-00000003.history").read_text().startswith("1\t0/3000000")
    assert node.calls() == 0


def test_the_copy_of_a_held_history_file_is_byte_identical(node):
    text = "1\t0/3000000\tno recovery target specified\n\n2\t0/5000A0\tno recovery target specified\n"
    (node.data / "pg_wal" / "00000005.history").write_text(text)
    assert node("00000005.history") == 0
    assert (node.data / "pg_wal" / "RECOVERY-00000005.history").read_text() == text


def test_timeline_1_has_no_history_file_and_the_archive_is_not_asked(node):
    assert node("00000001.history") == 1
    assert not (node.data / "pg_wal" / "RECOVERY-00000001.history").exists()
    assert node.calls() == 0
    assert node("00000010.history") == 1  # timeline 16 (hex 10) is asked like any other
    assert node.calls() == 1


def test_a_miss_is_repeated_from_the_cache_within_its_ttl(node):
    assert node("000000030000000000000042") == 1
    assert node("000000030000000000000042") == 1
    assert node("00000004.history") == 1  # a history file the node lacks is a miss like any other
    assert node.calls() == 2  # the second ask of the segment never reached the archive


def test_a_miss_is_asked_again_after_its_ttl(node):
    assert node("000000030000000000000042", DPG_RESTORE_MISS_TTL_MS="100") == 1
    time.sleep(0.2)
    assert node("000000030000000000000042", DPG_RESTORE_MISS_TTL_MS="100") == 1
    assert node.calls() == 2


def test_ttl_zero_asks_the_archive_every_time(node):
    for _ in range(3):
        assert node("000000030000000000000042", DPG_RESTORE_MISS_TTL_MS="0") == 1
    assert node.calls() == 3


def test_found_files_are_never_cached(node):
    assert node("000000030000000000000041", FAKE_RC="0") == 0
    assert (node.data / "pg_wal" / "RECOVERY-000000030000000000000041").read_text() == "archived\n"
    assert node("000000030000000000000041", FAKE_RC="0") == 0
    assert node.calls() == 2


def test_a_silent_repository_is_believed_down_for_its_ttl_then_asked_again(node):
    assert node("000000030000000000000043", FAKE_RC="103") == 103  # repository unreachable: PostgreSQL goes on
    assert node("000000030000000000000044", FAKE_RC="0") == 3  # within the ttl: "not available", never asked
    assert node.calls() == 1
    assert node("000000030000000000000044", FAKE_RC="0", DPG_RESTORE_DOWN_TTL_MS="0") == 0  # off: asked again
    assert node("000000030000000000000045", FAKE_RC="1") == 1  # a real answer cleared the belief
    assert node.calls() == 3


def test_an_archive_get_that_hangs_is_cut_at_the_restore_timeout(node):
    started = time.monotonic()
    assert node("000000030000000000000046", FAKE_SLEEP="30", DPG_RESTORE_TIMEOUT_S="1") == 124
    assert time.monotonic() - started < 5
    assert node("000000030000000000000047", FAKE_RC="0") == 3  # and the repository is believed down


# --- before-stop.py ------------------------------------------------------------------------------------------
def _load_script(name: str, monkeypatch, tmp_path, api_port: int):
    """An image script as a module, pointed at a pid file under tmp_path and the stand-in REST API."""
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), IMAGE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "PIDFILE", str(tmp_path / "postmaster.pid"))
    monkeypatch.setattr(module, "PATRONI_API", ("127.0.0.1", api_port))
    return module


def _load_hook(monkeypatch, tmp_path, api_port: int):
    hook = _load_script("before-stop", monkeypatch, tmp_path, api_port)
    monkeypatch.setattr(hook, "STOP_MARKER", str(tmp_path / "dpg-stop-requested"))
    return hook


class _Patroni(socketserver.TCPServer):
    allow_reuse_address = True


@pytest.fixture
def patroni_api():
    """A stand-in for Patroni's REST API: OPTIONS /leader answers `status[0]`."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_OPTIONS(self):
            self.send_response(status[0])
            self.end_headers()

        def do_PATCH(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status.append((time.monotonic(), self.path, json.loads(body)))  # after status[0]: the calls seen
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _Patroni(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], status
    server.shutdown()
    server.server_close()


@pytest.fixture
def postmaster(tmp_path):
    """A child process standing in for the postmaster: exits on SIGINT unless told to ignore it."""
    procs = []

    def start(ignore_sigint: bool = False) -> subprocess.Popen:
        code = (
            "import signal, time\n"
            + ("signal.signal(signal.SIGINT, signal.SIG_IGN)\n" if ignore_sigint else "")
            + "time.sleep(30)\n"
        )
        p = subprocess.Popen([sys.executable, "-c", code])
        procs.append(p)
        time.sleep(0.2)  # let it install its handler
        (tmp_path / "postmaster.pid").write_text(f"{p.pid}\n/data/pgdata\n")
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (exited, not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _exit_signal(proc: subprocess.Popen) -> int:
    """How the stand-in ended. `poll()` is not enough: it returns None while the reaper thread of
    _reap_and_remove_pidfile still holds Popen's waitpid lock, even after the process is gone (seen once)."""
    return proc.wait(timeout=5)


def _reap_and_remove_pidfile(proc: subprocess.Popen, pidfile: Path) -> None:
    """What dumb-init and PostgreSQL do once the postmaster exits: reap it, remove postmaster.pid."""

    def watch():
        proc.wait()
        pidfile.unlink(missing_ok=True)

    threading.Thread(target=watch, daemon=True).start()


def test_hook_stops_the_leaders_postmaster_and_waits_for_it(monkeypatch, tmp_path, patroni_api, postmaster):
    port, _status = patroni_api
    hook = _load_hook(monkeypatch, tmp_path, port)
    pm = postmaster()
    _reap_and_remove_pidfile(pm, tmp_path / "postmaster.pid")
    assert hook.main() == 0
    assert not _running(pm.pid), "the hook returned while the postmaster still ran"
    assert _exit_signal(pm) == -signal.SIGINT  # PostgreSQL's fast shutdown signal


def test_hook_leaves_a_primary_that_lost_the_leader_key_to_patroni(monkeypatch, tmp_path, patroni_api, postmaster):
    port, status = patroni_api
    status[0] = 503  # Patroni demotes it with an immediate stop: do not slow that down
    hook = _load_hook(monkeypatch, tmp_path, port)
    pm = postmaster()
    assert hook.main() == 0
    assert pm.poll() is None


def test_hook_takes_over_a_container_stop_when_the_api_is_already_closed(monkeypatch, tmp_path, postmaster):
    hook = _load_hook(monkeypatch, tmp_path, _free_port())
    (tmp_path / "dpg-stop-requested").touch()
    pm = postmaster()
    _reap_and_remove_pidfile(pm, tmp_path / "postmaster.pid")
    assert hook.main() == 0
    assert not _running(pm.pid), "the hook returned while the postmaster still ran"
    assert _exit_signal(pm) == -signal.SIGINT


def test_hook_hands_back_to_patroni_when_the_postmaster_outlives_the_bound(
    monkeypatch, tmp_path, patroni_api, postmaster
):
    port, _ = patroni_api
    hook = _load_hook(monkeypatch, tmp_path, port)
    monkeypatch.setenv("DPG_BEFORE_STOP_WAIT_S", "0.5")
    pm = postmaster(ignore_sigint=True)  # e.g. an archiver stuck on an unreachable repository
    started = time.monotonic()
    assert hook.main() == 0
    assert 0.5 <= time.monotonic() - started < 3
    assert pm.poll() is None


def test_hook_does_nothing_without_a_postmaster(monkeypatch, tmp_path, patroni_api):
    port, _ = patroni_api
    hook = _load_hook(monkeypatch, tmp_path, port)
    assert hook.main() == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- postmaster-watch.py -------------------------------------------------------------------------------------
def _load_watcher(monkeypatch, tmp_path, api_port: int):
    watcher = _load_script("postmaster-watch", monkeypatch, tmp_path, api_port)
    monkeypatch.setattr(watcher, "POSTMASTER_NAMES", (*watcher.POSTMASTER_NAMES, Path(sys.executable).name[:15]))
    return watcher


def _in_thread(fn, *args) -> list:
    result: list = []
    threading.Thread(target=lambda: result.append(fn(*args)), daemon=True).start()
    return result


def test_watcher_wakes_patroni_right_after_the_postmaster_is_killed(monkeypatch, tmp_path, patroni_api, postmaster):
    port, calls = patroni_api
    watcher = _load_watcher(monkeypatch, tmp_path, port)
    pm = postmaster()
    watched = _in_thread(watcher.watch_once)
    time.sleep(0.3)
    assert len(calls) == 1  # nothing sent while the postmaster runs
    killed = time.monotonic()
    pm.kill()
    pm.wait()  # reaped, as dumb-init does
    deadline = time.monotonic() + 3
    while not watched and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watched == [pm.pid]
    ((woken_at, path, body),) = calls[1:]
    assert path == "/config" and body == {"dpg_postmaster_watch_wakeup": None}  # deletes a key nobody has
    assert woken_at - killed < 0.5  # at once, not at Patroni's next cycle (loop_wait >= 1 s)


def test_watcher_ignores_a_stale_pid_file_and_waits_for_the_next_postmaster(
    monkeypatch, tmp_path, patroni_api, postmaster
):
    port, calls = patroni_api
    watcher = _load_watcher(monkeypatch, tmp_path, port)
    old = postmaster()
    old.kill()
    old.wait()  # postmaster.pid still names it, as after a kill -9
    watched = _in_thread(watcher.next_postmaster)
    time.sleep(0.3)
    assert watched == []  # a dead pid is not watched (nor woken for) again
    new = postmaster()
    deadline = time.monotonic() + 3
    while not watched and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watched == [new.pid] and len(calls) == 1


def test_watcher_gives_up_quietly_when_patroni_does_not_answer(monkeypatch, tmp_path):
    watcher = _load_watcher(monkeypatch, tmp_path, _free_port())
    assert watcher.wake_patroni().startswith("no answer")
