"""How a command's result reaches people and the runner: text or ``--json`` on stdout, ``error:``
lines on stderr, and on GitHub Actions an annotation per problem, the job summary and the step outputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from cuda_ci.cli import actions, jobsummary, results
from cuda_ci.infra.errors import location_of
from cuda_ci.infra.manifest import FileEntry
from cuda_ci.infra.secrets import redact
from cuda_ci.infra.settings import Settings

# The commands that write step outputs (results.outputs_of): those naming a release folder (report: a
# Dagger run's), the plan (its wheel matrix) and a wheel job's check-wheels (its report).
OUTPUT_COMMANDS = frozenset({"release", "build", "publish", "report", "plan", "check-wheels"})


def print_summary(files: Sequence[FileEntry], *, color: bool = True) -> None:
    """The closing table of artifacts: file, size, sha256."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="artifacts")
    for column in ("file", "size", "sha256"):
        table.add_column(column)
    for entry in files:
        table.add_row(entry["path"], f"{entry['size']:,}", entry["sha256"])
    width = max(160, 40 + max((len(f["path"]) for f in files), default=0) + 64)
    Console(width=width, no_color=not color).print(table)


def print_result(result: results.Result, doc: results.Document, *, as_json: bool, color: bool) -> None:
    """stdout: the document (``--json``), or the lines and the artifacts' table."""
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    if result.artifacts:
        print_summary(result.artifacts, color=color)
    for line in result.lines:
        print(redact(line))


def print_problems(problems: Sequence[str], *, github_actions: bool, title: str) -> None:
    """One ``error:`` line per problem (its continuation lines indented); on Actions an annotation
    too, on the file and line it points at where it does."""
    for problem in problems:
        text = redact(problem)
        lines = text.splitlines() or [""]
        sys.stderr.write(f"error: {lines[0]}\n" + "".join(f"  {line}\n" for line in lines[1:]))
        if github_actions:
            sys.stderr.write(actions.annotation("error", text, location_of(problem), title=title) + "\n")
    sys.stderr.flush()


def print_masks(values: list[str]) -> None:
    """``::add-mask::`` for new secrets, written as they are (never redacted: the runner must see them)."""
    sys.stderr.write("".join(f"{line}\n" for line in actions.mask_commands(values)))
    sys.stderr.flush()


def to_runner(command: str, doc: results.Document, settings: Settings) -> None:
    """On GitHub Actions: the job summary, and the step outputs of a command that names a release folder."""
    if not settings.in_github_actions:
        return
    files = settings.actions_files
    try:
        actions.append_file(files.step_summary, jobsummary.markdown(doc))
        if command in OUTPUT_COMMANDS:
            actions.append_file(files.output, actions.output_block(results.outputs_of(doc)))
    except OSError as error:  # the run's result stands; only the runner's copy of it is missing
        warning = f"could not write the job summary or step outputs: {error}"
        sys.stderr.write(actions.annotation("warning", warning) + "\n")
