"""A long child's output as it comes: a thread pumps its lines to the reporter while the run waits.

:func:`wait_for_output` is what ``process.run`` waits with: for a short child (or where nobody watches
live, see :meth:`Reporter.streaming`) it is ``communicate``; for a long one (cibuildwheel, Sphinx, a
build, the tests) each line reaches the reporter the moment the child writes it, and the whole text
is kept for the result and for the error message of a failure.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from typing import IO

from cuda_ci.log import LineSink, Reporter


class LinePump:
    """Reads ``stream`` line by line on its own thread, handing each line to ``sink`` as it comes."""

    def __init__(self, stream: IO[str], sink: LineSink) -> None:
        self._stream = stream
        self._sink = sink
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, name="cuda-ci-line-pump", daemon=True)

    def start(self) -> LinePump:
        self._thread.start()
        return self

    def _pump(self) -> None:
        for line in self._stream:  # ends when the child (and every process holding the pipe) closes it
            self._lines.append(line)
            self._sink(line)

    def text(self, timeout: float | None = None) -> str:
        """Every line read; waits (``timeout``) for the pipe to close."""
        self._thread.join(timeout)
        return "".join(self._lines)


@dataclass(frozen=True)
class ChildOutput:
    text: str
    shown: bool  # already printed line by line: not printed again


def wait_for_output(
    process: subprocess.Popen[str], timeout: float | None, reporter: Reporter, live: str | None
) -> ChildOutput:
    """Wait for ``process`` (its stdout a pipe) and take its output; ``live`` names a long child whose
    lines stream to ``reporter`` as they come.

    Raises:
        subprocess.TimeoutExpired: after ``timeout`` seconds (the child is killed first when streamed).
    """
    if live is None:
        return ChildOutput(process.communicate(timeout=timeout)[0], shown=False)
    with reporter.streaming(live) as sink:
        if sink is None:
            return ChildOutput(process.communicate(timeout=timeout)[0], shown=False)
        assert process.stdout is not None
        pump = LinePump(process.stdout, sink).start()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            pump.text(timeout=10)
            raise
        return ChildOutput(pump.text(), shown=reporter.shows_output_live)
