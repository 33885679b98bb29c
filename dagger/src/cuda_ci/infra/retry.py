"""Bounded retries: only a failure that can heal is tried again, each retry is reported, every wait is bounded.

Whether a failure can heal is decided where it is understood (an HTTP status, twine's output, an
install the index does not serve yet): such a failure is raised as :class:`Transient`. Anything else,
a refusal (401, 403, 400, 409...) above all, passes through at once and is never retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from cuda_ci.infra.errors import CudaCiError

T = TypeVar("T")
# What can heal: the server failed (5xx) or asked to slow down (429); 501 (not implemented) never heals.
HEALING_STATUSES = frozenset({429, 500, 502, 503, 504})


def heals(status: int) -> bool:
    """An HTTP status worth asking again for."""
    return status in HEALING_STATUSES


class Transient(Exception):
    """One attempt failed in a way that can heal: ``reason`` says how, ``wait`` is the server's own
    (``Retry-After``), ``detail`` what to show if every attempt fails."""

    def __init__(self, reason: str, *, wait: float | None = None, detail: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.detail = tuple(detail)


GiveUp = Callable[[Transient, str], Exception]


def _give_up(what: str) -> GiveUp:
    return lambda failure, why: CudaCiError(f"{what} {why} ({failure.reason})", *failure.detail)


@dataclass(frozen=True, kw_only=True)
class Retry:
    """At most ``attempts`` tries; before the n-th retry, ``backoff`` times n seconds (at most
    ``max_backoff``), or the wait the server asked for, which is never longer than ``max_wait``."""

    attempts: int
    backoff: float
    report: Callable[[str], None]  # the Reporter's ``info``: every retry is visible
    max_backoff: float = 60.0
    max_wait: float = 3600.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def run(self, what: str, attempt: Callable[[int], T], *, give_up: GiveUp | None = None) -> T:
        """``attempt(n)`` until it returns; a :class:`Transient` is retried, anything else raised.

        When the tries are spent, or the server asks for a wait longer than ``max_wait``,
        ``give_up(last failure, why)`` is raised (``why``: "failed N times", or the wait refused).
        """
        give_up = give_up or _give_up(what)
        for number in range(1, self.attempts + 1):
            try:
                return attempt(number)
            except Transient as failure:
                if number == self.attempts:
                    raise give_up(failure, f"failed {number} times") from None
                delay = self.delay(failure, number)
                if delay > self.max_wait:
                    why = f"asks to wait {delay:.0f} s, longer than the {self.max_wait:.0f} s this run waits"
                    raise give_up(failure, why) from None
                self.report(f"{what}: {failure.reason}; retry {number} of {self.attempts - 1} in {delay:.1f} s")
                self.sleep(delay)
        raise ValueError(f"attempts must be at least 1, not {self.attempts}")

    def delay(self, failure: Transient, number: int) -> float:
        """Seconds before the retry after try ``number``."""
        if failure.wait is not None:
            return max(failure.wait, 0.0)
        return min(self.backoff * number, self.max_backoff)
