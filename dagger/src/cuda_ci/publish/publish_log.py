"""``publish-log.json``: every action of every publish run, appended; read as untrusted input.

The log lies in the release folder, which travels between jobs: it is read only as a plain file
inside the folder (never through a link), within a size cap, and only in its own shape; anything
else is refused with its name before publish acts on it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.github import Release
from cuda_ci.infra.manifest import write_json_atomic
from cuda_ci.infra.safepaths import folder_file

LOG_NAME = "publish-log.json"
MAX_LOG_BYTES = 16 * 1024 * 1024
ENTRY_KEYS = frozenset({"time", "target", "file", "action", "detail"})


def shape_problem(data: Any) -> str | None:
    """What is wrong with a parsed log's shape (schema 1, entries of five strings each); None if nothing."""
    if not isinstance(data, dict) or data.get("schema") != 1 or not isinstance(data.get("entries"), list):
        return "it is not a schema 1 publish log ({'schema': 1, 'entries': [...]})"
    for number, entry in enumerate(data["entries"]):
        strings = isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())
        if not strings or set(entry) != ENTRY_KEYS:
            return f"entry {number} is not an object of the five strings {', '.join(sorted(ENTRY_KEYS))}"
    return None


def read_entries(path: Path) -> list[dict[str, str]]:
    """The entries of the log at ``path``, in its release folder ([] where there is no log yet).

    Raises:
        CudaCiError: the log is a link, not a regular file, over the size cap, not JSON, or of another shape.
    """
    if not os.path.lexists(path):
        return []
    folder_file(path.parent, path.name)  # a plain file inside the folder, never a link to one elsewhere
    size = path.stat().st_size
    fix = f"remove {path} if it is not this release's log, or restore it"
    if size > MAX_LOG_BYTES:
        raise CudaCiError(f"{path} holds {size} bytes, over the {MAX_LOG_BYTES} a publish log may: {fix}")
    try:
        data = json.loads(path.read_bytes())
    except ValueError as error:
        raise CudaCiError(f"{path} is not JSON ({error}): {fix}") from None
    problem = shape_problem(data)
    if problem is not None:
        raise CudaCiError(f"{path}: {problem}: {fix}")
    entries: list[dict[str, str]] = data["entries"]
    return entries


_DRAFT_ID = re.compile(r"\(release id (\d+)\)$")


@dataclass
class PublishLog:
    """``publish-log.json`` of a release folder (``path``): read checked, appended, written atomically."""

    path: Path
    entries: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.entries = read_entries(self.path)

    def add(self, target: str, file: str | None, action: str, detail: str = "") -> None:
        self.entries.append(
            {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "target": target,
                "file": file or "",
                "action": action,
                "detail": detail,
            }
        )
        write_json_atomic(self.path, {"schema": 1, "entries": self.entries})

    def record_draft(self, release: Release) -> None:
        self.add("github", None, "created-draft", f"{release['html_url']} (release id {release['id']})")

    def drafts(self) -> set[int]:
        """The GitHub drafts this folder's publishes created: the next publish adopts them."""
        made = (_DRAFT_ID.search(e["detail"]) for e in self.entries if e.get("action") == "created-draft")
        return {int(found.group(1)) for found in made if found is not None}
