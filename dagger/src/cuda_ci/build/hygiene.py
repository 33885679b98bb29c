"""Wheel hygiene: what a wheel must not carry, and the flags that keep the release's builds lean.

Upstream's users were hit by both: unstripped shared objects made cuda-core wheels about six times
too large, and C/C++ sources were shipped inside wheels. Validate refuses, each with the member and
the fix: an ELF shared object (``.so``) with debug sections, a wheel over the size budget its
component declares (``[tool.cuda-ci] wheel-size-budget``), and C, C++, CUDA or Cython sources in any
wheel (``.pxd`` files stay allowed: cuda-bindings ships them for ``cimport``). Windows ``.pyd`` files
are PE, not ELF: MSVC keeps their debug information in separate ``.pdb`` files, and they are not read.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile

from cuda_ci.infra.errors import CudaCiError

# The linker drops debug sections from what it links (GNU ld, gold, lld, mold): one value for every
# build the release runs (host builds through ``build_environ``; the container builds reuse it).
STRIP_LDFLAGS = "-Wl,--strip-debug"

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".pyx")
DEBUG_PREFIXES = (".debug", ".zdebug")  # DWARF, and its older compressed spelling
ELF_MAGIC = b"\x7fELF"
BUDGET_KEY = "wheel-size-budget"
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?) (?P<unit>B|KiB|MiB|GiB)")

Check = Literal["debug-sections", "sources", "size-budget"]


@dataclass(frozen=True)
class SizeBudget:
    """The most bytes one wheel of a component may take, as declared (``text``) and where (``source``)."""

    limit: int
    text: str
    source: str


@dataclass(frozen=True)
class Finding:
    """One check on one wheel: ``detail`` is the problem when failed, else what was seen."""

    check: Check
    status: Literal["passed", "skipped", "failed"]
    detail: str


def parse_size(value: object, source: str) -> SizeBudget:
    """``"2 MiB"``: a positive number, one space, a binary unit (B, KiB, MiB, GiB); anything else is refused."""
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    limit = int(float(match["number"]) * UNITS[match["unit"]]) if match else 0
    if not match or limit < 1:
        raise CudaCiError(
            f"{source}: [tool.cuda-ci] {BUDGET_KEY} = {value!r} is not a size: write a positive number, "
            f'one space and a binary unit (B, KiB, MiB, GiB) as a string, e.g. {BUDGET_KEY} = "2 MiB"'
        )
    return SizeBudget(limit=limit, text=str(value), source=source)


def with_strip_flag(ldflags: str) -> str:
    """``LDFLAGS`` as given, with :data:`STRIP_LDFLAGS` added once."""
    return ldflags if STRIP_LDFLAGS in ldflags.split() else f"{ldflags} {STRIP_LDFLAGS}".strip()


def format_size(size: int) -> str:
    """``"3.2 MiB (3,355,443 bytes)"``: readable, and exact where it is compared with a budget."""
    unit = next(u for u in ("GiB", "MiB", "KiB", "B") if size >= UNITS[u] or u == "B")
    readable = f"{size} B" if unit == "B" else f"{size / UNITS[unit]:.1f} {unit}"
    return f"{readable} ({size:,} bytes)"


def is_shared_object(member: str) -> bool:
    """``.so`` and versioned ``.so.N`` members (auditwheel's vendored ``*.libs/libx-HASH.so.1``)."""
    name = PurePosixPath(member).name
    return name.endswith(".so") or ".so." in name


def debug_sections(data: bytes) -> list[str] | None:
    """The debug sections of an ELF file's bytes; None where they are not ELF (a Mach-O or PE file).

    Raises ValueError for bytes that claim to be ELF and do not parse."""
    if not data.startswith(ELF_MAGIC):
        return None
    try:
        return [s.name for s in ELFFile(io.BytesIO(data)).iter_sections() if s.name.startswith(DEBUG_PREFIXES)]
    except (ELFError, ConstructError, ValueError, IndexError, OverflowError) as error:
        raise ValueError(f"not a readable ELF file ({error})") from None


def _debug_findings(wheel: Path, archive: zipfile.ZipFile) -> list[Finding]:
    found, checked = [], 0
    for member in [n for n in archive.namelist() if is_shared_object(n)]:
        try:
            sections = debug_sections(archive.read(member))
        except ValueError as error:
            found.append(Finding("debug-sections", "failed", f"{wheel.name}: {member} is {error}"))
            continue
        checked += sections is not None
        if sections:
            found.append(
                Finding(
                    "debug-sections",
                    "failed",
                    f"{wheel.name}: {member} carries debug sections ({', '.join(sections)}): strip it "
                    f"(link with {STRIP_LDFLAGS}, as cuda-ci's builds do, or `auditwheel repair --strip`, "
                    "or `strip --strip-debug` before packing)",
                )
            )
    if not found:
        found.append(Finding("debug-sections", "passed", f"{checked} ELF shared object(s), none with debug sections"))
    return found


def _source_findings(wheel: Path, archive: zipfile.ZipFile) -> list[Finding]:
    sources = [n for n in archive.namelist() if n.lower().endswith(SOURCE_SUFFIXES)]
    found = [
        Finding(
            "sources",
            "failed",
            f"{wheel.name} ships the source file {member}: leave it out of the wheel, e.g. with "
            f'[tool.setuptools.exclude-package-data] "*" = ["*{PurePosixPath(member).suffix}"] in pyproject.toml '
            "(MANIFEST.in still puts it in the sdist)",
        )
        for member in sources
    ]
    return found or [Finding("sources", "passed", f"no {'/'.join(SOURCE_SUFFIXES)} files")]


def _size_finding(wheel: Path, budget: SizeBudget | None) -> Finding:
    size = wheel.stat().st_size
    if budget is None:
        return Finding("size-budget", "skipped", f"{format_size(size)}; its component declares no {BUDGET_KEY}")
    if size > budget.limit:
        return Finding(
            "size-budget",
            "failed",
            f"{wheel.name} is {format_size(size)}, over its budget of {budget.text} ({budget.limit:,} bytes) "
            f"declared in {budget.source} [tool.cuda-ci] {BUDGET_KEY}: make the wheel smaller (strip its "
            "shared objects, leave sources and tests out) or raise the budget there",
        )
    return Finding("size-budget", "passed", f"{format_size(size)}, within {budget.text} ({budget.source})")


def wheel_findings(wheel: Path, budget: SizeBudget | None) -> list[Finding]:
    """Every hygiene check on one wheel (whose archive is already known to be safe to read)."""
    with zipfile.ZipFile(wheel) as archive:
        found = _debug_findings(wheel, archive) + _source_findings(wheel, archive)
    return [*found, _size_finding(wheel, budget)]
