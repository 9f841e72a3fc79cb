"""A PNG picture of each cycle: transactions on a circle, arrows labelled ww / wr / rw / rt / process.

Drawn from a verdict's JSON (`cycle` + `steps` of each cycle anomaly), so a saved verdict can be
plotted again without the history. matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_COLOURS = {"ww": "#1f77b4", "wr": "#2ca02c", "rw": "#d62728", "process": "#9467bd", "realtime": "#ff7f0e"}
_SHORT = {"realtime": "rt"}


def _edge_label(step: Mapping[str, Any]) -> str:
    kind = step["type"]
    if kind in ("ww", "wr", "rw"):
        return f"{kind} {step['key']}"
    return _SHORT.get(kind, kind)


def _node_label(i: int, op: Mapping[str, Any]) -> str:
    where = op.get("node") or op.get("server") or ""
    idx = op.get("index") if op.get("index") is not None else op.get("invoke-index")
    return f"T{i + 1}\n#{idx} p{op.get('process')}" + (f"\n{where}" if where else "")


def plot_cycle(case: Mapping[str, Any], path: str | Path) -> Path:
    """Draw one explained cycle (a dict with `cycle`, `steps`, `type`) to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = list(case["cycle"])[:-1]
    k = len(ops)
    pts = [(math.cos(math.pi / 2 - 2 * math.pi * i / k), math.sin(math.pi / 2 - 2 * math.pi * i / k)) for i in range(k)]
    fig, ax = plt.subplots(figsize=(4 + 0.4 * k, 4 + 0.4 * k), dpi=100)
    try:
        for i, step in enumerate(case["steps"]):
            (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % k]
            colour = _COLOURS.get(step["type"], "black")
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": colour,
                    "lw": 1.8,
                    "shrinkA": 22,
                    "shrinkB": 22,
                    "connectionstyle": "arc3,rad=0.15",
                },
            )
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            ax.text(mx * 1.12, my * 1.12, _edge_label(step), color=colour, ha="center", va="center", fontsize=9)
        for i, (x, y) in enumerate(pts):
            ax.text(
                x,
                y,
                _node_label(i, ops[i]),
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round", "fc": "white", "ec": "grey"},
            )
        ax.set_title(str(case.get("type", "cycle")))
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        ax.axis("off")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out


def plot_verdict(verdict: Any, directory: str | Path, limit: int = 20) -> list[Path]:
    """PNGs of up to `limit` cycles per anomaly type, named `<type>-<n>.png`; returns their paths."""
    d = verdict.to_dict() if hasattr(verdict, "to_dict") else verdict
    out: list[Path] = []
    for kind, cases in d["anomalies"].items():
        for i, case in enumerate(c for c in cases if "cycle" in c):
            if i >= limit:
                break
            out.append(plot_cycle(case, Path(directory) / f"{kind}-{i + 1}.png"))
    return out
