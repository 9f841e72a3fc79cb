"""Every relative link in README.md and docs/*.md points at a file that exists, and an anchor at a heading there.

Anchors follow GitHub's rule: the heading's text, lower-cased, without punctuation other than `-` and `_`, spaces
turned into `-`, a repeated heading numbered `-1`, `-2` ... Links inside code (fenced blocks, backticks) are text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _prose(text: str, *, keep_code: bool = False) -> list[str]:
    """The document's lines outside fenced code blocks, with inline code removed (kept for headings' slugs)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line if keep_code else re.sub(r"`[^`]*`", "", line))
    return out


def slug(heading: str) -> str:
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path.read_text(encoding="utf-8"), keep_code=True):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    found = []
    for line in _prose(path.read_text(encoding="utf-8")):
        for m in LINK.finditer(line):
            target = m.group(1) or m.group(2)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
                found.append(target)
    return found


def test_slugs_follow_githubs_rule():
    assert slug("Several Docker hosts (multi-host mode)") == "several-docker-hosts-multi-host-mode"
    assert slug("`python -m reports docs`: generated tables") == "python--m-reports-docs-generated-tables"
    assert slug("Soft faults: p95 ≤ 1.5 s") == "soft-faults-p95--15-s"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    broken = []
    for target in links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.is_relative_to(REPO):
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


#: where settings are read: the harness, the compose files and image scripts, the CI scripts
SETTING_SOURCES = ("chaos", "topology", "reports", "suites", "faultproxy", "compose", ".ci", "conftest.py")
SETTING = re.compile(r"\bDPG_[A-Z0-9_]*[A-Z0-9]\b")
NOT_SETTINGS = {"DPG_PORT_PATRONI_N_API"}  # a placeholder in a docstring, not a variable
#: files that name made-up variables on purpose (the settings check must reject them)
NOT_SOURCES = {"suites/unit/test_settings.py"}


def _files(name: str):
    path = REPO / name
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from (p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_every_setting_is_documented():
    """Every DPG_* variable the code, compose or CI reads is named in docs/configuration.md (prefixes such as
    DPG_PORT_ are families whose members are listed one by one)."""
    documented = set(SETTING.findall((REPO / "docs" / "configuration.md").read_text(encoding="utf-8")))
    used: dict[str, str] = {}
    for source in SETTING_SOURCES:
        for path in _files(source):
            if str(path.relative_to(REPO)) in NOT_SOURCES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            for name in SETTING.findall(text):
                used.setdefault(name, str(path.relative_to(REPO)))
    missing = sorted(f"{n} ({where})" for n, where in used.items() if n not in documented | NOT_SETTINGS)
    assert not missing, "not in docs/configuration.md: " + ", ".join(missing)
