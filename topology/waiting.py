"""`wait_for`: poll a probe until it gives a truthy value, naming what was awaited and what was last seen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_exception, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A named wait ran out of time; the message says what it waited for and the last observation."""


def _transient(exc: BaseException) -> bool:
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, WaitTimeout))


def wait_for(probe: Callable[[], T], *, within: float, what: str, every: float = 0.5) -> T:
    """Retry `probe` until it returns a truthy value; exceptions count as 'not yet'."""
    retrying = Retrying(
        stop=stop_after_delay(within),
        wait=wait_fixed(every),
        reraise=False,
        retry=retry_if_exception(_transient) | retry_if_result(lambda v: not v),
    )
    try:
        return retrying(probe)
    except RetryError as err:
        attempt = err.last_attempt
        last = attempt.exception() if attempt.failed else attempt.result()
        raise WaitTimeout(f"{what}: not reached within {within:.0f}s; last: {last!r}") from None
