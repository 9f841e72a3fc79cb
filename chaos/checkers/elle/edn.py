"""Convert a Jepsen/Elle EDN history (one op map per line, or a vector of them) to our JSONL contract.

    python -m chaos.checkers.elle.edn histories/paper-example.edn > paper-example.jsonl

A small EDN reader (maps, vectors, lists, sets, keywords, symbols, strings, numbers, nil/true/false,
comments, `#_` discards, tagged literals read as their value) is enough for Jepsen histories, so no
dependency is needed. Keywords become strings without the colon (`:append` -> "append"). Missing
fields are filled the way Elle reads them: `:f` absent -> "txn", `:time` absent -> the index,
`:process` absent -> 0, `:index` absent -> the position. Keys that are not strings or integers
(Elle's tests use vectors such as [:anti 3]) become their JSON text. `:nemesis` processes stay marks.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<ws>[\s,]+|;[^\n]*)
  | (?P<open>\#\{|[\[({])
  | (?P<close>[\])}])
  | (?P<discard>\#_)
  | (?P<tag>\#[A-Za-z][^\s,\[\](){}"]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<char>\\(?:newline|space|tab|.))
  | (?P<atom>[^\s,\[\](){}";]+)
""",
    re.VERBOSE,
)
_INT = re.compile(r"^[+-]?\d+N?$")
_FLOAT = re.compile(r"^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?$")
_CLOSE = {"[": "]", "(": ")", "{": "}", "#{": "}"}


class EdnError(ValueError):
    pass


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise EdnError(f"cannot read EDN at offset {pos}: {text[pos : pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            yield m.lastgroup or "", m.group()


def _atom(tok: str) -> Any:
    if tok == "nil":
        return None
    if tok in ("true", "false"):
        return tok == "true"
    if _INT.match(tok):
        return int(tok.rstrip("N"))
    if _FLOAT.match(tok):
        return float(tok.rstrip("M"))
    return tok.removeprefix(":")


class _Reader:
    def __init__(self, text: str) -> None:
        self.toks = list(_tokens(text))
        self.i = 0

    def more(self) -> bool:
        while self.i < len(self.toks) and self.toks[self.i][0] == "discard":
            self.i += 1
            self.form()
        return self.i < len(self.toks)

    def form(self) -> Any:
        if not self.more():
            raise EdnError("unexpected end of EDN")
        kind, tok = self.toks[self.i]
        self.i += 1
        if kind == "open":
            items = []
            while True:
                if not self.more():
                    raise EdnError(f"unclosed {tok}")
                if self.toks[self.i] == ("close", _CLOSE[tok]):
                    self.i += 1
                    break
                items.append(self.form())
            if tok == "{":
                return {_hashable(k): v for k, v in zip(items[::2], items[1::2], strict=True)}
            return items
        if kind == "close":
            raise EdnError(f"unexpected {tok}")
        if kind == "tag":
            return self.form()
        if kind == "string":
            return json.loads(tok)
        if kind == "char":
            return tok[1:]
        return _atom(tok)


def _hashable(x: Any) -> Any:
    return json.dumps(x) if isinstance(x, (list, dict)) else x


def read_all(text: str) -> list[Any]:
    """Every top-level form; a single vector of ops is unwrapped."""
    r = _Reader(text)
    forms = []
    while r.more():
        forms.append(r.form())
    if len(forms) == 1 and isinstance(forms[0], list):
        return forms[0]
    return forms


def _key(k: Any) -> Any:
    return k if isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) else json.dumps(k)


def _mop(m: list[Any]) -> list[Any]:
    f, k = m[0], _key(m[1])
    v = m[2] if len(m) > 2 else None
    return [f, k, v]


def to_contract(op: dict[str, Any], position: int) -> dict[str, Any]:
    """One EDN op map as a JSONL contract operation."""
    index = op.get("index", position)
    out: dict[str, Any] = {
        "index": index,
        "time": op.get("time", index),
        "process": op.get("process", 0),
        "type": op.get("type"),
        "f": op.get("f", "txn"),
    }
    value = op.get("value")
    is_txn = out["f"] == "txn" and out["process"] != "nemesis"
    out["value"] = [_mop(m) for m in value] if is_txn and isinstance(value, list) else value
    for k, v in op.items():
        if k not in out:
            out[str(k)] = v
    return out


def convert(text: str) -> list[dict[str, Any]]:
    return [to_contract(op, i) for i, op in enumerate(read_all(text)) if isinstance(op, dict)]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m chaos.checkers.elle.edn HISTORY.edn > HISTORY.jsonl", file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as fh:
            ops = convert(fh.read())
    except (OSError, EdnError) as e:
        print(f"edn: {e}", file=sys.stderr)
        return 2
    for op in ops:
        sys.stdout.write(json.dumps(op, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
