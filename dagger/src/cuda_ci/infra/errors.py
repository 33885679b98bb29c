"""The one exception family of cuda-ci; the CLI maps each to its exit code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a finding points in the repository: a file (relative to its root) and, where known, a line.

    On GitHub Actions it becomes the annotation's ``file=``/``line=``."""

    file: str
    line: int | None = None


class Problem(str):
    """One problem's message that carries the :class:`Location` it points at.

    A ``str``, so that it travels wherever problems travel (gathered, merged, re-raised) and keeps its
    location; a message made from it by formatting is a plain ``str`` again, without one."""

    location: Location | None

    def __new__(cls, text: str, location: Location | None = None) -> Problem:
        problem = super().__new__(cls, text)
        problem.location = location
        return problem


def located(text: str, file: str, line: int | None = None) -> Problem:
    return Problem(text, Location(file, line))


def location_of(problem: str) -> Location | None:
    return problem.location if isinstance(problem, Problem) else None


class CudaCiError(Exception):
    """A check failed or a step could not be done: exit 1, one ``error:`` line per problem.

    ``location`` is where every problem given without its own (a :class:`Problem`) points."""

    exit_code = 1

    def __init__(self, *problems: str, location: Location | None = None) -> None:
        found = tuple(problems) or ("unknown error",)
        if location is not None:
            found = tuple(p if location_of(p) else Problem(p, location) for p in found)
        self.problems: tuple[str, ...] = found
        super().__init__("\n".join(self.problems))


class UsageError(CudaCiError):
    """The command line or an input value is wrong: exit 2."""

    exit_code = 2


class TagError(UsageError):
    """A tag that is not a release tag of any component."""


class PreflightError(CudaCiError):
    """Preflight found problems; every finding is listed at once."""

    @classmethod
    def from_findings(cls, findings: Iterable[str]) -> PreflightError:
        return cls(*findings)


class CommandError(CudaCiError):
    """A subprocess failed; keeps its exit code and the tail of its output."""

    def __init__(self, what: str, returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-25:])
        super().__init__(f"{what} failed with exit code {returncode}" + (f":\n{tail}" if tail else ""))
        self.returncode = returncode
