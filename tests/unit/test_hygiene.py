"""Wheel hygiene's pure parts: the size budget a component declares, ELF debug sections, sources."""

from __future__ import annotations

import struct
import sys
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.frontend import build_environ
from cuda_ci.build.hygiene import (
    STRIP_LDFLAGS,
    SizeBudget,
    debug_sections,
    format_size,
    is_shared_object,
    parse_size,
    wheel_findings,
    with_strip_flag,
)
from cuda_ci.infra.declared import Declared
from cuda_ci.infra.errors import CudaCiError

SOURCE = "cuda_bindings/pyproject.toml"
WHEEL = "cuda_bindings-13.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"


def tiny_elf(*sections: str) -> bytes:
    """A minimal little-endian ELF64 shared object: a null section, ``.shstrtab``, then ``sections`` (empty)."""
    names = [".shstrtab", *sections]
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    offsets = [1 + sum(len(n) + 1 for n in names[:i]) for i in range(len(names))]
    shoff = 64 + len(strtab) + (-len(strtab)) % 8
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, len(names) + 1, 1)
    table = bytes(64)  # the null section
    table += struct.pack("<IIQQQQIIQQ", offsets[0], 3, 0, 0, 64, len(strtab), 0, 0, 1, 0)
    for offset in offsets[1:]:
        table += struct.pack("<IIQQQQIIQQ", offset, 1, 0, 0, shoff, 0, 0, 0, 1, 0)
    return header + strtab + bytes(shoff - 64 - len(strtab)) + table


def wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("text", "limit"),
    [("2 MiB", 2 * 1024**2), ("512 KiB", 512 * 1024), ("1.5 MiB", 3 * 512 * 1024), ("100 B", 100), ("1 GiB", 1024**3)],
)
def test_a_budget_is_a_number_and_a_binary_unit(text: str, limit: int) -> None:
    assert parse_size(text, SOURCE) == SizeBudget(limit=limit, text=text, source=SOURCE)


@pytest.mark.parametrize("value", [2097152, "2097152", "2MiB", "2 MB", "2  MiB", "2 mib", "0 MiB", "-1 MiB", "", True])
def test_any_other_budget_is_refused_naming_the_file_and_the_key(value: object) -> None:
    with pytest.raises(CudaCiError) as info:
        parse_size(value, SOURCE)
    assert info.value.problems == (
        f"{SOURCE}: [tool.cuda-ci] wheel-size-budget = {value!r} is not a size: write a positive number, "
        'one space and a binary unit (B, KiB, MiB, GiB) as a string, e.g. wheel-size-budget = "2 MiB"',
    )


def test_the_budget_is_read_with_the_other_declarations() -> None:
    found = Declared.parse('[tool.cuda-ci]\nwheel-size-budget = "256 KiB"\n', SOURCE)
    assert found.wheel_size_budget == SizeBudget(limit=256 * 1024, text="256 KiB", source=SOURCE)
    assert Declared.parse('[project]\nname = "x"\n', SOURCE).wheel_size_budget is None
    with pytest.raises(CudaCiError, match=r"cuda_bindings/pyproject.toml: \[tool.cuda-ci\] wheel-size-budget = 7"):
        Declared.parse("[tool.cuda-ci]\nwheel-size-budget = 7\n", SOURCE)


def test_the_components_budget_parses() -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "cuda_bindings" / "pyproject.toml").read_text()
    budget = Declared.parse(text, SOURCE).wheel_size_budget
    assert budget is not None and budget.limit <= 1024**2, "a small C extension: a budget that catches bloat"


def test_sizes_read_well_and_exactly() -> None:
    assert format_size(100) == "100 B (100 bytes)"
    assert format_size(3 * 1024**2 + 1024**2 // 5) == "3.2 MiB (3,355,443 bytes)"


def test_the_strip_flag_is_added_once_beside_the_callers_flags() -> None:
    assert with_strip_flag("") == STRIP_LDFLAGS == "-Wl,--strip-debug"
    assert with_strip_flag("-L/opt/lib") == f"-L/opt/lib {STRIP_LDFLAGS}"
    assert with_strip_flag(f"{STRIP_LDFLAGS} -L/x") == f"{STRIP_LDFLAGS} -L/x"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU-style linker flags on Linux only")
def test_host_builds_link_stripped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LDFLAGS", "-L/opt/lib")
    monkeypatch.setenv("CFLAGS", "-O2")
    env = build_environ(0, tmp_path)
    assert env["LDFLAGS"] == f"-L/opt/lib {STRIP_LDFLAGS}"
    assert env["CFLAGS"] == f"-O2 -ffile-prefix-map={tmp_path}=/src", "the reproducibility flag stays"


def test_shared_objects_by_name() -> None:
    assert is_shared_object("cuda/bindings/_driver.cpython-311-x86_64-linux-gnu.so")
    assert is_shared_object("cuda_bindings.libs/libdl-1a2b3c4d.so.2")
    assert not is_shared_object("cuda/bindings/driver.py") and not is_shared_object("cuda/bindings/_driver.pyd")


def test_debug_sections_are_read_from_the_section_headers() -> None:
    assert debug_sections(tiny_elf(".text", ".debug_info", ".zdebug_line", ".symtab")) == [
        ".debug_info",
        ".zdebug_line",
    ]
    assert debug_sections(tiny_elf(".text", ".symtab", ".gnu_debuglink")) == []
    assert debug_sections(b"MZ\x90\x00 a PE file") is None, "not ELF: not read"
    with pytest.raises(ValueError, match="not a readable ELF file"):
        debug_sections(tiny_elf(".debug_info")[:70])


def test_a_wheel_is_refused_for_debug_sections_sources_and_its_size(tmp_path: Path) -> None:
    members = {
        "cuda/bindings/_driver.so": tiny_elf(".text", ".debug_info", ".debug_line"),
        "cuda_bindings.libs/libx-0123abcd.so.1": tiny_elf(".text"),
        "cuda/bindings/_driver.c": b"int x;",
        "cuda/bindings/_impl.pyx": b"x = 1",
        "cuda/bindings/cydriver.pxd": b"cdef int x",
    }
    path = wheel(tmp_path / WHEEL, members)
    budget = SizeBudget(limit=100, text="100 B", source="cuda_bindings-13.0.0.tar.gz:pyproject.toml")
    failed = [(f.check, f.detail) for f in wheel_findings(path, budget) if f.status == "failed"]
    size = path.stat().st_size
    assert failed == [
        (
            "debug-sections",
            f"{WHEEL}: cuda/bindings/_driver.so carries debug sections (.debug_info, .debug_line): strip it "
            f"(link with -Wl,--strip-debug, as cuda-ci's builds do, or `auditwheel repair --strip`, "
            "or `strip --strip-debug` before packing)",
        ),
        (
            "sources",
            f"{WHEEL} ships the source file cuda/bindings/_driver.c: leave it out of the wheel, e.g. with "
            '[tool.setuptools.exclude-package-data] "*" = ["*.c"] in pyproject.toml (MANIFEST.in still puts it '
            "in the sdist)",
        ),
        (
            "sources",
            f"{WHEEL} ships the source file cuda/bindings/_impl.pyx: leave it out of the wheel, e.g. with "
            '[tool.setuptools.exclude-package-data] "*" = ["*.pyx"] in pyproject.toml (MANIFEST.in still puts it '
            "in the sdist)",
        ),
        (
            "size-budget",
            f"{WHEEL} is {format_size(size)}, over its budget of 100 B (100 bytes) declared in "
            "cuda_bindings-13.0.0.tar.gz:pyproject.toml [tool.cuda-ci] wheel-size-budget: make the wheel smaller "
            "(strip its shared objects, leave sources and tests out) or raise the budget there",
        ),
    ]


def test_a_clean_wheel_passes_and_without_a_budget_its_size_is_skipped(tmp_path: Path) -> None:
    path = wheel(tmp_path / WHEEL, {"cuda/bindings/_driver.so": tiny_elf(".text"), "cuda/bindings/x.pxd": b""})
    found = {f.check: (f.status, f.detail) for f in wheel_findings(path, None)}
    assert found == {
        "debug-sections": ("passed", "1 ELF shared object(s), none with debug sections"),
        "sources": ("passed", "no .c/.cc/.cpp/.cxx/.cu/.pyx files"),
        "size-budget": ("skipped", f"{format_size(path.stat().st_size)}; its component declares no wheel-size-budget"),
    }
    budget = SizeBudget(limit=1024**2, text="1 MiB", source=SOURCE)
    assert [f.status for f in wheel_findings(path, budget)] == ["passed", "passed", "passed"]
