"""Wall-clock limits on work whose duration the input decides: chat-template rendering and output parsing.

A chat template is a Jinja program from a checkpoint or a spec (``{% for i in range(100000) %}`` nested
twice never finishes) and a judge's verdict pattern can backtrack catastrophically on a long output.
:func:`time_limit` bounds such a call; exceeding it raises :class:`TimeLimitExceeded`, which the caller
turns into an ``error`` row or a one-line exit 2 naming the template.

The limit is delivered by ``SIGALRM`` (``setitimer``), which interrupts Python code between bytecodes
(Jinja templates compile to Python), so it applies in the main thread; elsewhere the call runs unbounded
(judgekit renders and parses in the main thread). Limits nest: an inner limit never extends an outer one.

Defaults: :data:`TEMPLATE_TIMEOUT_S` per rendering and :data:`PARSE_TIMEOUT_S` per parsed output, both
overridable with the environment variables ``JUDGEKIT_TEMPLATE_TIMEOUT_S`` and ``JUDGEKIT_PARSE_TIMEOUT_S``
(a judge spec may also set ``input.render_timeout_s``).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from judgekit.errors import InputError

TEMPLATE_TIMEOUT_S = 10.0
PARSE_TIMEOUT_S = 5.0


class TimeLimitExceeded(Exception):
    """A bounded call ran past its limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds


def configured_limit(variable: str, default: float) -> float:
    """The limit in seconds from environment ``variable`` (a positive number), else ``default``."""
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"environment variable {variable} must be a positive number of seconds, got {text!r}")
    return value


def template_timeout_s() -> float:
    return configured_limit("JUDGEKIT_TEMPLATE_TIMEOUT_S", TEMPLATE_TIMEOUT_S)


def parse_timeout_s() -> float:
    return configured_limit("JUDGEKIT_PARSE_TIMEOUT_S", PARSE_TIMEOUT_S)


_deadlines: list[float] = []  # monotonic deadlines of the limits now open (main thread only)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` inside the block once ``seconds`` have passed (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    deadline = time.monotonic() + seconds
    outer = _deadlines[-1] if _deadlines else math.inf
    if outer <= deadline:  # the enclosing limit ends first: it stays in charge
        yield
        return

    def expire(signum, frame):
        raise TimeLimitExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    _deadlines.append(deadline)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _deadlines.pop()
        signal.signal(signal.SIGALRM, previous)
        if _deadlines:  # re-arm the enclosing limit for what is left of it
            left = _deadlines[-1] - time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
