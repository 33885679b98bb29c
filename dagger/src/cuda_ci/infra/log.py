"""Progress for people: steps with timings, folded command output, a closing summary.

Stage code only calls a :class:`Reporter`; the CLI chooses how it renders: live progress on a
terminal (:mod:`cuda_ci.cli.liveview`), plain lines elsewhere, and in GitHub Actions ``::group::`` folds
(one per outermost step: Actions does not nest them) with long children's output streamed live
inside, warnings as ``::warning`` annotations.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from cuda_ci.cli.actions import annotation, workflow_command
from cuda_ci.infra.errors import CudaCiError, Location
from cuda_ci.infra.secrets import redact

if TYPE_CHECKING:
    from rich.progress import TaskID

    from cuda_ci.cli.liveview import Terminal

LineSink = Callable[[str], None]


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
    terminal: Terminal | None = None  # live progress (a TTY outside Actions), shared with children
    depth: int = 0  # steps open around this point; Actions folds the outermost one

    def _write(self, text: str, style: str = "") -> None:
        text = redact(text)
        if self.terminal is not None:
            self.terminal.print(text, style)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def _live(self, label: str) -> contextlib.AbstractContextManager[TaskID | None]:
        return self.terminal.task(label) if self.terminal is not None else nullcontext(None)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A timed step; in GitHub Actions the outermost folds its output into a group."""
        start = time.monotonic()
        folds = self.github_actions and self.depth == 0
        self._write(workflow_command("group", name) if folds else f"==> {name}", "bold cyan")
        status = "failed"
        self.depth += 1
        try:
            with self._live(name):
                yield
            status = "ok"
        finally:
            self.depth -= 1
            seconds = time.monotonic() - start
            self.steps.append(StepRecord(self.stage, name, round(seconds, 3), status))
            if folds:
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

    def warn(self, message: str, location: Location | None = None) -> None:
        """A warning; in GitHub Actions an annotation, on the file (and line) it is about where given."""
        self.notes.append(redact(f"warning: {message}"))
        shown = annotation("warning", redact(message), location) if self.github_actions else f"warning: {message}"
        self._write(shown, "yellow")

    def command(self, argv: Sequence[str]) -> None:
        if self.verbose:
            self._write("    $ " + " ".join(argv))

    def output(self, text: str) -> None:
        if self.verbose and text.strip():
            self._write(text.rstrip())

    @property
    def shows_output_live(self) -> bool:
        """Whether a long child's lines are printed as they come (Actions' log, ``--debug``)."""
        return self.github_actions or self.verbose

    @contextmanager
    def streaming(self, what: str) -> Iterator[LineSink | None]:
        """Where a long child's output lines go as they come, or None where nobody watches them live:
        printed (inside the step's fold on Actions, or a fold of its own outside any step), or shown
        on the terminal's live line."""
        if not (self.shows_output_live or self.terminal is not None):
            yield None
            return
        folds = self.github_actions and self.depth == 0
        if folds:
            self._write(workflow_command("group", what))
        with self._live(what) as task:
            terminal = self.terminal

            def sink(line: str) -> None:
                if self.shows_output_live:
                    self._write(line.rstrip("\r\n"))
                elif terminal is not None and task is not None:
                    terminal.latest(task, what, redact(line))

            try:
                yield sink
            finally:
                if folds:
                    self._write("::endgroup::")

    def child(self) -> Reporter:
        """A reporter for a stage run on another thread; :meth:`adopt` merges it back."""
        return Reporter(
            stream=self.stream,
            github_actions=self.github_actions,
            verbose=self.verbose,
            stage=self.stage,
            terminal=self.terminal,
            depth=self.depth,
        )

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
        """Seconds per stage, summed over its steps named ``stage <name>`` (a plan runs a stage in
        several nodes: docs and record-docs, each publish target)."""
        seconds: dict[str, float] = {}
        for record in self.steps:
            if record.name == f"stage {record.stage}":
                seconds[record.stage] = round(seconds.get(record.stage, 0.0) + record.seconds, 3)
        return seconds
