"""Progress of the long steps on stderr: a bar with an ETA on a terminal, one line per stage otherwise.

A log file or CI output gets one plain line as each stage starts (no carriage-return bar noise); a
terminal gets a ``tqdm`` bar whose total is the stage's units (blocks, figures), so it shows an ETA.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


@contextmanager
def stage(name: str, *, total: int, unit: str, enabled: bool = True, stream: TextIO | None = None
          ) -> Iterator[Callable[[], None]]:
    """Announce a stage of ``total`` units; yield ``advance()``, to be called once per unit done.

    On a terminal: a bar ``name`` with an ETA. Elsewhere: one line, ``judgekit: name (total units)``, as the stage
    starts. Nothing when not ``enabled``.
    """
    stream = stream or sys.stderr
    if not enabled:
        yield lambda: None
        return
    if on_terminal(stream):
        from tqdm import tqdm

        # a terminal of unknown size (0 x 0, e.g. a bare pseudo-terminal) makes tqdm hide the bar: 80 x 24 then
        size = shutil.get_terminal_size()
        with tqdm(total=total, desc=name, unit=unit, file=stream, leave=False, ncols=size.columns,
                  nrows=size.lines) as bar:
            yield lambda: bar.update(1)
        return
    print(f"judgekit: {name} ({total} {unit}{'s' if total != 1 else ''})", file=stream, flush=True)
    yield lambda: None
