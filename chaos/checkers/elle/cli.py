"""`python -m chaos txn-check HISTORY.jsonl --model MODEL [--json] [--plot-dir DIR] [--time-limit S]`

Re-checks any list-append history in Elle's JSONL shape (ours, or one written by another tool).

Exit status: 0 valid; 1 not valid, and also 1 when the verdict is "unknown" (a search ran out of
time, or nothing could be inferred): like Elle, CI must not pass what was not proven; 2 bad input
(unreadable file, bad JSON at line N, a missing field, an unknown model, a completion without its
invocation...), with one line on stderr and never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from chaos.checkers.elle import models
from chaos.checkers.elle.check import DEFAULT_MODEL, DEFAULT_TIME_LIMIT, check_file
from chaos.checkers.elle.explain import report
from chaos.checkers.elle.history import HistoryError

PROG = "python -m chaos txn-check"


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")
        raise AssertionError("unreachable")  # exit() raises SystemExit


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("history", help="JSONL file, one operation per line (Elle's shape)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"consistency model the history must satisfy (default {DEFAULT_MODEL}); one of "
        + ", ".join(models.MAIN_MODELS)
        + ", or another model Elle names",
    )
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    p.add_argument("--plot-dir", default=None, help="write a PNG of each cycle found into this directory")
    p.add_argument(
        "--time-limit",
        type=_positive,
        default=DEFAULT_TIME_LIMIT,
        help=f"seconds of cycle search per strongly connected component (default {DEFAULT_TIME_LIMIT:g})",
    )
    p.add_argument("--max-shown", type=int, default=3, help="instances shown per anomaly type without --json")


def run(args: argparse.Namespace) -> int:
    """Check, print, plot; the exit status of the contract."""
    try:
        model = models.canonical(args.model)
    except ValueError as e:
        print(f"txn-check: {e}", file=sys.stderr)
        return 2
    try:
        verdict = check_file(args.history, model, time_limit=args.time_limit)
    except HistoryError as e:
        print(f"txn-check: {e}", file=sys.stderr)
        return 2
    d = verdict.to_dict()
    if args.json:
        print(json.dumps(d, default=str))
    else:
        sys.stdout.write(report(d, max_per_type=args.max_shown))
    if args.plot_dir:
        from chaos.checkers.elle.plot import plot_verdict

        paths = plot_verdict(d, args.plot_dir)
        if not args.json:
            print(f"{len(paths)} cycle plot(s) in {args.plot_dir}")
    return 0 if verdict.valid is True else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `txn-check` to another command's subcommands (python -m chaos), errors still one line."""
    t = sub.add_parser(
        "txn-check",
        help="re-check a list-append history with Elle's analysis (exit 0 valid, 1 not valid or unknown, 2 bad input)",
        description=__doc__.splitlines()[0],
    )
    add_arguments(t)

    def one_line(message: str) -> NoReturn:
        t.exit(2, f"{t.prog}: {message}\n")
        raise AssertionError("unreachable")  # exit() raises SystemExit

    t.error = one_line  # type: ignore[method-assign]
    t.set_defaults(fn=run)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
