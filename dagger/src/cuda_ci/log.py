"""Progress for people: steps with timings, folded command output, a closing summary.

Stage code only calls a :class:`Reporter`; the CLI chooses how it renders
(rich on a terminal, plain lines with ``::group::`` folds in GitHub Actions).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from cuda_ci.errors import CudaCiError
from cuda_ci.secrets import redact


@dataclass
class StepRecord:
    stage: str
    name: str
    seconds: float
    status: str


@dataclass
class Reporter:
    """Where stages report; records every step's time for ``run-log.json``."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    github_actions: bool = False
    verbose: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stage: str = ""

    def _write(self, text: str, style: str = "") -> None:
        text = redact(text)
        if style and not self.github_actions and self.stream.isatty():
            from rich.console import Console
            from rich.text import Text

            Console(file=self.stream, highlight=False).print(Text(text, style=style))
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A timed step; in GitHub Actions its output folds into a group."""
        start = time.monotonic()
        self._write(f"::group::{name}" if self.github_actions else f"==> {name}", "bold cyan")
        status = "failed"
        try:
            yield
            status = "ok"
        finally:
            seconds = time.monotonic() - start
            self.steps.append(StepRecord(self.stage, name, round(seconds, 3), status))
            if self.github_actions:
                self._write("::endgroup::")
            self._write(f"    {status} in {seconds:.1f} s: {name}", "green" if status == "ok" else "bold red")

    @contextmanager
    def in_stage(self, stage: str) -> Iterator[None]:
        previous, self.stage = self.stage, stage
        try:
            with self.step(f"stage {stage}"):
                yield
        finally:
            self.stage = previous

    def info(self, message: str) -> None:
        self._write(f"    {message}")

    def note(self, message: str) -> None:
        """A fact worth keeping in ``run-log.json`` (e.g. a check recorded as not verified)."""
        self.notes.append(redact(message))
        self._write(f"    note: {message}")

    def warn(self, message: str) -> None:
        self.notes.append(redact(f"warning: {message}"))
        self._write(f"::warning::{message}" if self.github_actions else f"warning: {message}", "yellow")

    def command(self, argv: Sequence[str]) -> None:
        if self.verbose:
            self._write("    $ " + " ".join(argv))

    def output(self, text: str) -> None:
        if self.verbose and text.strip():
            self._write(text.rstrip())

    def child(self) -> Reporter:
        """A reporter for a stage run on another thread; :meth:`adopt` merges it back."""
        return Reporter(stream=self.stream, github_actions=self.github_actions, verbose=self.verbose, stage=self.stage)

    def adopt(self, child: Reporter) -> None:
        self.steps.extend(child.steps)
        self.notes.extend(child.notes)

    @contextmanager
    def alongside(self, *tasks: Callable[[Reporter], object]) -> Iterator[None]:
        """Run each task on its own thread, with a child reporter, while the body runs.

        Then the children's steps and notes are merged back. Every failure is reported: where the body
        and tasks fail, the error raised holds every one's problems (the body's first, as it is the
        one the caller was waiting on); a failure that is not a :class:`CudaCiError` (a bug) wins.
        """
        children = [self.child() for _ in tasks]
        body_error: BaseException | None = None
        with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="cuda-ci-alongside") as pool:
            futures = [pool.submit(task, child) for task, child in zip(tasks, children, strict=True)]
            try:
                yield
            except BaseException as raised:
                body_error = raised
            finally:
                errors = [error for future in futures if (error := future.exception()) is not None]
                for child in children:
                    self.adopt(child)
        failures = [e for e in (body_error, *errors) if e is not None]
        if not failures:
            return
        if not all(isinstance(e, CudaCiError) for e in failures):
            raise next(e for e in failures if not isinstance(e, CudaCiError))
        if len(failures) == 1:
            raise failures[0]
        raise CudaCiError(*(p for e in failures if isinstance(e, CudaCiError) for p in e.problems))

    def stage_seconds(self) -> dict[str, float]:
        return {r.stage: r.seconds for r in self.steps if r.name == f"stage {r.stage}"}
