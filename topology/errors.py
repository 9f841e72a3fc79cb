"""One error type for bad input and unusable environments: the CLI prints it as one line and exits 2."""


class TopologyError(Exception):
    """A problem the user can fix (Docker down, port taken, unknown stack, missing image, bad value)."""
