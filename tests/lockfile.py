"""dagger/uv.lock and the requirement files exported from it, read for the tests (tomllib, packaging)."""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import REPO_ROOT

LOCK = REPO_ROOT / "dagger" / "uv.lock"
LOCKED = REPO_ROOT / "dagger" / "locked"


def lock_entries() -> dict[str, list[dict[str, Any]]]:
    """The lock's packages by canonical name (a name resolved differently per Python has several)."""
    entries: dict[str, list[dict[str, Any]]] = {}
    for package in tomllib.loads(LOCK.read_text())["package"]:
        entries.setdefault(canonicalize_name(package["name"]), []).append(package)
    return entries


def applies_here(entry: dict[str, Any]) -> bool:
    """Whether the lock resolved this entry for this interpreter (its resolution markers, if any)."""
    markers = entry.get("resolution-markers")
    return not markers or any(Marker(marker).evaluate() for marker in markers)


def file_hashes(entry: dict[str, Any]) -> set[str]:
    """The sha256 of every file (sdist and wheels) the lock names for an entry."""
    files = [entry["sdist"]] if "sdist" in entry else []
    return {f["hash"].removeprefix("sha256:") for f in [*files, *entry.get("wheels", [])]}


@dataclass(frozen=True)
class Pinned:
    name: str
    version: str
    marker: Marker | None
    hashes: frozenset[str]


def pinned_requirements(path: Path) -> list[Pinned]:
    """Each requirement of a hash-checked requirement file: its exact pin, marker and sha256s.

    A line that pins no single version, or carries no hash, fails here (pip's ``--require-hashes``
    would refuse it too).
    """
    logical = path.read_text().replace("\\\n", " ")
    pinned = []
    for line in logical.splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement_text, *hash_options = text.split(" --hash=")
        requirement = Requirement(requirement_text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and hash_options, f"{path.name}: {text} is not pinned with hashes"
        hashes = frozenset(h.strip().removeprefix("sha256:") for h in hash_options)
        pinned.append(Pinned(canonicalize_name(requirement.name), specifier.version, requirement.marker, hashes))
    return pinned


def ci_script(name: str) -> ModuleType:
    """A Python script of .ci/ (``locked``, ``dagger_sdk``), loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / ".ci" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
