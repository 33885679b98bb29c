"""What validate found: passed or skipped checks, and every problem, reported all at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import ValidationEntry


@dataclass
class Findings:
    """Checks run so far: passed or skipped entries, and every problem found."""

    entries: list[ValidationEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def passed(self, check: str, file: str | None, detail: str) -> None:
        self.entries.append(ValidationEntry(check=check, file=file, status="passed", detail=detail))

    def skipped(self, check: str, file: str | None, detail: str) -> None:
        self.entries.append(ValidationEntry(check=check, file=file, status="skipped", detail=detail))

    def failed(self, check: str, problem: str) -> None:
        self.problems.append(f"{check}: {problem}")

    def merge(self, other: Findings) -> None:
        self.entries += other.entries
        self.problems += other.problems

    def raise_if_any(self, what: str) -> None:
        if self.problems:
            raise CudaCiError(*self.problems, f"{what}: {len(self.problems)} problem(s); nothing was published")
