"""One error type for bad input and unusable environments: the CLI prints it as one line and exits 2."""

import os


class TopologyError(Exception):
    """A problem the user can fix (Docker down, port taken, unknown stack, missing image, bad value)."""


def positive_number_from_env(name: str, default: str, *, what: str = "a number") -> float:
    """os.environ[name] (or `default`) as a float > 0; anything else is one TopologyError naming the variable."""
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise TopologyError(f"{name}={raw!r} is not {what}") from None
    if value <= 0:
        raise TopologyError(f"{name} must be > 0, got {value}")
    return value
