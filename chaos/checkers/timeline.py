"""Timeline PNGs for Allure: what each entry point saw, against when faults were injected.

Uses matplotlib's object API with the Agg canvas (no pyplot global state), so rendering is
headless and safe to call from pytest workers and threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from chaos.checkers.writes import GapReport, leader_changes, write_gap
from chaos.history import History, Mark, Op

#: Server colours; green first so a single-leader run shows "ok writes are green".
SERVER_COLOURS = ("tab:green", "tab:blue", "tab:purple", "tab:brown", "tab:cyan", "tab:olive", "tab:pink", "tab:gray")
FAIL_COLOUR = "tab:red"
INFO_COLOUR = "tab:orange"
MARK_COLOURS = {"inject": "tab:red", "heal": "tab:green", "leader": "tab:blue", "leader-change": "tab:blue"}


def render_timeline(
    history: History,
    path: str | Path,
    *,
    title: str,
    slo_ms: Mapping[str, float] | None = None,
    show_derived_leader_changes: bool = True,
) -> Path:
    """One lane per probe over seconds since the first op; returns `path`.

    `slo_ms` maps probe -> max acceptable write gap (key "*" is the default for all probes);
    a lane whose longest gap exceeds it is annotated in red. Derived leader changes (from
    acknowledging servers) are drawn dotted, harness `Mark`s dashed.
    """
    path = Path(path)
    ops = history.ops()
    probes = history.probes()
    marks = history.marks()
    lanes_h = 1.6 + 0.7 * max(len(probes), 1)
    key_h = 0.3 + 0.17 * len(marks)
    fig = Figure(figsize=(13, lanes_h + (key_h if marks else 0)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if marks:
        ax, key = fig.subplots(2, 1, height_ratios=(lanes_h, key_h))
    else:
        ax, key = fig.add_subplot(), None
    ax.set_title(title, pad=14)  # room for the mark numbers above the lanes
    if not ops:
        _no_data(ax, marks, key)
    else:
        t0 = min(o.wall for o in ops)
        colours = _server_colours(ops)
        for lane, probe in enumerate(probes):
            probe_ops = history.ops(probe=probe)
            _draw_lane(ax, lane, probe_ops, t0, colours)
            if any(o.kind == "write" for o in probe_ops):
                _annotate_gap(ax, lane, write_gap(history, probe), _slo_for(slo_ms, probe))
            else:
                _annotate_reads(ax, lane, probe_ops)
        _draw_marks(ax, marks, t0, key)
        if show_derived_leader_changes:
            _draw_leader_changes(ax, history, t0)
        ax.set_yticks(range(len(probes)), probes)
        ax.set_ylim(-0.7, len(probes) - 0.3)
        ax.set_xlabel("seconds since first op (wall clock)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(handles=_legend(colours), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return _save(fig, path)


def render_gap_summary(
    reports: Mapping[str, GapReport],
    path: str | Path,
    *,
    title: str = "Longest write gap per entry point",
    slo_ms: Mapping[str, float] | None = None,
) -> Path:
    """Horizontal bar chart of `longest_gap_ms` per probe; bars over their SLO are red."""
    path = Path(path)
    names = sorted(reports)
    fig = Figure(figsize=(9, 1.4 + 0.45 * max(len(names), 1)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    if not names:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=14)
        ax.set_axis_off()
        return _save(fig, path)
    gaps = [reports[n].longest_gap_ms or 0.0 for n in names]
    slos = [_slo_for(slo_ms, n) or reports[n].slo_ms for n in names]
    colours = ["tab:red" if s is not None and g > s else "tab:blue" for g, s in zip(gaps, slos, strict=True)]
    ax.barh(names, gaps, color=colours)
    for y, (name, gap, slo) in enumerate(zip(names, gaps, slos, strict=True)):
        label = "n/a" if reports[name].longest_gap_ms is None else f"{gap:.0f} ms"
        ax.text(gap, y, f" {label}", va="center", fontsize="small")
        if slo is not None:
            ax.plot([slo, slo], [y - 0.4, y + 0.4], color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("longest gap between acknowledged writes (ms); dashed = SLO")
    ax.margins(x=0.15)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _no_data(ax: Axes, marks: list[Mark], key: Axes | None = None) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=16, color="grey")
    ax.set_yticks([])
    if marks:
        _draw_marks(ax, marks, min(m.wall for m in marks), key)
    else:
        ax.set_xticks([])


def _server_colours(ops: list[Op]) -> dict[str | None, str]:
    """Stable colour per acknowledging node/server, in order of first acknowledgement."""
    seen: dict[str | None, str] = {}
    for o in sorted(ops, key=lambda o: o.wall):
        if o.outcome == "ok" and _who(o) not in seen:
            seen[_who(o)] = SERVER_COLOURS[len(seen) % len(SERVER_COLOURS)]
    return seen


def _who(op: Op) -> str | None:
    return op.node or op.server


def _draw_lane(ax: Axes, lane: int, ops: list[Op], t0: float, colours: dict[str | None, str]) -> None:
    by_colour: dict[str, list[float]] = {}
    reads = [o.wall - t0 for o in ops if o.kind != "write" and o.outcome == "ok"]
    for o in ops:
        if o.kind == "write" and o.outcome == "ok":
            by_colour.setdefault(colours.get(_who(o), SERVER_COLOURS[0]), []).append(o.wall - t0)
    for colour, xs in by_colour.items():
        ax.scatter(xs, [lane] * len(xs), s=9, color=colour, marker="o", linewidths=0, zorder=3)
    if reads:
        ax.scatter(reads, [lane - 0.18] * len(reads), s=7, facecolors="none", edgecolors="grey", linewidths=0.5)
    for outcome, marker, colour in (("fail", "x", FAIL_COLOUR), ("info", "^", INFO_COLOUR)):
        xs = [o.wall - t0 for o in ops if o.outcome == outcome]
        if xs:
            ax.scatter(xs, [lane + 0.12] * len(xs), s=22, color=colour, marker=marker, linewidths=1, zorder=4)


def _annotate_gap(ax: Axes, lane: int, report: GapReport, slo: float | None) -> None:
    if report.longest_gap_ms is None:
        text, over = "gap: n/a (<2 ok writes)", slo is not None
    else:
        text, over = f"longest gap {report.longest_gap_ms:.0f} ms", slo is not None and report.longest_gap_ms > slo
    if slo is not None:
        text += f" (SLO {slo:.0f} ms)"
    ax.annotate(
        text,
        xy=(0.0, lane + 0.3),
        xycoords=("axes fraction", "data"),
        fontsize="small",
        color="tab:red" if over else "black",
        fontweight="bold" if over else "normal",
    )


def _annotate_reads(ax: Axes, lane: int, ops: list[Op]) -> None:
    """A read-only probe has no write gap: say what it saw instead."""
    ok = sum(o.outcome == "ok" for o in ops)
    failed = sum(o.outcome != "ok" for o in ops)
    ax.annotate(
        f"reads: {ok} ok, {failed} not ok",
        xy=(0.0, lane + 0.3),
        xycoords=("axes fraction", "data"),
        fontsize="small",
        color="black",
    )


def _slo_for(slo_ms: Mapping[str, float] | None, probe: str) -> float | None:
    if not slo_ms:
        return None
    return slo_ms.get(probe, slo_ms.get("*"))


def _draw_marks(ax: Axes, marks: list[Mark], t0: float, key: Axes | None = None) -> None:
    """Each mark is a dashed line numbered at the top; its full text goes into `key` (a text panel below), so
    long fault descriptions never run over the lanes."""
    lines = []
    for number, m in enumerate(sorted(marks, key=lambda m: m.wall), start=1):
        colour = MARK_COLOURS.get(m.action, "dimgrey")
        x = m.wall - t0
        ax.axvline(x, color=colour, linestyle="--", linewidth=1, alpha=0.8, zorder=2)
        ax.annotate(
            str(number),
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            va="bottom",
            ha="center",
            fontsize="x-small",
            fontweight="bold",
            color=colour,
        )
        detail = f": {m.detail}" if m.detail else ""
        lines.append((f"[{number}] {x:+7.2f} s  {m.action} {m.target}{detail}"[:170], colour))
    if key is None:
        return
    key.set_axis_off()
    for row, (text, colour) in enumerate(lines):
        key.text(
            0.0,
            1.0 - (row + 0.5) / max(len(lines), 1),
            text,
            transform=key.transAxes,
            va="center",
            ha="left",
            fontsize="x-small",
            family="monospace",
            color=colour,
        )


def _draw_leader_changes(ax: Axes, history: History, t0: float) -> None:
    for change in leader_changes(history):
        x = change.ts - t0
        ax.axvline(x, color="tab:blue", linestyle=":", linewidth=1, alpha=0.7, zorder=2)
        tl = f" tl{change.timeline}" if change.timeline is not None else ""
        ax.annotate(
            f"acks: {change.old} → {change.new}{tl}",
            xy=(x, 0.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="bottom",
            ha="left",
            fontsize="x-small",
            color="tab:blue",
        )


def _legend(colours: dict[str | None, str]) -> list[Line2D]:
    def dot(colour: str, marker: str, label: str) -> Line2D:
        return Line2D([], [], color=colour, marker=marker, linestyle="", label=label)

    handles = [dot(c, "o", f"ok write @ {who or 'unknown'}") for who, c in colours.items()]
    handles += [
        dot(FAIL_COLOUR, "x", "fail"),
        dot(INFO_COLOUR, "^", "info (unknown)"),
        Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="", label="ok read"),
        Line2D([], [], color="dimgrey", linestyle="--", label="fault / heal mark"),
        Line2D([], [], color="tab:blue", linestyle=":", label="leader change (acks)"),
    ]
    return handles


# ---------------------------------------------------------------- load timelines (chaos under load)


def render_load_timeline(
    windows: Sequence[Any],
    path: str | Path,
    *,
    title: str,
    marks: Sequence[tuple[float, str]] = (),
    width_s: float = 0.25,
    slo_ms: float | None = None,
) -> Path:
    """Two stacked panels over seconds since the load started: acknowledged and failed requests per second
    (top), p50/p99/max latency per window on a log scale (bottom). `windows` are chaos.checkers.under_load.Window
    (t, ok, failed, p50_ms, p99_ms, max_ms); `marks` are (seconds, label) drawn as dashed lines on both panels;
    `slo_ms` is drawn as a horizontal reference on the latency panel."""
    path = Path(path)
    fig = Figure(figsize=(13, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.2, 1))
    top.set_title(title)
    if not windows:
        _no_data(top, [])
        bottom.set_axis_off()
        return _save(fig, path)
    xs = [w.t for w in windows]
    top.bar(xs, [w.ok / width_s for w in windows], width=width_s, align="edge", color="tab:green", label="ok / s")
    top.bar(
        xs,
        [w.failed / width_s for w in windows],
        width=width_s,
        align="edge",
        color=FAIL_COLOUR,
        bottom=[w.ok / width_s for w in windows],
        label="failed / s",
    )
    top.set_ylabel(f"requests / s ({width_s:g} s windows)")
    failed_total = sum(w.failed for w in windows)
    top.set_title(
        f"{title}: {failed_total} failed of {sum(w.ok for w in windows) + failed_total} request(s)",
        color=FAIL_COLOUR if failed_total else "black",
    )
    for key, colour, label in (
        ("max_ms", "lightgrey", "max"),
        ("p99_ms", "tab:orange", "p99"),
        ("p50_ms", "tab:blue", "p50"),
    ):
        pts = [(w.t + width_s / 2, getattr(w, key)) for w in windows if getattr(w, key)]
        if pts:
            bottom.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=colour,
                label=label,
                linewidth=1.2,
                marker="." if key != "max_ms" else None,
                markersize=3,
            )
    if slo_ms is not None:
        bottom.axhline(slo_ms, color="black", linestyle="--", linewidth=1, label=f"write-gap SLO {slo_ms:.0f} ms")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency ms (log)")
    bottom.set_xlabel("seconds since the load started (wall clock)")
    for ax in (top, bottom):
        ax.grid(axis="both", alpha=0.3)
        for x, label in marks:
            colour = MARK_COLOURS.get(label.split()[0], "dimgrey")
            ax.axvline(x, color=colour, linestyle="--", linewidth=1, alpha=0.8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    for x, label in marks:
        top.annotate(
            label,
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize="x-small",
            color=MARK_COLOURS.get(label.split()[0], "dimgrey"),
        )
    return _save(fig, path)
