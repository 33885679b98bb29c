"""GitHub Actions' workflow commands and environment files, written as GitHub documents them.

Annotations (``::error file=F,line=L::message``), masks (``::add-mask::``), the job summary
(Markdown appended to the file ``GITHUB_STEP_SUMMARY`` names) and step outputs (``name=value``
lines, or ``name<<DELIMITER`` blocks for values that span lines, appended to ``GITHUB_OUTPUT``).
Command data escapes ``%``, CR and LF; property values also ``:`` and ``,`` (the runner's
``ActionCommand`` and ``@actions/core``'s ``escapeData``/``escapeProperty``), so that no message can
end a command early or start another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from cuda_ci.infra.errors import Location

AnnotationKind = Literal["error", "warning", "notice"]


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(name: str, message: str = "", properties: Mapping[str, str | int | None] | None = None) -> str:
    """``::name key=value,...::message``, every part escaped; properties without a value are left out."""
    given = {k: v for k, v in (properties or {}).items() if v is not None}
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in given.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(kind: AnnotationKind, message: str, location: Location | None = None, title: str | None = None) -> str:
    """An annotation on the run's summary page; ``file=``/``line=`` put it on that line of the file."""
    where = {"file": location.file, "line": location.line} if location else {}
    return workflow_command(kind, message, {"title": title, **where})


def mask_commands(values: Iterable[str]) -> list[str]:
    """``::add-mask::`` for each secret: a secret spanning lines is masked line by line (the runner
    masks what one command names, and a log line never holds a line break)."""
    lines = {line.strip() for value in values for line in value.splitlines()}
    return [workflow_command("add-mask", line) for line in sorted(lines) if line]


def output_block(outputs: Mapping[str, str]) -> str:
    """Step outputs in ``GITHUB_OUTPUT``'s format: ``name=value``, or a random-delimiter heredoc for a
    value that spans lines (a delimiter found in the value is drawn again)."""
    text = []
    for name, value in outputs.items():
        if "\n" not in value and "\r" not in value:
            text.append(f"{name}={value}\n")
            continue
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:  # pragma: no cover - 128 random bits
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        text.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(text)


def append_file(path: str | None, text: str) -> None:
    """Append to an environment file the runner gave (``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``);
    nothing where it gave none (outside Actions, or a runner too old to have it)."""
    if path and text:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(text)
