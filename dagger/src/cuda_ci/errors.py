"""The one exception family of cuda-ci; the CLI maps each to its exit code."""

from __future__ import annotations

from collections.abc import Iterable


class CudaCiError(Exception):
    """A check failed or a step could not be done: exit 1, one ``error:`` line per problem."""

    exit_code = 1

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or ("unknown error",)
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
