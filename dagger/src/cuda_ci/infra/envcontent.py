"""What a kept tool environment held when it was made: every file's sha256, every link's target.

A build backend, Sphinx's ``conf.py`` or a test runs inside the kept environment it uses, as the
same user, and can write into it: a ``.pth`` file dropped there runs in every later process of that
environment, a later release's build included. So the environment's whole content is recorded when
it is made (complete, bytecode included, nothing written after), and checked before each use by
cuda-ci itself, never by running the environment's interpreter (a dropped ``.pth`` would run then).
A file added, changed or missing, or a link retargeted, makes the environment unusable.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cuda_ci.infra.manifest import sha256_of

CONTENT_RECORD = "cuda-ci-content.json"
_MAX_RECORD_BYTES = 64 * 1024 * 1024


def _walk(root: Path, folder: Path, found: dict[str, str]) -> None:
    """Every entry under ``folder`` (links not followed): ``sha256:<hex>``, ``link:<target>``, or its kind."""
    with os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            relative = path.relative_to(root).as_posix()
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                found[relative] = f"link:{os.readlink(path)}"
            elif stat.S_ISDIR(mode):
                _walk(root, path, found)
            elif stat.S_ISREG(mode):
                if relative != CONTENT_RECORD:
                    found[relative] = f"sha256:{sha256_of(path)}"
            else:
                found[relative] = "special"  # a fifo, socket or device: never in an environment


def content_of(root: Path) -> dict[str, str]:
    """Path (relative, ``/``-separated) → what is there, for everything under ``root`` but the record."""
    found: dict[str, str] = {}
    _walk(root, root, found)
    return found


def record_content(root: Path) -> None:
    """Write the record of ``root``'s content into ``root`` (made before the environment is in place)."""
    (root / CONTENT_RECORD).write_text(json.dumps(content_of(root), indent=0, sort_keys=True), encoding="utf-8")


def content_problem(root: Path) -> str | None:
    """How ``root`` differs from its record (the first few differences, named); None when it is the same."""
    record = root / CONTENT_RECORD
    try:
        if record.is_symlink() or not record.is_file() or record.stat().st_size > _MAX_RECORD_BYTES:
            return f"its content record {CONTENT_RECORD} is missing or not a plain file"
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"its content record {CONTENT_RECORD} cannot be read ({error})"
    if not isinstance(recorded, dict):
        return f"its content record {CONTENT_RECORD} is not a record of files"
    try:
        actual = content_of(root)
    except OSError as error:
        return f"its content cannot be read ({error})"
    differences = [
        *(f"{path} was added" for path in sorted(actual.keys() - recorded.keys())),
        *(f"{path} is missing" for path in sorted(recorded.keys() - actual.keys())),
        *(f"{path} was changed" for path in sorted(actual.keys() & recorded.keys()) if actual[path] != recorded[path]),
    ]
    if not differences:
        return None
    more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
    return ", ".join(differences[:3]) + more
