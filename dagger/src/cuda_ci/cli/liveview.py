"""Live progress on a terminal (rich): one line per running step or long child, with its time and the
child's latest output line; gone when the step ends, leaving the plain lines the run printed.

Only a terminal gets it (``cuda-ci`` on a TTY outside GitHub Actions); elsewhere the run is quiet
and a child's output shows on failure (or with ``--debug``). ``NO_COLOR`` turns colours off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

_LATEST_WIDTH = 100  # a child's latest line, cut to fit beside its label


class Terminal:
    """The live view of one run; threads (steps side by side) share it."""

    def __init__(self, stream: TextIO, *, color: bool = True, force_terminal: bool | None = None) -> None:
        self.console = Console(file=stream, no_color=not color, highlight=False, force_terminal=force_terminal)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),  # child output is not markup
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            redirect_stdout=False,  # the command's results go to stdout, untouched
            redirect_stderr=False,
        )
        self._lock = threading.Lock()
        self._running = 0

    def print(self, text: str, style: str = "") -> None:
        """A line above the live view (the view is redrawn under it)."""
        self.console.print(Text(text, style=style))

    @contextmanager
    def task(self, label: str) -> Iterator[TaskID]:
        """A live line while the body runs; :meth:`latest` shows a child's last output on it."""
        with self._lock:
            if self._running == 0:
                self._progress.start()
            self._running += 1
            task = self._progress.add_task(label)
        try:
            yield task
        finally:
            with self._lock:
                self._progress.remove_task(task)
                self._running -= 1
                if self._running == 0:
                    self._progress.stop()

    def latest(self, task: TaskID, label: str, line: str) -> None:
        shown = line.strip()
        if shown:
            cut = shown if len(shown) <= _LATEST_WIDTH else shown[: _LATEST_WIDTH - 1] + "…"
            self._progress.update(task, description=f"{label}: {cut}")

    def showing(self) -> list[str]:
        """The live lines shown now (one per running step or child)."""
        return [str(task.description) for task in self._progress.tasks]
