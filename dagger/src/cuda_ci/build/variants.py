"""Wheels that hold several builds of one component, merged, as upstream's cuda-core holds cu12 and cu13.

A component declares its variants in ``[tool.cuda-ci.variants]``: the environment ``variable`` its build
reads, the ``values`` to build, and the ``path`` (with ``{value}``) under which each build's files land.
cuda-ci builds the wheel once per value from the same sdist and merges the wheels of one identifier into
one; validate checks that every variant's files are there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cuda_ci.infra.errors import CudaCiError

EXTENSION_SUFFIXES = (".so", ".pyd")


@dataclass(frozen=True)
class Variants:
    variable: str
    values: tuple[str, ...]
    path: str  # e.g. cuda/core/_cu{value}

    def folder(self, value: str) -> str:
        return self.path.format(value=value).rstrip("/") + "/"

    def environ(self, value: str) -> dict[str, str]:
        return {self.variable: value}


def parse_variants(table: object, source: str) -> Variants | None:
    """``[tool.cuda-ci.variants]`` of ``source``, or None where it is absent; refused where malformed."""
    if table is None:
        return None
    example = 'variable = "CUDA_CORE_BUILD_MAJOR", values = ["12", "13"], path = "cuda/core/_cu{value}"'
    if not isinstance(table, Mapping):
        raise CudaCiError(f"{source}: [tool.cuda-ci.variants] must be a table: {example}")
    variable, values, path = table.get("variable"), table.get("values"), table.get("path")
    problems = []
    if not isinstance(variable, str) or not variable.isidentifier():
        problems.append(f"{source}: [tool.cuda-ci.variants] variable must name an environment variable: {example}")
    if not isinstance(values, list) or len(values) < 2 or not all(isinstance(v, str) and v for v in values):
        problems.append(f"{source}: [tool.cuda-ci.variants] values must list two or more strings: {example}")
    elif len(set(values)) != len(values):
        problems.append(f"{source}: [tool.cuda-ci.variants] values lists a value twice: {values}")
    if not isinstance(path, str) or "{value}" not in path or not _relative(path.replace("{value}", "x")):
        problems.append(
            f"{source}: [tool.cuda-ci.variants] path must be a relative folder holding {{value}}: {example}"
        )
    if problems:
        raise CudaCiError(*problems)
    assert isinstance(variable, str) and isinstance(values, list) and isinstance(path, str)
    return Variants(variable=variable, values=tuple(values), path=path)


def _relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts


def merge_wheels(wheels: Sequence[Path], dest: Path) -> Path:
    """One wheel at ``dest/<name>`` holding every member of ``wheels`` (builds of one identifier).

    A member in more than one wheel must be the same bytes in each (a variant's own files live under
    its own path); ``RECORD`` is written anew for the merged contents.
    """
    names = {w.name for w in wheels}
    if len(names) != 1:
        raise CudaCiError(f"variant builds of one identifier made differently named wheels: {sorted(names)}")
    members: dict[str, tuple[zipfile.ZipInfo, bytes]] = {}
    record_name = ""
    conflicts: list[str] = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".dist-info/RECORD"):
                    record_name = info.filename
                    continue
                data = archive.read(info)
                if info.filename in members and members[info.filename][1] != data:
                    conflicts.append(info.filename)
                members.setdefault(info.filename, (info, data))
    if conflicts:
        raise CudaCiError(
            f"the variant builds of {wheels[0].name} differ in files outside their own paths: "
            + ", ".join(sorted(set(conflicts))[:5])
            + ": a variant's build may differ only under its [tool.cuda-ci.variants] path"
        )
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheels[0].name
    partial = target.with_name(f".{target.name}.partial")
    rows = []
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as merged:
        for name in sorted(members, key=lambda n: (".dist-info/" in n, n)):
            info, data = members[name]
            merged.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{name},sha256={digest},{len(data)}")
        rows.append(f"{record_name},,")
        record = zipfile.ZipInfo(record_name, date_time=members[sorted(members)[0]][0].date_time)
        record.external_attr = 0o644 << 16
        merged.writestr(record, "\n".join(rows) + "\n", compress_type=zipfile.ZIP_DEFLATED)
    os.replace(partial, target)
    return target


def merge_variant_folders(folders: Sequence[Path], dest: Path) -> list[Path]:
    """Merge the same-named wheels of every variant's output folder into ``dest``."""
    by_name: dict[str, list[Path]] = {}
    for folder in folders:
        for wheel in sorted(folder.glob("*.whl")):
            by_name.setdefault(wheel.name, []).append(wheel)
    missing = {name: len(found) for name, found in by_name.items() if len(found) != len(folders)}
    if missing:
        raise CudaCiError(
            "some identifiers were built for only some variants: "
            + ", ".join(f"{name} ({count} of {len(folders)})" for name, count in sorted(missing.items()))
        )
    return [merge_wheels(found, dest) for _, found in sorted(by_name.items())]


def missing_variants(wheel: Path, variants: Variants, source: str) -> list[str]:
    """A finding for each declared variant whose path holds no extension module in ``wheel``."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    problems = []
    for value in variants.values:
        folder = variants.folder(value)
        if not any(n.startswith(folder) and n.endswith(EXTENSION_SUFFIXES) for n in names):
            problems.append(
                f"{wheel.name}: no compiled module under {folder} for variant {variants.variable}={value} "
                f"(declared in {source} [tool.cuda-ci.variants]): build the wheel once per variant and merge "
                "them (cuda-ci build does), or remove the value from the declaration"
            )
    return problems
