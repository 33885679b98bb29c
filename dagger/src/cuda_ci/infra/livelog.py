"""A long child's output as it comes: ``process.run`` waits with a pump for a long child (cibuildwheel,
Sphinx, a build, the tests) where someone watches live (see :meth:`Reporter.streaming`): each line
reaches the reporter the moment the child writes it, and the whole text is kept for the result and
for the error message of a failure."""

from __future__ import annotations

import threading
from typing import IO

from cuda_ci.infra.log import LineSink


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

    def done(self, timeout: float | None = None) -> bool:
        """Whether the pipe closed (waiting up to ``timeout``)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def text(self, timeout: float | None = None) -> str:
        """Every line read; waits (``timeout``) for the pipe to close."""
        self._thread.join(timeout)
        return "".join(self._lines)
